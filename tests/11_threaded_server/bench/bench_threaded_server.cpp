// Benchmark of lesson 11: the reference threaded server under a crowd.
//
//   cmake --preset release && cmake --build --preset release --target bench11_threaded_server
//   build/release/lessons/11_threaded_server/bench11_threaded_server   (or: ctest --preset bench -R bench11)
//
// Targets:
//   1. 1,000 concurrent clients x 10 round trips, every reply correct;
//   2. 50 clients x 200 round trips: at least 3x the round trips per second
//      of Python's ThreadingTCPServer with the same protocol, in the same
//      run (threading_tcp_server.py beside this file; skipped without python3).
// The servers and the client are the real programs, started as processes.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "lab/error.hpp"
#include "lab/process.hpp"

namespace {

using namespace std::chrono_literals;

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";
const std::string kPythonServer = std::string(LAB_BENCH_DIR) + "/threading_tcp_server.py";

// A thousand clients need a thousand descriptors in the server and in the
// client; the usual soft limit is 1024. The children inherit the raised one.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  std::printf("descriptor limit: %llu\n", static_cast<unsigned long long>(limit.rlim_cur));
}

struct Server {
  lab::Child child;
  std::string port;
};

// Starts a server and waits for its ready line "listening on HOST:PORT".
Server start(const std::vector<std::string>& argv) {
  lab::SpawnOptions options;
  options.capture_stderr = false;
  Server server{lab::Child::spawn(argv, options), ""};
  lab::LineReader reader(server.child.output());
  const auto line = reader.next_line(10s);
  const std::string prefix = "listening on ";
  if (!line || line->rfind(prefix, 0) != 0) {
    throw std::runtime_error("no ready line from " + argv[0]);
  }
  server.port = line->substr(line->rfind(':') + 1);
  return server;
}

struct Run {
  bool ok = false;
  double per_second = 0;
  std::string summary;
};

// Runs the client and reads its summary line.
Run run_client(const std::string& port, int connections, int rounds) {
  lab::SpawnOptions options;
  options.merge_stderr = true;
  lab::Child client = lab::Child::spawn({kClient, "--port", port, "--connections", std::to_string(connections),
                                         "--rounds", std::to_string(rounds), "--timeout-ms", "20000"},
                                        options);
  lab::LineReader reader(client.output());
  const std::string output = reader.read_rest(120s);
  Run run;
  run.ok = client.wait().success();
  run.summary = output.substr(0, output.find('\n'));
  const auto open = output.find(" s (");
  if (open != std::string::npos) {
    run.per_second = std::stod(output.substr(open + 4));
  }
  return run;
}

// The best of three: the machine is shared, and the best run is the one
// least disturbed by others.
Run best_of_three(const std::string& port, int connections, int rounds) {
  Run best;
  for (int attempt = 0; attempt < 3; ++attempt) {
    Run run = run_client(port, connections, rounds);
    if (!run.ok) {
      return run;
    }
    if (run.per_second > best.per_second) {
      best = run;
    }
  }
  return best;
}

std::optional<Server> start_python() {
  try {
    return start({"python3", kPythonServer, "--port", "0"});
  } catch (const std::exception& error) {
    std::printf("python3 not available (%s): the Python comparison is skipped\n", error.what());
    return std::nullopt;
  }
}

}  // namespace

int main() {
  try {
    raise_descriptor_limit();
    bool all_ok = true;

    std::printf("\n== 1. 1,000 concurrent clients x 10 round trips\n");
    {
      Server server = start({kServer, "--port", "0", "--max-connections", "2000", "--idle-timeout", "60"});
      const Run run = run_client(server.port, 1000, 10);
      std::printf("thread per connection: %s\n  %s\n", run.ok ? "PASS" : "FAIL", run.summary.c_str());
      all_ok = all_ok && run.ok;
      server.child.stop();
    }
    {
      Server server = start({kServer, "--port", "0", "--pool", "1000", "--max-connections", "2000"});
      const Run run = run_client(server.port, 1000, 10);
      std::printf("pool of 1000:          %s\n  %s\n", run.ok ? "PASS" : "FAIL", run.summary.c_str());
      all_ok = all_ok && run.ok;
      server.child.stop();
    }

    std::printf("\n== 2. 50 clients x 200 round trips, round trips per second (best of 3)\n");
    double python = 0;
    if (auto server = start_python()) {
      const Run run = best_of_three(server->port, 50, 200);
      std::printf("python ThreadingTCPServer: %10.0f /s  %s\n", run.per_second, run.ok ? "" : run.summary.c_str());
      python = run.ok ? run.per_second : 0;
      server->child.stop();
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> variants = {
        {"thread per connection", {kServer, "--port", "0"}},
        {"pool of 50", {kServer, "--port", "0", "--pool", "50"}},
    };
    for (const auto& [name, argv] : variants) {
      Server server = start(argv);
      const Run run = best_of_three(server.port, 50, 200);
      server.child.stop();
      all_ok = all_ok && run.ok;
      if (python > 0) {
        const double ratio = run.per_second / python;
        std::printf("%-25s %10.0f /s  %.1fx python (target 3x): %s\n", name.c_str(), run.per_second, ratio,
                    ratio >= 3.0 ? "PASS" : "FAIL");
        all_ok = all_ok && ratio >= 3.0;
      } else {
        std::printf("%-25s %10.0f /s  %s\n", name.c_str(), run.per_second, run.ok ? "" : run.summary.c_str());
      }
    }
    std::printf("\n%s\n", all_ok ? "all targets met" : "SOME TARGETS MISSED");
    return all_ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench11_threaded_server: %s\n", error.what());
    return 1;
  }
}
