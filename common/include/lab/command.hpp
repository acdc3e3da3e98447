// Running a command on behalf of a remote client, safely: the "remote
// command" service of lessons 03 (sticky packets) and 04 (struct header).
//
// A client only ever names a command from a fixed allow-list; the server
// runs the matching argv directly with fork/exec (lab::Child), never through
// a shell, so no text from the network is ever parsed as shell syntax
// ("date; rm -rf ~" is simply an unknown command). Each run is capped in
// output size and time, so one client cannot make the server buffer
// gigabytes or wait for ever.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lab/process.hpp"

namespace lab {

struct CommandLimits {
  std::size_t max_output = 64 * 1024;          // per stream (stdout, stderr)
  std::chrono::milliseconds time_limit{5000};  // then SIGKILL
};

struct CommandOutput {
  ExitStatus status;
  std::string out;             // stdout, at most max_output bytes
  std::string err;             // stderr, at most max_output bytes
  bool output_capped = false;  // a stream reached max_output and the command was killed
  bool timed_out = false;      // the time limit passed and the command was killed
};

// Runs `argv` (argv[0] looked up in PATH) with stdin from /dev/null, in
// `working_directory` (empty: ours), collecting stdout and stderr
// separately. Throws std::system_error if it cannot be started.
CommandOutput run_command(const std::vector<std::string>& argv, const std::string& working_directory = "",
                          const CommandLimits& limits = {});

struct AllowedCommand {
  std::string name;               // what the client sends: "uname -a"
  std::vector<std::string> argv;  // what the server runs
  std::string what;               // one line for a help text
};

// The allow-list: "date", "uname -a", "ls -l", "big" (a known text of
// kBigOutputBytes bytes, big_command_output()) and "missing" (a command that
// fails: a message on stderr and exit status 2).
const std::vector<AllowedCommand>& allowed_commands();

// The entry named exactly `name`, or nullptr.
const AllowedCommand* find_allowed_command(std::string_view name);

// "date, uname -a, ls -l, big, missing": for the error reply to an unknown command.
std::string allowed_command_names();

// What "big" prints: "big line 0001\n" ... "big line 1000\n".
inline constexpr std::size_t kBigOutputBytes = 14 * 1000;
std::string big_command_output();

}  // namespace lab
