// Helpers shared by lesson 11's tests: the tests' own echo-upper handler,
// the student's server on a thread of the test, thread counts and bounded
// waits. None of them uses the student's code except ServeThread.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <stop_token>
#include <string>
#include <thread>

#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "threaded_server.hpp"

namespace lab::threaded::testing {

using namespace std::chrono_literals;

inline std::string upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return text;
}

// The protocol, written by the tests (not the student's handler).
inline void echo_upper(const Fd& connection, std::stop_token stop) {
  while (!stop.stop_requested()) {
    auto chunk = read_some(connection, 4096);
    if (!chunk) {
      return;
    }
    write_all(connection, upper(*chunk));
  }
}

// Sends `text` and checks that its upper-cased copy comes back within 3 s.
inline void round_trip(const Fd& socket, const std::string& text) {
  write_all(socket, text);
  set_receive_timeout(socket, 3000ms);
  std::optional<std::string> reply;
  try {
    reply = read_exact(socket, text.size());
  } catch (const std::exception& error) {
    FAIL("sent '", text, "', the read failed: ", std::string(error.what()));
  }
  REQUIRE_MESSAGE(reply, "sent '", text, "', the connection was closed instead of a reply");
  CHECK(*reply == upper(text));
}

// True if the peer closed `socket` (end of stream or a reset) within `limit`.
inline bool closed_within(const Fd& socket, std::chrono::milliseconds limit) {
  set_receive_timeout(socket, limit);
  try {
    while (read_some(socket, 4096)) {
    }
    return true;
  } catch (const TimeoutError&) {
    return false;
  } catch (const std::system_error&) {
    return true;  // a reset
  }
}

inline int thread_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

// A sanitizer's runtime starts a helper thread with the first thread a
// program makes: make (and join) one first, then count.
inline int baseline_thread_count() {
  std::jthread([] {}).join();
  return thread_count();
}

// Waits (bounded) until `condition` holds; returns whether it did.
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 3000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// The student's ThreadedServer, its serve_forever on a thread of the test,
// on a listener of port 0. Declare the test's client sockets AFTER it: they
// are closed first, so every conversation ends even without shutdown().
class ServeThread {
 public:
  explicit ServeThread(ServerOptions options, Handler handler = echo_upper)
      : listener_(tcp_listen(Endpoint{"127.0.0.1", 0})),
        port_(SocketAddress::local_of(listener_.get()).port()),
        server_(std::move(handler), options) {
    result_ = std::async(std::launch::async, [this] { return server_.serve_forever(listener_, stop_); });
  }
  ~ServeThread() {
    stop_.request();
    if (result_.valid() && result_.wait_for(2s) != std::future_status::ready) {
      ::shutdown(listener_.get(), SHUT_RDWR);  // a loop that ignores the stop must not hang the test
    }
    if (result_.valid()) {
      result_.wait();
    }
  }
  ServeThread(const ServeThread&) = delete;
  ServeThread& operator=(const ServeThread&) = delete;

  // A serve_forever that ends at once (an exercise not written yet throws)
  // fails the first connect with what it threw, not a later read's timeout.
  // The short wait only decides how fast that is reported, never a verdict.
  [[nodiscard]] Fd connect() {
    if (!checked_start_) {
      checked_start_ = true;
      if (result_.wait_for(50ms) == std::future_status::ready) {
        const std::size_t served = result_.get();  // rethrows
        FAIL("serve_forever returned ", served, " before any client connected; it must serve until stopped");
      }
    }
    return tcp_connect(Endpoint{"127.0.0.1", port_});
  }
  [[nodiscard]] ThreadedServer& server() noexcept { return server_; }
  std::string describe() { return lab::testing::outcome(result_); }

  // Requests the stop; what serve_forever returned (rethrows what it threw).
  std::size_t stop() {
    stop_.request();
    REQUIRE_MESSAGE(result_.wait_for(3s) == std::future_status::ready,
                    "serve_forever did not return within 3 s of the stop request");
    return result_.get();
  }

 private:
  Fd listener_;
  std::uint16_t port_;
  bool checked_start_ = false;
  StopSignal stop_;
  ThreadedServer server_;
  std::future<std::size_t> result_;  // last: its thread ends before the rest goes
};

}  // namespace lab::threaded::testing
