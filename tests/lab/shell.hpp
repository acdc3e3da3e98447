// Small process and path helpers of the lab tool.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "lab/process.hpp"
#include "lab/stop.hpp"

namespace lab::tool {

struct Result {
  ExitStatus status;
  std::string output;  // stdout and stderr, interleaved as written
  bool timed_out = false;
};

// Runs a command to completion, or kills it after `timeout` (a day: builds).
Result run_command(const std::vector<std::string>& argv,
                   std::chrono::milliseconds timeout = std::chrono::hours(24));

struct Collected {
  std::string output;
  bool timed_out = false;
  bool interrupted = false;
};

// Reads the child's stdout (its first 1 MiB kept) until it ends, `timeout`
// passes, or `stop` is requested (lab::collect_output).
Collected collect_output(Child& child, std::chrono::milliseconds timeout, const StopSignal& stop);

// `bytes` random bytes from getrandom(2), in hexadecimal.
std::string random_hex(std::size_t bytes);


// The path relative to the current directory when that is shorter.
std::string display_path(const std::filesystem::path& path);

}  // namespace lab::tool
