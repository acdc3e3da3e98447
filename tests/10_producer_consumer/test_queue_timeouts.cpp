// Graded tests of lesson 10's BoundedQueue, exercise 10.3 (try_push and pop_for), in
// lessons/10_producer_consumer/bounded_queue.hpp. Built twice: against the
// student's header (label "grade") and against solutions/ (label "reference").
// One file per exercise, so that a wrong answer to one exercise's part of
// the header recompiles only that exercise's cases (tests/cmake/WrongAnswers.cmake).
//
// No case asserts on speed. Where a case checks that a call BLOCKS, it gives
// a wrong implementation a short while to show itself (returning early);
// a correct one passes however slow the machine is.

#include <doctest/doctest.h>

#include <bounded_queue.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "queue_testing.hpp"

using namespace std::chrono_literals;
using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::testing::CloseOnExit;
using lab::producer_consumer::testing::finished_within;

// ---- 10.3 try_push and pop_for ----------------------------------------------

TEST_CASE("10.3 try_push fills the queue, then refuses without waiting and keeps the item") {
  BoundedQueue<std::string> queue(2);
  std::string a = "alpha";
  std::string b = "beta";
  std::string c = "gamma";
  CHECK(queue.try_push(a));
  CHECK(queue.try_push(b));
  CHECK_FALSE_MESSAGE(queue.try_push(c), "try_push into a full queue returned true");
  CHECK_MESSAGE(c == "gamma", "a refused try_push changed the caller's item to '", c, "'");
  CHECK(queue.size() == 2);
  CHECK(queue.pop() == std::optional<std::string>("alpha"));
  CHECK(queue.try_push(c));
  CHECK(queue.pop() == std::optional<std::string>("beta"));
  CHECK(queue.pop() == std::optional<std::string>("gamma"));
}

TEST_CASE("10.3 try_push into a closed queue returns false and keeps the item") {
  BoundedQueue<std::unique_ptr<int>> queue(4);
  auto item = std::make_unique<int>(42);
  queue.close();
  CHECK_FALSE(queue.try_push(item));
  REQUIRE_MESSAGE(item != nullptr, "a refused try_push moved the caller's item away");
  CHECK(*item == 42);
  CHECK(queue.finished());
}

TEST_CASE("10.3 pop_for on an empty queue returns nullopt after its timeout, not before") {
  BoundedQueue<int> queue(4);
  const auto started = std::chrono::steady_clock::now();
  const auto item = queue.pop_for(50ms);
  const auto waited = std::chrono::steady_clock::now() - started;
  CHECK_FALSE(item.has_value());
  CHECK_MESSAGE(waited >= 50ms, "pop_for(50ms) gave up after ",
                std::chrono::duration_cast<std::chrono::microseconds>(waited).count(), " us");
  CHECK_FALSE_MESSAGE(queue.finished(), "a timeout is not the end: finished() must stay false");
  REQUIRE(queue.push(5));
  CHECK_MESSAGE(queue.pop_for(0ms) == std::optional<int>(5),
                "pop_for(0ms) must take an item that is already there");
}

TEST_CASE("10.3 pop_for returns an item pushed while it waits") {
  BoundedQueue<int> queue(4);
  auto consumer = std::async(std::launch::async, [&queue] { return queue.pop_for(30s); });
  CloseOnExit closer(queue);
  REQUIRE(queue.push(11));
  REQUIRE_MESSAGE(finished_within(consumer, 5s), "pop_for still waits after a push");
  CHECK(consumer.get() == std::optional<int>(11));
}

TEST_CASE("10.3 pop_for on a closed queue drains it, then returns nullopt at once") {
  BoundedQueue<int> queue(4);
  REQUIRE(queue.push(1));
  queue.close();
  CHECK(queue.pop_for(30s) == std::optional<int>(1));
  auto consumer = std::async(std::launch::async, [&queue] { return queue.pop_for(30s); });
  REQUIRE_MESSAGE(finished_within(consumer, 5s),
                  "pop_for(30s) on a closed, empty queue waited instead of returning at once");
  CHECK_FALSE(consumer.get().has_value());
  CHECK(queue.finished());
}

TEST_CASE("10.3 close wakes a consumer waiting in pop_for with a long timeout") {
  BoundedQueue<int> queue(4);
  auto consumer = std::async(std::launch::async, [&queue] {
    auto item = queue.pop_for(60s);
    return std::make_pair(item, queue.finished());
  });
  CloseOnExit closer(queue);
  queue.close();
  REQUIRE_MESSAGE(finished_within(consumer, 5s), "close did not wake pop_for");
  const auto [item, finished] = consumer.get();
  CHECK_FALSE(item.has_value());
  CHECK(finished);
}
