// Graded tests of lesson 11's fixed pool (exercise 11.2,
// lessons/11_threaded_server/threaded_server.hpp), on socket pairs: they
// use no part of the server class (11.1).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lab/io.hpp"
#include "lab/testing.hpp"
#include "server_testing.hpp"
#include "threaded_server.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::threaded::WorkerPool;
using lab::threaded::testing::baseline_thread_count;
using lab::threaded::testing::closed_within;
using lab::threaded::testing::echo_upper;
using lab::threaded::testing::eventually;
using lab::threaded::testing::round_trip;
using lab::threaded::testing::thread_count;

TEST_CASE("11.2 the pool serves every connection submitted, on at most its number of threads") {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::vector<Fd> clients;  // declared first: closed last, after the pool has stopped
  WorkerPool pool(3, 100, [&](const Fd& connection, std::stop_token stop) {
    {
      const std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    echo_upper(connection, std::move(stop));
  });
  for (int i = 0; i < 20; ++i) {
    auto [client, server_side] = lab::testing::socket_pair();
    REQUIRE(pool.submit(server_side));
    CHECK_MESSAGE(!server_side, "submit must take the connection (the caller's Fd left empty)");
    round_trip(client, "connection " + std::to_string(i) + "\n");
    client.reset();  // this conversation ends: the worker takes the next
  }
  CHECK(eventually([&] { return pool.handled() == 20; }));
  pool.stop();
  const std::lock_guard lock(mutex);
  CHECK_MESSAGE(threads.size() <= 3, "20 conversations ran on ", threads.size(), " threads; the pool has 3");
}

TEST_CASE("11.2 submit refuses when the queue is full and leaves the connection with the caller") {
  std::vector<Fd> clients;
  WorkerPool pool(1, 2, echo_upper);
  auto [busy_client, busy] = lab::testing::socket_pair();
  REQUIRE(pool.submit(busy));
  round_trip(busy_client, "the worker has me\n");  // the one worker is now busy with this one
  std::vector<Fd> waiting_clients;
  for (int i = 0; i < 2; ++i) {
    auto [client, server_side] = lab::testing::socket_pair();
    CHECK_MESSAGE(pool.submit(server_side), "the queue holds 2; connection ", i + 1, " of 2 was refused");
    waiting_clients.push_back(std::move(client));
  }
  auto [extra_client, extra] = lab::testing::socket_pair();
  const int number = extra.get();
  CHECK_MESSAGE(!pool.submit(extra), "a third connection waiting in a queue of 2 must be refused");
  CHECK_MESSAGE(extra.get() == number, "a refused connection stays with the caller, open");
  // The queued ones are served, in order, once the busy one ends.
  busy_client.reset();
  for (auto& client : waiting_clients) {
    round_trip(client, "served later\n");
    client.reset();
  }
  CHECK(eventually([&] { return pool.handled() == 3; }));
}

TEST_CASE("11.2 zero workers are refused with std::invalid_argument") {
  {
    // First a pool that works, so that this case cannot pass on a stub.
    WorkerPool pool(1, 4, echo_upper);
    auto [client, server_side] = lab::testing::socket_pair();
    REQUIRE(pool.submit(server_side));
    round_trip(client, "ok\n");
  }
  CHECK_THROWS_AS(WorkerPool(0, 4, echo_upper), std::invalid_argument);
}

TEST_CASE("11.2 a handler that throws ends that conversation only, and its connection is closed") {
  WorkerPool pool(1, 8, [](const Fd& connection, std::stop_token stop) {
    auto first = lab::read_some(connection, 4096);
    if (first && first->find("boom") != std::string::npos) {
      throw std::runtime_error("boom");
    }
    if (first) {
      lab::write_all(connection, lab::threaded::testing::upper(*first));
    }
    echo_upper(connection, std::move(stop));
  });
  auto [bomber, bomb_side] = lab::testing::socket_pair();
  REQUIRE(pool.submit(bomb_side));
  lab::write_all(bomber, "boom\n");
  CHECK_MESSAGE(closed_within(bomber, 3000ms), "the connection whose handler threw must be closed");
  auto [client, server_side] = lab::testing::socket_pair();
  REQUIRE(pool.submit(server_side));
  round_trip(client, "the same worker goes on\n");
  client.reset();
  CHECK(eventually([&] { return pool.handled() == 2; }));
}

TEST_CASE("11.2 stop finishes the queued connections, joins every worker, and refuses later submits") {
  const int before = baseline_thread_count();
  std::atomic<int> stopped_seen{0};
  {
    WorkerPool pool(2, 8, [&stopped_seen](const Fd& connection, std::stop_token stop) {
      // Ends on end of stream or on the stop token (bounded either way).
      lab::set_receive_timeout(connection, 50ms);
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (!stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
        try {
          if (!lab::read_some(connection, 4096)) {
            return;
          }
        } catch (const lab::TimeoutError&) {
        }
      }
      if (stop.stop_requested()) {
        ++stopped_seen;
      }
    });
    std::vector<Fd> clients;
    for (int i = 0; i < 4; ++i) {
      auto [client, server_side] = lab::testing::socket_pair();
      REQUIRE(pool.submit(server_side));
      clients.push_back(std::move(client));
    }
    const auto started = std::chrono::steady_clock::now();
    pool.stop();
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK_MESSAGE(took < 2s, "stop() took ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                  " ms: request the workers' stop tokens");
    CHECK_MESSAGE(pool.handled() == 4, "stop() must let the workers finish the queued connections; handled ",
                  pool.handled(), " of 4");
    CHECK(stopped_seen.load() >= 2);
    CHECK_MESSAGE(thread_count() == before, "threads before the pool: ", before, ", after stop(): ", thread_count());
    auto [late_client, late] = lab::testing::socket_pair();
    CHECK_MESSAGE(!pool.submit(late), "submit after stop() must return false");
    CHECK(late);
    pool.stop();  // a second time: nothing to do
  }
}
