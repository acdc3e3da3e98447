// What the benchmarks share: CPU time of a process from /proc, pinning to one
// CPU, finding python3 and the system tools, draining a server's log, and
// printing a figure next to its reference as a ratio measured in the same run.
#pragma once

#include <fmt/core.h>
#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/testing.hpp"

namespace lab::bench {

// User plus system CPU seconds that process `pid` has used so far: fields 14
// and 15 of /proc/PID/stat, in clock ticks (proc(5)). The command name
// (field 2) may contain spaces, so the fields are counted after its ')'.
inline double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
  }
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  for (int number = 3; number <= 15 && fields >> field; ++number) {
    if (number == 14) {
      utime = std::stoull(field);
    } else if (number == 15) {
      stime = std::stoull(field);
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Pins `pid` (0: this thread) to `cpu`, or, with no cpu, lets it run anywhere.
inline void set_cpu(pid_t pid, std::optional<int> cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (long i = 0; i < cpus; ++i) {
    if (!cpu || *cpu == i) {
      CPU_SET(static_cast<int>(i), &set);
    }
  }
  if (::sched_setaffinity(pid, sizeof set, &set) != 0) {
    throw os_error("sched_setaffinity");
  }
}

// The full path of `program` in $PATH, or nullopt.
inline std::optional<std::string> find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(0, colon)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
    dirs.remove_prefix(colon == std::string_view::npos ? dirs.size() : colon + 1);
  }
  return std::nullopt;
}

// Reads and discards a child's output until it ends, so that a server
// printing one line per message never blocks on a full pipe.
class Drain {
 public:
  explicit Drain(Fd& output)
      : thread_([&output] {
          try {
            while (read_some(output, 65536)) {
            }
          } catch (const std::exception&) {
            // The pipe broke: nothing more to drain.
          }
        }) {}

 private:
  std::jthread thread_;
};

// "--name VALUE" among argv, as a number, or `fallback`.
inline std::uint64_t number_option(int argc, char** argv, std::string_view name,
                                   std::uint64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      std::uint64_t value = 0;
      const std::string_view text = argv[i + 1];
      if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc{} ||
          value == 0) {
        throw std::invalid_argument(
            fmt::format("{} needs a positive number, not '{}'", name, text));
      }
      return value;
    }
  }
  return fallback;
}

// "--name VALUE" among argv, or `fallback`.
inline std::string text_option(int argc, char** argv, std::string_view name, std::string fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) {
      return argv[i + 1];
    }
  }
  return fallback;
}

// One line of the report: the figure, and its ratio to a reference measured
// in the same run ("  C++ server  3.10 µs  0.42x Python course's server").
inline void print_ratio(std::string_view what, double value, std::string_view unit,
                        std::string_view reference, double reference_value) {
  fmt::print("  {:<52} {:>10.2f} {:<6} {:6.2f}x {}\n", what, value, unit, value / reference_value,
             reference);
}

inline void print_figure(std::string_view what, double value, std::string_view unit) {
  fmt::print("  {:<52} {:>10.2f} {}\n", what, value, unit);
}

// A request/reply server's CPU time per message: the server's utime+stime
// over `messages` exchanges made by `exchange(count)`, after a warm-up. With
// `pinned`, the server and this client share CPU 0: every reply then needs a
// switch between them, and the figure is the server's own work plus its
// share of that switch, the same for every server measured.
struct ServerCpu {
  double micros_per_message = 0;
  double wall_seconds = 0;
};

template <typename Exchange>
ServerCpu server_cpu(testing::ServerProcess& server, bool pinned, std::uint64_t messages,
                     Exchange exchange) {
  const pid_t pid = server.child().pid();
  const std::optional<int> cpu = pinned ? std::optional<int>(0) : std::nullopt;
  set_cpu(pid, cpu);
  set_cpu(0, cpu);
  exchange(std::min<std::uint64_t>(messages / 10 + 1,
                                   10'000));  // warm-up: caches, lazy binding, the allocator
  const double before = cpu_seconds(pid);
  const auto started = std::chrono::steady_clock::now();
  exchange(messages);
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
  const double used = cpu_seconds(pid) - before;
  set_cpu(0, std::nullopt);
  return {used * 1e6 / static_cast<double>(messages), wall.count()};
}

// The main loop of a request/reply benchmark: measures `measure(program,
// pinned)` for our server and the Python course's, pinned to one CPU and
// unpinned, and prints our figure as a ratio to Python's from the same run
// (or alone, with a note, when python3 is missing). `title` is the first
// line of the report and `ours` names our server ("lesson 02 server").
//
// With a `floor_program` (a server of the same protocol written with bare
// system calls), both figures are also printed as ratios to the floor's:
// the floor is what the kernel costs per request, so each ratio above 1
// is what that server adds to it.
template <typename Measure>
void compare_servers(std::string_view title, std::string_view ours, const std::string& program,
                     const std::string& python_program, const std::string& floor_program,
                     Measure measure) {
  const bool have_python = find_program("python3").has_value();
  fmt::print("{}\n", title);
  for (const bool pinned : {true, false}) {
    const char* how = pinned ? "pinned to CPU 0 with the client" : "unpinned";
    std::optional<ServerCpu> floor;
    if (!floor_program.empty()) {
      floor = measure(floor_program, pinned);
      print_figure(fmt::format("floor (bare system calls), {}", how), floor->micros_per_message,
                   "µs");
    }
    const ServerCpu mine = measure(program, pinned);
    if (have_python) {
      const ServerCpu python = measure(python_program, pinned);
      if (floor) {
        print_ratio(fmt::format("Python course's server, {}", how), python.micros_per_message, "µs",
                    "the floor", floor->micros_per_message);
        print_ratio(fmt::format("{}, {}", ours, how), mine.micros_per_message, "µs", "the floor",
                    floor->micros_per_message);
        print_ratio(fmt::format("floor, {}", how), floor->micros_per_message, "µs",
                    "Python's (no server can go below this)", python.micros_per_message);
      } else {
        print_figure(fmt::format("Python course's server, {}", how), python.micros_per_message,
                     "µs");
      }
      print_ratio(fmt::format("{}, {}", ours, how), mine.micros_per_message, "µs",
                  "Python's (target: <= 0.5x pinned)", python.micros_per_message);
    } else {
      if (floor) {
        print_ratio(fmt::format("{}, {}", ours, how), mine.micros_per_message, "µs", "the floor",
                    floor->micros_per_message);
      } else {
        print_figure(fmt::format("{}, {}", ours, how), mine.micros_per_message, "µs");
      }
      fmt::print("  (python3 not found: no Python course figure to compare with)\n");
    }
  }
}

}  // namespace lab::bench
