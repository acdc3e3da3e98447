// Unit tests of lab::ForkedChildren (common/include/lab/forked.hpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <csignal>
#include <stdexcept>
#include <thread>

#include "lab/forked.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/io.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

TEST_CASE("ForkedChildren runs each function in a child and returns the exit codes in order") {
  {
    lab::ForkedChildren workers;
    for (int i = 0; i < 5; ++i) {
      workers.start([i] { return 10 + i; });
    }
    const auto statuses = workers.wait_all(5s);
    REQUIRE(statuses.size() == 5);
    for (int i = 0; i < 5; ++i) {
      CHECK(statuses[static_cast<std::size_t>(i)] == lab::ExitStatus{10 + i, 0});
    }
    CHECK(workers.running() == 0);
  }
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("ForkedChildren: an exception in a child exits 70, and a child's memory is its own") {
  int shared_looking = 1;
  lab::ForkedChildren workers;
  workers.start([&shared_looking] {
    shared_looking = 2;  // changes the child's copy only
    return shared_looking;
  });
  workers.start([]() -> int { throw std::runtime_error("worker failed on purpose"); });
  const auto statuses = workers.wait_all(5s);
  CHECK(statuses[0] == lab::ExitStatus{2, 0});
  CHECK(statuses[1] == lab::ExitStatus{70, 0});
  CHECK(shared_looking == 1);
}

TEST_CASE("ForkedChildren: wait_all times out on a stuck child, and the destructor kills and reaps it") {
  {
    lab::ForkedChildren workers;
    workers.start([] {
      ::pause();  // waits for a signal that never comes
      return 0;
    });
    CHECK_THROWS_AS(workers.wait_all(50ms), lab::TimeoutError);
    CHECK(workers.running() == 1);
  }
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("ForkedChildren: stop_all ends children with SIGTERM, and reap_finished forgets the ended") {
  lab::ForkedChildren workers;
  workers.start([] { return 0; });
  workers.start([] {
    ::pause();
    return 0;
  });
  workers.stop_all(3s);
  CHECK(workers.running() == 0);
  CHECK(workers.reap_finished() == 0);
  CHECK(workers.size() == 0);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("ForkedChildren: status_of tells how one child ended, and keeps it for wait_all") {
  lab::ForkedChildren workers;
  const pid_t sleeper = workers.start([] {
    ::pause();
    return 0;
  });
  const pid_t quitter = workers.start([] { return 4; });
  CHECK_FALSE(workers.status_of(sleeper).has_value());
  CHECK_FALSE(workers.status_of(-1).has_value());  // not ours
  REQUIRE(::kill(sleeper, SIGKILL) == 0);
  const auto statuses = workers.wait_all(3s);
  CHECK(workers.status_of(sleeper) == std::optional<lab::ExitStatus>(lab::ExitStatus{128 + SIGKILL, SIGKILL}));
  CHECK(workers.status_of(quitter) == std::optional<lab::ExitStatus>(lab::ExitStatus{4, 0}));
  CHECK(statuses.at(0) == lab::ExitStatus{128 + SIGKILL, SIGKILL});
  CHECK(lab::testing::child_pids().empty());
}

namespace {

// The stop handlers of a real program, for one test, then the old ones back.
class StopHandlersInstalled {
 public:
  StopHandlersInstalled() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      ::sigaction(kSignals[i], nullptr, &saved_[i]);
    }
    lab::install_stop_handlers();
  }
  ~StopHandlersInstalled() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      ::sigaction(kSignals[i], &saved_[i], nullptr);
    }
  }
  StopHandlersInstalled(const StopHandlersInstalled&) = delete;
  StopHandlersInstalled& operator=(const StopHandlersInstalled&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGPIPE};
  std::array<struct sigaction, 3> saved_{};
};

}  // namespace

TEST_CASE("ForkedChildren: SIGTERM to one child stops that child, never its parent") {
  const StopHandlersInstalled handlers;
  REQUIRE_FALSE(lab::process_stop().requested());
  auto [quiet, other_end] = lab::testing::socket_pair();  // never written: only a stop ends the wait
  lab::ForkedChildren workers;
  const pid_t first = workers.start([&quiet = quiet] {
    lab::wait_readable(quiet.get(), lab::process_stop());  // throws StopRequested: exit 0
    return 3;
  });
  workers.start([&quiet = quiet] {
    // Its brother's SIGTERM must not reach this one either: it ends by timeout.
    return lab::wait_readable(quiet.get(), lab::process_stop(), 300ms) ? 4 : 5;
  });
  // Sent at once, maybe before the child has its own stop: the signal is
  // blocked across fork and waits for it.
  REQUIRE(::kill(first, SIGTERM) == 0);
  const auto statuses = workers.wait_all(5s);
  CHECK(statuses[0] == lab::ExitStatus{0, 0});
  CHECK(statuses[1] == lab::ExitStatus{5, 0});
  CHECK_FALSE(lab::process_stop().requested());
  CHECK(lab::stop_signal_number() == 0);
}

TEST_CASE("ForkedChildren: at the cap start throws TooManyChildren, and an ended child frees its place") {
  lab::ForkedChildren workers(1);
  workers.start([] {
    ::pause();
    return 0;
  });
  try {
    workers.start([] { return 0; });
    FAIL_CHECK("started a second child with a cap of one");
  } catch (const lab::TooManyChildren& error) {
    CHECK(std::string(error.what()) == "1 worker processes already running, the most allowed");
  }
  CHECK(workers.size() == 1);
  workers.stop_all(3s);
  workers.start([] { return 0; });  // room again
  CHECK(workers.wait_all(5s).back().success());
}

TEST_CASE("accept_client with children reaps each one as it ends, keeping no descriptor for it") {
  const int fds_before = lab::testing::open_fd_count();
  const lab::Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  lab::StopSignal stop;
  lab::ForkedChildren workers;
  for (int i = 0; i < 3; ++i) {
    workers.start([] { return 0; });
  }
  // accept_client waits for a client that never comes; meanwhile the
  // children end, and it must reap them without being woken by a client.
  std::thread acceptor([&] { (void)lab::accept_client(listener, stop, workers); });
  const auto started = std::chrono::steady_clock::now();
  while (!lab::testing::child_pids().empty() && std::chrono::steady_clock::now() - started < 3s) {
    std::this_thread::sleep_for(5ms);  // polling /proc for a state, not waiting for one to come
  }
  const auto took = std::chrono::steady_clock::now() - started;
  stop.request();
  acceptor.join();
  CHECK(lab::testing::child_pids().empty());
  CHECK(took < 500ms);
  CHECK(workers.size() == 0);
  CHECK(lab::testing::open_fd_count() == fds_before + 2);  // the listener and the stop's eventfd
}
