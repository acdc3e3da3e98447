// Graded tests of lesson 10's consumer pool (exercise 10.4,
// lessons/10_producer_consumer/consumer_pool.hpp), and end-to-end tests of
// its server and client.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <future>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "consumer_pool.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "queue_testing.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::testing::CloseOnExit;
using lab::producer_consumer::ConsumerPool;
using lab::producer_consumer::testing::finished_within;
using lab::producer_consumer::testing::baseline_thread_count;
using lab::producer_consumer::testing::thread_count;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

std::size_t total(const std::vector<std::size_t>& counts) {
  return std::accumulate(counts.begin(), counts.end(), std::size_t{0});
}

}  // namespace

// ---- 10.4 the consumer pool ------------------------------------------------------

TEST_CASE("10.4 the pool handles every item exactly once and counts per consumer") {
  constexpr std::size_t kConsumers = 4;
  constexpr int kItems = 10'000;
  BoundedQueue<std::string> queue(16);
  std::vector<std::vector<int>> handled(kConsumers);  // handled[k]: written by consumer k only
  std::vector<std::size_t> counts;
  {
    ConsumerPool pool(queue, kConsumers, [&handled](std::size_t consumer, std::string item) {
      REQUIRE(consumer < handled.size());
      handled[consumer].push_back(std::stoi(item));
    });
    for (int i = 0; i < kItems; ++i) {
      REQUIRE(queue.push(std::to_string(i)));
    }
    counts = pool.finish();
  }
  REQUIRE_MESSAGE(counts.size() == kConsumers, "finish() must return one count per consumer, got ", counts.size());
  CHECK_MESSAGE(total(counts) == kItems, "expected ", kItems, " items handled in all, got ", total(counts));
  std::vector<int> all;
  for (std::size_t k = 0; k < kConsumers; ++k) {
    CHECK_MESSAGE(counts[k] == handled[k].size(), "consumer ", k, " handled ", handled[k].size(),
                  " items but its count says ", counts[k]);
    all.insert(all.end(), handled[k].begin(), handled[k].end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int> expected(kItems);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK_MESSAGE(all == expected, "some items were lost or handled twice");
  CHECK(queue.finished());
}

TEST_CASE("10.4 finish with no items returns a zero count for each consumer, and no thread is left") {
  const int threads_before = baseline_thread_count();
  BoundedQueue<std::string> queue(4);
  std::vector<std::size_t> counts;
  {
    ConsumerPool pool(queue, 3, [](std::size_t, std::string) {});
    counts = pool.finish();
  }
  CHECK(counts == std::vector<std::size_t>{0, 0, 0});
  CHECK(queue.is_closed());
  CHECK_MESSAGE(thread_count() == threads_before, "threads before the pool: ", threads_before,
                ", after it: ", thread_count());
}

TEST_CASE("10.4 zero consumers are refused with std::invalid_argument") {
  BoundedQueue<std::string> queue(4);
  // First a pool that works, so that this case cannot pass on a stub.
  {
    ConsumerPool pool(queue, 1, [](std::size_t, std::string) {});
    const auto counts = pool.finish();
    CHECK(counts.size() == 1);
  }
  BoundedQueue<std::string> other(4);
  CHECK_THROWS_AS(ConsumerPool(other, 0, [](std::size_t, std::string) {}), std::invalid_argument);
}

TEST_CASE("10.4 a handler that throws closes the queue, wakes a blocked producer, and finish rethrows") {
  BoundedQueue<std::string> queue(2);
  ConsumerPool pool(queue, 2, [](std::size_t, std::string item) {
    if (item == "bad") {
      throw std::runtime_error("cannot handle 'bad'");
    }
  });
  // Keep pushing: once the handler has thrown and closed the queue, push
  // returns false instead of waiting for ever on consumers that are gone.
  auto producer = std::async(std::launch::async, [&queue] {
    if (!queue.push("bad")) {
      return 0;
    }
    for (int i = 0; i < 1'000'000; ++i) {
      if (!queue.push("good")) {
        return 1;
      }
    }
    return 2;
  });
  CloseOnExit closer(queue);
  REQUIRE_MESSAGE(finished_within(producer, 5s), "the producer still waits: a failed consumer must close the queue");
  CHECK_MESSAGE(producer.get() == 1, "push must return false once a handler has failed");
  CHECK(queue.is_closed());
  CHECK_THROWS_WITH_AS(pool.finish(), "cannot handle 'bad'", std::runtime_error);
}

TEST_CASE("10.4 destroying the pool without finish closes the queue and joins every thread") {
  const int threads_before = baseline_thread_count();
  BoundedQueue<std::string> queue(4);
  std::atomic<int> handled{0};
  {
    ConsumerPool pool(queue, 4, [&handled](std::size_t, std::string) { ++handled; });
    REQUIRE(queue.push("one"));
    REQUIRE(queue.push("two"));
    // No finish(): as when an exception unwinds the producer.
  }
  CHECK_MESSAGE(queue.is_closed(), "the pool's destructor must close the queue");
  CHECK_MESSAGE(thread_count() == threads_before, "threads before the pool: ", threads_before,
                ", after it: ", thread_count(), " (a consumer was left running)");
  // Drained by the consumers before they ended, or left in the queue: each
  // item is in exactly one of the two places.
  std::size_t left = 0;
  while (queue.pop()) {
    ++left;
  }
  CHECK(handled.load() + static_cast<int>(left) == 2);
}

// ---- The pair, end to end --------------------------------------------------------

TEST_CASE("10.p pair: the client streams 10,000 items and every one is processed exactly once") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--consumers", "4", "--capacity", "8"});
  INFO(server.stop_and_describe());
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--items", "10000"}, "", 8s);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("total: 10000 items, sum 50005000,") != std::string::npos);
  CHECK(result.out.find("consumer 4: ") != std::string::npos);
  CHECK(result.out.find("every item was processed exactly once") != std::string::npos);
}

TEST_CASE("10.p pair: slow consumers make the producer wait (back-pressure)") {
  auto server = lab::testing::ServerProcess::start(
      kServer, {"--consumers", "2", "--capacity", "2", "--work-us", "2000"});
  INFO(server.stop_and_describe());
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--items", "200"}, "", 8s);
  INFO(result.describe());
  REQUIRE(result.status.success());
  // 200 items arrive in one read; a queue of 2 with consumers that need 2 ms
  // per item is full long before the reader is through them.
  CHECK(result.out.find("total: 200 items, sum 20100,") != std::string::npos);
  CHECK(result.out.find("producer waited 0 times") == std::string::npos);
}

TEST_CASE("10.p pair: garbage and resets get an error or a closed connection, and the server goes on") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const Endpoint endpoint{"127.0.0.1", server.port()};
  {
    const Fd garbage = lab::tcp_connect(endpoint);
    lab::write_all(garbage, "1\n2\nthree\n4\n");
    lab::set_receive_timeout(garbage, 3000ms);
    const std::string reply = lab::read_to_end(garbage, 4096);
    CHECK_MESSAGE(reply.rfind("error: not a number: \"three\"", 0) == 0, "reply to garbage: ", reply);
  }
  {
    const Fd too_long = lab::tcp_connect(endpoint);
    // 100 bytes in one write arrive in one read, so the server has read
    // everything when it answers. (Closing a socket with unread input sends
    // a reset, which could destroy the error line before we read it.)
    lab::write_all(too_long, std::string(100, '7'));
    lab::set_receive_timeout(too_long, 3000ms);
    const std::string reply = lab::read_to_end(too_long, 4096);
    CHECK_MESSAGE(reply.find("error: a line longer than") == 0, "reply to a 100-byte line: ", reply);
  }
  {
    Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, "1\n2\n");
    const linger abort_on_close{1, 0};  // close sends RST
    REQUIRE(::setsockopt(rude.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  }
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--items", "100"});
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("total: 100 items, sum 5050,") != std::string::npos);
}

TEST_CASE("10.p pair: SIGTERM stops the server with status 0 after serving a producer") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--items", "1000"});
  INFO(result.describe());
  REQUIRE(result.status.success());
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("stopped after 1 producer(s)") != std::string::npos, log);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("10.p pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  // The same client works once a server is there (so a stub cannot pass).
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto works = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--items", "10"});
  INFO(works.describe());
  CHECK(works.out.find("total: 10 items, sum 55,") != std::string::npos);
}
