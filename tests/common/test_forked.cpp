// Unit tests of lab::ForkedChildren (common/include/lab/forked.hpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>

#include "lab/forked.hpp"
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
