// Benchmark of lab::Sha256: throughput on 16 KiB messages for each engine
// this CPU can run (the portable C++ one, and the SHA instructions when the
// CPU has them), next to what the same machine's tools do in the same run:
// `openssl speed -evp sha256`, `sha256sum` of a file and Python's hashlib.
// Each figure is printed with its ratio to OpenSSL. A missing tool is
// skipped with a note. Prints figures; asserts nothing about time (a loaded
// machine is slower, not wrong), only that the engines agree.
//
// Every figure is bytes per second of CPU time, the way `openssl speed`
// counts by default: on a machine shared with other work, wall-clock time
// would charge us for the time the others ran.
//
//   cmake --preset release && cmake --build --preset release --target bench_sha256
//   ctest --test-dir build/release -L bench -R sha -V
#include <fmt/core.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/sha256.hpp"
#include "lab/testing.hpp"
#include "sha256_engines.hpp"  // common/src: to run each engine in turn

namespace {

constexpr std::size_t kMessageSize = 16 * 1024;  // what `openssl speed -bytes 16384` hashes
constexpr double kRunSeconds = 2.0;              // of CPU time, per lab engine
constexpr std::size_t kFileSize = 256 << 20;     // for sha256sum: 256 MiB
constexpr double kTargetRatio = 0.9;             // accelerated engine / openssl

// Every digest computed ends up here, so the compiler cannot drop the work.
volatile std::uint8_t digest_sink = 0;

// CPU time this process has used so far.
double cpu_seconds() {
  timespec now{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now) != 0) {
    throw lab::os_error("clock_gettime CLOCK_PROCESS_CPUTIME_ID");
  }
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// CPU time (user and system) used so far by the children we have reaped.
double children_cpu_seconds() {
  rusage usage{};
  if (::getrusage(RUSAGE_CHILDREN, &usage) != 0) {
    throw lab::os_error("getrusage RUSAGE_CHILDREN");
  }
  const auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Bytes that do not repeat in a short period (a xorshift generator).
std::string test_bytes(std::size_t size) {
  std::string bytes(size, '\0');
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (char& byte : bytes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    byte = static_cast<char>(state & 0xff);
  }
  return bytes;
}

// Bytes per CPU second of lab::Sha256 on `engine`, hashing `message` as
// one whole message (init, update, finish) again and again, as openssl
// speed does.
double lab_throughput(const lab::detail::Sha256Engine& engine, const std::string& message) {
  const lab::detail::ScopedSha256Engine use(engine);
  const double started = cpu_seconds();
  std::size_t messages = 0;
  double elapsed = 0;
  std::uint8_t digests_xor = 0;
  do {
    for (int i = 0; i < 100; ++i) {
      digests_xor ^= lab::sha256(message)[0];
    }
    messages += 100;
    elapsed = cpu_seconds() - started;
  } while (elapsed < kRunSeconds);
  digest_sink = digests_xor;
  return static_cast<double>(messages * message.size()) / elapsed;
}

// Runs a tool; nullopt, after a one-line note, if it is missing or fails.
std::optional<lab::CommandOutput> run_tool(const std::vector<std::string>& argv) {
  lab::CommandLimits limits;
  limits.time_limit = std::chrono::seconds(60);
  try {
    lab::CommandOutput result = lab::run_command(argv, "", limits);
    if (result.status.success()) {
      return result;
    }
    // execvpe failing (no such program) ends the child with status 127.
    const std::string why =
        result.status == lab::ExitStatus{127, 0} ? "not installed" : result.status.to_string();
    fmt::print("  {}: skipped ({})\n", argv[0], why);
  } catch (const std::exception& error) {
    fmt::print("  {}: skipped ({})\n", argv[0], error.what());
  }
  return std::nullopt;
}

// `openssl speed -evp sha256 -bytes 16384 -seconds 3` prints, after a
// header, the line "sha256   1370572.80k": thousands of bytes per second
// (of its user CPU time: it runs 3 s by the clock, and counts CPU time).
std::optional<double> openssl_throughput() {
  const auto result =
      run_tool({"openssl", "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3"});
  if (!result) {
    return std::nullopt;
  }
  std::size_t line_start = 0;
  while (line_start < result->out.size()) {
    const std::size_t line_end = std::min(result->out.find('\n', line_start), result->out.size());
    const std::string line = result->out.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.rfind("sha256 ", 0) != 0) {
      continue;
    }
    try {
      const std::string figure = line.substr(line.find_first_not_of(' ', 6));
      return std::stod(figure) * 1000.0;  // "1370572.80k": stod stops at the 'k'
    } catch (const std::exception&) {
      break;
    }
  }
  fmt::print("  openssl: skipped (no \"sha256 ...k\" line in its output)\n");
  return std::nullopt;
}

// sha256sum of a file already in the page cache (just written), so the
// figure is hashing, not the disk. Also checks its digest against ours.
std::optional<double> sha256sum_throughput(const std::string& contents) {
  const lab::testing::TempDir temp("bench-sha256");
  const std::string path = temp.file("data.bin");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out.flush()) {
      throw std::runtime_error("cannot write " + path);
    }
  }
  const double started = children_cpu_seconds();
  const auto result = run_tool({"sha256sum", path});
  const double elapsed = children_cpu_seconds() - started;  // run_tool has reaped it
  if (!result) {
    return std::nullopt;
  }
  if (result->out.substr(0, 64) != lab::to_hex(lab::sha256(contents))) {
    throw std::runtime_error("sha256sum and lab::Sha256 disagree");
  }
  return static_cast<double>(contents.size()) / elapsed;
}

// Python's hashlib.sha256 on the same size of message, timed inside Python
// (so its start-up does not count), in CPU time like the others.
std::optional<double> python_throughput() {
  const std::string script =
      "import hashlib, time\n"
      "block = bytes(range(256)) * 64\n"
      "count = 0\n"
      "start = time.process_time()\n"
      "while time.process_time() - start < 3:\n"
      "    for _ in range(100):\n"
      "        hashlib.sha256(block).digest()\n"
      "    count += 100\n"
      "print(count * len(block) / (time.process_time() - start))\n";
  const auto result = run_tool({"python3", "-c", script});
  if (!result) {
    return std::nullopt;
  }
  try {
    return std::stod(result->out);
  } catch (const std::exception&) {
    fmt::print("  python3: skipped (printed no figure: {})\n", result->out);
    return std::nullopt;
  }
}

void print_figure(std::string_view what, double bytes_per_second, std::optional<double> openssl) {
  const double mb_per_s = bytes_per_second / 1e6;
  if (openssl) {
    fmt::print("  {:<40} {:8.1f} MB/s  {:5.2f}x openssl\n", what, mb_per_s,
               bytes_per_second / *openssl);
  } else {
    fmt::print("  {:<40} {:8.1f} MB/s\n", what, mb_per_s);
  }
}

}  // namespace

int main() {
  try {
    const std::string message = test_bytes(kMessageSize);
    const lab::detail::Sha256Engine& portable = lab::detail::portable_sha256_engine();
    const lab::detail::Sha256Engine* accelerated = lab::detail::accelerated_sha256_engine();

    // The engines must agree before their speed means anything.
    if (accelerated != nullptr) {
      std::string portable_hex;
      {
        const lab::detail::ScopedSha256Engine use(portable);
        portable_hex = lab::to_hex(lab::sha256(message));
      }
      const lab::detail::ScopedSha256Engine use(*accelerated);
      if (lab::to_hex(lab::sha256(message)) != portable_hex) {
        throw std::runtime_error(
            fmt::format("the {} and portable engines disagree", accelerated->name));
      }
    }

    fmt::print(
        "SHA-256 throughput on 16 KiB messages, MB (10^6 bytes) per CPU second, release build\n");
    // The outside tools first, so that their notes come before the table.
    const std::optional<double> openssl = openssl_throughput();
    const std::optional<double> sha256sum = sha256sum_throughput(test_bytes(kFileSize));
    const std::optional<double> python = python_throughput();

    const double portable_speed = lab_throughput(portable, message);
    print_figure("lab::Sha256, portable engine", portable_speed, openssl);
    std::optional<double> accelerated_speed;
    if (accelerated != nullptr) {
      accelerated_speed = lab_throughput(*accelerated, message);
      print_figure(fmt::format("lab::Sha256, {}", accelerated->name), *accelerated_speed, openssl);
    } else {
      fmt::print(
          "  lab::Sha256, accelerated engine: absent (this CPU has no SHA instructions it can "
          "use)\n");
    }
    if (openssl) {
      print_figure("openssl speed -evp sha256", *openssl, openssl);
    }
    if (sha256sum) {
      print_figure("sha256sum of a 256 MiB file", *sha256sum, openssl);
    }
    if (python) {
      print_figure("python3 hashlib.sha256", *python, openssl);
    }
    if (accelerated_speed && openssl) {
      const double ratio = *accelerated_speed / *openssl;
      fmt::print("  target: accelerated >= {:.2f}x openssl: {} ({:.2f}x)\n", kTargetRatio,
                 ratio >= kTargetRatio ? "met" : "NOT met", ratio);
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_sha256: %s\n", error.what());
    return 1;
  }
}
