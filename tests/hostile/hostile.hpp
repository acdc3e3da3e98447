// What the hostile-client cases share: the reference servers' paths, and
// clients that read with a deadline and see whether the server hung up.
#pragma once

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/testing.hpp"

namespace hostile {

using namespace std::chrono_literals;
using lab::testing::ServerProcess;

inline std::string program(const std::string& lesson, const std::string& name = "server") {
  return std::string(LAB_SOLUTIONS_DIR) + "/" + lesson + "/" + name;
}

inline lab::Fd connect_to(const ServerProcess& server) {
  return lab::tcp_connect(lab::Endpoint{server.host(), server.port()});
}

// Reads until `expected` has arrived (or the stream ends, or `timeout`).
inline std::string read_until(const lab::Fd& socket, const std::string& expected, std::chrono::milliseconds timeout) {
  lab::StopSignal never;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string got;
  while (got.find(expected) == std::string::npos) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !lab::wait_readable(socket.get(), never, left)) {
      break;
    }
    const auto chunk = lab::read_some(socket, 4096);
    if (!chunk) {
      break;
    }
    got += *chunk;
  }
  return got;
}

// True once the server has closed `socket` (end of stream or reset) within `timeout`.
inline bool closed_by_server(const lab::Fd& socket, std::chrono::milliseconds timeout) {
  lab::StopSignal never;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !lab::wait_readable(socket.get(), never, left)) {
      return false;
    }
    try {
      if (!lab::read_some(socket, 65536)) {
        return true;
      }
    } catch (const std::system_error&) {
      return true;  // reset
    }
  }
}

// The server's own children (running, or zombies not yet reaped), from /proc.
inline std::vector<int> children_of(ServerProcess& server) {
  const std::string pid = std::to_string(server.child().pid());
  std::ifstream list("/proc/" + pid + "/task/" + pid + "/children");
  std::vector<int> pids;
  for (int child = 0; list >> child;) {
    pids.push_back(child);
  }
  return pids;
}

// Polls /proc until the server has `count` children or `timeout` passes;
// true if it got there. (Polling a state, not sleeping for one to come.)
inline bool wait_for_children(ServerProcess& server, std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (children_of(server).size() != count) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// How many descriptors the server has open (entries of /proc/PID/fd).
inline int open_fds_of(ServerProcess& server) {
  const std::filesystem::path fds = "/proc/" + std::to_string(server.child().pid()) + "/fd";
  const auto entries = std::filesystem::directory_iterator(fds);
  return static_cast<int>(std::distance(std::filesystem::begin(entries), std::filesystem::end(entries)));
}

// Polls /proc until the server is back to `baseline` descriptors and has no
// child (running or zombie), or `timeout` passes; true if it got there. A
// server closes a client's descriptors just after the client has its
// answer, so the state is waited for, within a bound.
inline bool back_to_baseline(ServerProcess& server, int baseline, std::chrono::milliseconds timeout = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (open_fds_of(server) != baseline || !children_of(server).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// This test process may open `count` descriptors for as long as the object
// lives (a connect storm holds one per client). Start the server first: it
// keeps the limit it was started with.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t count) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit raised = saved_;
    raised.rlim_cur = std::max(saved_.rlim_cur, std::min(count, saved_.rlim_max));
    REQUIRE_MESSAGE(raised.rlim_cur >= count, "the hard descriptor limit is below ", count);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);
  }
  ~DescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  DescriptorLimit(const DescriptorLimit&) = delete;
  DescriptorLimit& operator=(const DescriptorLimit&) = delete;

 private:
  rlimit saved_{};
};

// Reads and drops what the server prints, on a thread of its own, for as
// long as the object lives. A server logs a line or two per client and
// nobody else reads its pipes: under a storm of clients they would fill
// (64 KiB) and the server would block in its next log line.
class OutputDrain {
 public:
  explicit OutputDrain(ServerProcess& server)
      : thread_([this, out = server.child().output().get(), err = server.child().errors().get()] {
          drain({out, err});
        }) {}
  ~OutputDrain() { stop_.request(); }  // then the jthread joins
  OutputDrain(const OutputDrain&) = delete;
  OutputDrain& operator=(const OutputDrain&) = delete;

 private:
  void drain(std::vector<int> pipes) {
    while (!pipes.empty()) {
      std::vector<pollfd> entries{{stop_.fd(), POLLIN, 0}};
      for (const int fd : pipes) {
        entries.push_back({fd, POLLIN, 0});
      }
      if (::poll(entries.data(), entries.size(), -1) < 0 || entries[0].revents != 0) {
        return;
      }
      for (std::size_t i = 1; i < entries.size(); ++i) {
        char chunk[4096];
        if (entries[i].revents != 0 && ::read(entries[i].fd, chunk, sizeof chunk) <= 0) {
          pipes.erase(std::find(pipes.begin(), pipes.end(), entries[i].fd));  // ended
        }
      }
    }
  }

  lab::StopSignal stop_;
  std::jthread thread_;  // last: it starts once stop_ exists
};

// SIGTERM: the server must end within 1 s, with status 0, leaving no child.
inline void stop_cleanly(ServerProcess& server) {
  const auto started = std::chrono::steady_clock::now();
  CHECK(server.stop(3s) == lab::ExitStatus{0, 0});
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK(lab::testing::child_pids().empty());
}

}  // namespace hostile
