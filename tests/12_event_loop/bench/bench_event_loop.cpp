// Benchmark (label "bench", release build): the reference epoll server of
// lesson 12 against its targets, driven by the lesson's own client.
//   - 10,000 idle connections held by one thread: CPU (target <= 1% of a
//     core, from /proc/PID/stat) and memory (target <= 25 MiB VmRSS);
//   - the burst of those 10,000 connects: all served (target 10,000);
//   - throughput at 1,000 connections, in round trips per second, next to
//     lesson 11's threaded server when it has been built;
//   - the busy loop's CPU while idle, for contrast.
//
//   build/release/lessons/12_event_loop/bench12_event_loop
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "descriptor_limit.hpp"
#include "lab/process.hpp"

namespace {

using namespace std::chrono_literals;

const std::string kDir = std::string(LAB_BUILD_DIR) + "/solutions";

struct Server {
  lab::Child child;
  std::string port;
};

// Starts a server with --port 0 and reads its ready line.
Server start_server(const std::string& program, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{program, "--host", "127.0.0.1", "--port", "0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Server server{lab::Child::spawn(argv), ""};
  lab::LineReader lines(server.child.output());
  while (const auto line = lines.next_line(10s)) {
    if (line->rfind("listening on ", 0) == 0) {
      server.port = line->substr(line->rfind(':') + 1);
      return server;
    }
  }
  throw std::runtime_error(program + " ended before its ready line");
}

long cpu_ticks(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long total = 0;
  for (int k = 3; k <= 15 && rest >> field; ++k) {
    if (k == 14 || k == 15) {
      total += std::stol(field);  // utime, stime
    }
  }
  return total;
}

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

// The share of one core `pid` used over `period`.
double cpu_share(int pid, std::chrono::milliseconds period) {
  const long before = cpu_ticks(pid);
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(period);  // measuring idleness: nothing happens on purpose
  const long used = cpu_ticks(pid) - before;
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
  return static_cast<double>(used) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / wall.count();
}

struct ClientRun {
  std::vector<std::string> lines;
  bool ok = false;
  std::optional<double> idle_cpu;  // the server's, while the client held its connections
  long idle_rss_kib = -1;
};

// Runs the lesson's client against `port`; with --hold, measures the
// server's CPU and memory while the connections are held idle.
ClientRun run_client(const std::string& port, std::vector<std::string> extra, int server_pid = -1) {
  std::vector<std::string> argv{kDir + "/12_event_loop/client", "--port", port};
  argv.insert(argv.end(), extra.begin(), extra.end());
  lab::SpawnOptions options;
  options.merge_stderr = true;
  lab::Child client = lab::Child::spawn(argv, options);
  lab::LineReader lines(client.output());
  ClientRun run;
  while (const auto line = lines.next_line(300s)) {
    run.lines.push_back(*line);
    if (server_pid > 0 && line->rfind("holding ", 0) == 0) {
      std::this_thread::sleep_for(500ms);  // let the last replies settle
      run.idle_cpu = cpu_share(server_pid, 3000ms);
      run.idle_rss_kib = rss_kib(server_pid);
    }
  }
  run.ok = client.wait().success();
  return run;
}

std::string find_line(const ClientRun& run, const std::string& start) {
  for (const auto& line : run.lines) {
    if (line.find(start) != std::string::npos) {
      return line;
    }
  }
  return "(none)";
}

// "... 75630 round trips/s ..." -> 75630
double round_trips_per_second(const ClientRun& run) {
  const std::string line = find_line(run, "round trips/s");
  const auto end = line.find(" round trips/s");
  if (end == std::string::npos) {
    return 0;
  }
  const auto start = line.rfind(' ', end - 1);
  return std::stod(line.substr(start + 1, end - start - 1));
}

void print_client_failure(const ClientRun& run) {
  fmt::print("  the client failed; its output:\n");
  for (const auto& line : run.lines) {
    fmt::print("    {}\n", line);
  }
}

}  // namespace

int main() {
  constexpr int kIdle = 10'000;
  const auto limit = lab::event_loop::raise_descriptor_limit();
  // The client and the server are separate processes (each inherits this
  // raised limit): each needs a descriptor per connection, plus a few.
  // In one process, client and server together would need 2 x 10,000 + 10.
  fmt::print("{}\n", lab::event_loop::describe(limit, kIdle + 100));
  if (limit.now < static_cast<rlim_t>(kIdle + 100)) {
    fmt::print("cannot hold {} connections in one process with this limit: ask for a higher hard limit\n", kIdle);
    return 1;
  }
  bool all_met = true;

  // 1 and 2: the burst of 10,000 connects, then holding them idle.
  {
    Server server = start_server(kDir + "/12_event_loop/server", {"--idle-timeout", "0"});
    const ClientRun run = run_client(
        server.port, {"--connections", std::to_string(kIdle), "--rounds", "1", "--hold", "5"},
        server.child.pid());
    fmt::print("\n10,000 connects in a burst, then held idle by one thread (lesson 12, epoll)\n");
    fmt::print("  client: {}\n", find_line(run, "connected "));
    fmt::print("  client: {}\n", find_line(run, "every reply correct"));
    const bool served = run.ok && find_line(run, "every reply correct") != "(none)";
    fmt::print("  connections served: {} of {} (target: all)\n", served ? kIdle : 0, kIdle);
    all_met = all_met && served;
    if (run.idle_cpu) {
      const double percent = *run.idle_cpu * 100;
      const double mib = static_cast<double>(run.idle_rss_kib) / 1024.0;
      fmt::print("  idle CPU: {:.2f}% of a core  (target <= 1%: {:.2f}x the target)\n", percent, percent / 1.0);
      fmt::print("  resident: {:.1f} MiB           (target <= 25 MiB: {:.2f}x the target)\n", mib, mib / 25.0);
      all_met = all_met && percent <= 1.0 && mib <= 25.0;
    } else {
      print_client_failure(run);
      all_met = false;
    }
    server.child.stop();
  }

  // 3: throughput at 1,000 connections, next to lesson 11 when built.
  const std::vector<std::string> load{"--connections", "1000", "--rounds", "50", "--size", "512"};
  double epoll_rate = 0;
  {
    Server server = start_server(kDir + "/12_event_loop/server", {"--idle-timeout", "0"});
    const ClientRun run = run_client(server.port, load);
    epoll_rate = round_trips_per_second(run);
    fmt::print("\nthroughput at 1,000 connections x 50 rounds of 512 bytes\n");
    fmt::print("  lesson 12 (one thread, epoll): {:.0f} round trips/s\n", epoll_rate);
    if (!run.ok) {
      print_client_failure(run);
      all_met = false;
    }
    server.child.stop();
  }
  const std::string threaded = kDir + "/11_threaded_server/server";
  if (std::filesystem::exists(threaded)) {
    try {
      // Its cap (256 by default) would refuse most of the 1,000 clients.
      Server server = start_server(threaded, {"--max-connections", "2000"});
      const ClientRun run = run_client(server.port, load);
      const double rate = round_trips_per_second(run);
      const double ratio = rate > 0 ? epoll_rate / rate : 0.0;
      fmt::print("  lesson 11 (threads):           {:.0f} round trips/s  (epoll / threads: {:.2f}; target >= 2)\n",
                 rate, ratio);
      all_met = all_met && ratio >= 2;
      if (!run.ok) {
        print_client_failure(run);
      }
      server.child.stop();
    } catch (const std::exception& error) {
      fmt::print("  lesson 11's server could not be measured: {}\n", error.what());
    }
  } else {
    fmt::print("  lesson 11's threaded server is not built ({}): no comparison\n", threaded);
  }

  // For contrast: the busy loop, idle.
  {
    Server server = start_server(kDir + "/12_event_loop/server", {"--busy-loop"});
    const ClientRun run =
        run_client(server.port, {"--connections", "10", "--rounds", "1", "--hold", "4"}, server.child.pid());
    if (run.idle_cpu) {
      fmt::print("\nthe busy loop (--busy-loop), 10 idle connections: {:.0f}% of a core\n", *run.idle_cpu * 100);
    }
    server.child.stop();
  }

  // Figures, not a pass or a fail: a loaded machine moves them.
  fmt::print("\n{}\n", all_met ? "every target met" : "some targets missed (see above)");
  return 0;
}
