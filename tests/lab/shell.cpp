#include "shell.hpp"

#include <sys/random.h>

#include <cerrno>
#include <csignal>
#include <utility>

#include "lab/collect.hpp"
#include "lab/error.hpp"
#include "lab/sha256.hpp"

namespace lab::tool {

namespace {

// How the grader collects a program's output: stdout and stderr merged
// (SpawnOptions::merge_stderr), and a runaway program cannot fill the
// memory: the first 1 MiB is kept, the rest read and dropped, so that the
// program still runs to its end.
CollectOptions bounded_collection(std::chrono::milliseconds timeout, const StopSignal* stop) {
  CollectOptions options;
  options.time_limit = timeout;
  options.max_output = std::size_t{1} << 20;
  options.stop_when_capped = false;
  options.stop = stop;
  return options;
}

}  // namespace

Result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  SpawnOptions options;
  options.merge_stderr = true;
  Child child = Child::spawn(argv, options);
  CollectedOutput collected = lab::collect_output(child, bounded_collection(timeout, nullptr));
  if (collected.timed_out) {
    child.send_signal(SIGKILL);
  }
  return Result{child.wait(), std::move(collected.out), collected.timed_out};
}

Collected collect_output(Child& child, std::chrono::milliseconds timeout, const StopSignal& stop) {
  CollectedOutput collected = lab::collect_output(child, bounded_collection(timeout, &stop));
  return Collected{std::move(collected.out), collected.timed_out, collected.stopped};
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> random(bytes);
  std::size_t got = 0;
  while (got < random.size()) {
    const ssize_t n = ::getrandom(random.data() + got, random.size() - got, 0);
    if (n < 0 && errno != EINTR) {
      throw os_error("getrandom");
    }
    got += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  return to_hex(random);
}

std::string display_path(const std::filesystem::path& path) {
  std::error_code error;
  const auto relative = std::filesystem::relative(path, std::filesystem::current_path(error), error);
  if (error || relative.empty() || relative.string().size() >= path.string().size()) {
    return path.string();
  }
  return relative.string();
}

}  // namespace lab::tool
