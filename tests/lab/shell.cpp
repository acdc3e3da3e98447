#include "shell.hpp"

#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>

#include "lab/error.hpp"
#include "lab/sha256.hpp"

namespace lab::tool {

Result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  SpawnOptions options;
  options.merge_stderr = true;
  Child child = Child::spawn(argv, options);
  StopSignal never;
  const Collected collected = collect_output(child, timeout, never);
  if (collected.timed_out) {
    child.send_signal(SIGKILL);
  }
  return Result{child.wait(), collected.output, collected.timed_out};
}

Collected collect_output(Child& child, std::chrono::milliseconds timeout, const StopSignal& stop) {
  Collected collected;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      collected.timed_out = true;
      return collected;
    }
    std::array<pollfd, 2> entries{{{child.output().get(), POLLIN, 0}, {stop.fd(), POLLIN, 0}}};
    const int ready = ::poll(entries.data(), entries.size(), static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw os_error("poll");
    }
    if (entries[1].revents != 0) {
      collected.interrupted = true;
      return collected;
    }
    if (entries[0].revents == 0) {
      continue;
    }
    char chunk[8192];
    const ssize_t got = ::read(child.output().get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return collected;  // end of output: the program has ended (or closed stdout)
    }
    // A runaway case cannot fill the memory: keep the first 1 MiB.
    if (collected.output.size() < (1u << 20)) {
      collected.output.append(chunk, static_cast<std::size_t>(got));
    }
  }
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
