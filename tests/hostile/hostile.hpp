// What the hostile-client cases share: the reference servers' paths, and
// clients that read with a deadline and see whether the server hung up.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <system_error>

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

// SIGTERM: the server must end within 1 s, with status 0, leaving no child.
inline void stop_cleanly(ServerProcess& server) {
  const auto started = std::chrono::steady_clock::now();
  CHECK(server.stop(3s) == lab::ExitStatus{0, 0});
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK(lab::testing::child_pids().empty());
}

}  // namespace hostile
