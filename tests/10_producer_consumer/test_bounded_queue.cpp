// Graded tests of lesson 10's BoundedQueue, exercise 10.1 (push and pop), in
// lessons/10_producer_consumer/bounded_queue.hpp. Built twice: against the
// student's header (label "grade") and against solutions/ (label "reference").
// One file per exercise, so that a wrong answer to one exercise's part of
// the header recompiles only that exercise's cases (tests/cmake/WrongAnswers.cmake).
//
// No case asserts on speed. Where a case checks that a call BLOCKS, it gives
// a wrong implementation a short while to show itself (returning early);
// a correct one passes however slow the machine is.

#include <doctest/doctest.h>

#include <atomic>
#include <bounded_queue.hpp>
#include <chrono>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <vector>

#include "queue_testing.hpp"

using namespace std::chrono_literals;
using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::testing::CloseOnExit;
using lab::producer_consumer::testing::becomes_true;
using lab::producer_consumer::testing::finished_within;

// ---- 10.1 push and pop ---------------------------------------------------------

TEST_CASE("10.1 pop returns items in the order they were pushed") {
  BoundedQueue<int> queue(8);
  for (int i = 1; i <= 5; ++i) {
    REQUIRE_MESSAGE(queue.push(i), "push into an open queue with room returned false");
  }
  CHECK(queue.size() == 5);
  for (int i = 1; i <= 5; ++i) {
    const auto item = queue.pop();
    REQUIRE_MESSAGE(item.has_value(), "pop returned nullopt from an open queue holding items");
    CHECK_MESSAGE(*item == i, "expected item ", i, ", got ", *item);
  }
  CHECK(queue.size() == 0);
}

TEST_CASE("10.1 a move-only item (std::unique_ptr) passes through push and pop") {
  BoundedQueue<std::unique_ptr<std::string>> queue(2);
  REQUIRE(queue.push(std::make_unique<std::string>("first")));
  REQUIRE(queue.push(std::make_unique<std::string>("second")));
  auto first = queue.pop();
  REQUIRE(first.has_value());
  REQUIRE(*first != nullptr);
  CHECK(**first == "first");
  auto second = queue.pop();
  REQUIRE((second.has_value() && *second != nullptr));
  CHECK(**second == "second");
}

TEST_CASE("10.1 push blocks while the queue is full, and goes on after a pop") {
  BoundedQueue<int> queue(2);
  REQUIRE(queue.push(1));
  REQUIRE(queue.push(2));
  std::atomic<bool> returned{false};
  auto producer = std::async(std::launch::async, [&] {
    const bool queued = queue.push(3);
    returned = true;
    return queued;
  });
  CloseOnExit closer(queue);
  CHECK_FALSE_MESSAGE(becomes_true(returned, 100ms),
                      "push returned while the queue was full; it must wait for room");
  CHECK(queue.size() == 2);
  const auto first = queue.pop();
  REQUIRE(first.has_value());
  CHECK(*first == 1);
  REQUIRE_MESSAGE(finished_within(producer, 5s), "push still waits after a pop made room");
  CHECK_MESSAGE(producer.get(), "push returned false although the queue is open");
  CHECK(queue.pop() == std::optional<int>(2));
  CHECK(queue.pop() == std::optional<int>(3));
}

TEST_CASE("10.1 pop blocks while the queue is empty, and returns the item pushed later") {
  BoundedQueue<std::string> queue(4);
  std::atomic<bool> returned{false};
  auto consumer = std::async(std::launch::async, [&] {
    auto item = queue.pop();
    returned = true;
    return item;
  });
  CloseOnExit closer(queue);
  CHECK_FALSE_MESSAGE(becomes_true(returned, 100ms),
                      "pop returned from an empty, open queue; it must wait for an item");
  REQUIRE(queue.push("late"));
  REQUIRE_MESSAGE(finished_within(consumer, 5s), "pop still waits after a push");
  const auto item = consumer.get();
  REQUIRE_MESSAGE(item.has_value(), "pop returned nullopt instead of the pushed item");
  CHECK(*item == "late");
}

TEST_CASE("10.1 a queue of capacity 1 hands items over one at a time, in order") {
  BoundedQueue<std::uint64_t> queue(1);
  constexpr std::uint64_t kCount = 20'000;
  auto producer = std::async(std::launch::async, [&] {
    for (std::uint64_t i = 0; i < kCount; ++i) {
      if (!queue.push(i)) {
        return false;
      }
    }
    return true;
  });
  CloseOnExit closer(queue);
  std::uint64_t expected = 0;
  for (; expected < kCount; ++expected) {
    const auto item = queue.pop();
    REQUIRE(item.has_value());
    REQUIRE_MESSAGE(*item == expected, "expected item ", expected, ", got ", *item);
    REQUIRE_MESSAGE(queue.size() <= 1, "a queue of capacity 1 held ", queue.size(), " items");
  }
  REQUIRE(finished_within(producer, 5s));
  CHECK(producer.get());
}

TEST_CASE("10.1 capacity 1, 6 producers and 6 consumers, 300 rounds: no lost wake-up, never over capacity") {
  // One condition variable shared by producers and consumers with
  // notify_one, or `if` instead of a predicate, loses a wake-up or lets a
  // woken thread find the slot taken; with capacity 1 and many threads of
  // each kind that happens within a few rounds. Each round starts every
  // thread together (a latch) and must end within its own deadline.
  constexpr int kThreads = 6;
  constexpr int kPerThread = 50;
  for (int round = 0; round < 300; ++round) {
    BoundedQueue<int> queue(1);
    std::latch start(2 * kThreads);
    std::atomic<int> over_capacity{0};
    std::vector<std::future<bool>> producers;
    std::vector<std::future<long>> consumers;
    for (int p = 0; p < kThreads; ++p) {
      producers.push_back(std::async(std::launch::async, [&queue, &start, p] {
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) {
          if (!queue.push(p * kPerThread + i + 1)) {
            return false;
          }
        }
        return true;
      }));
    }
    for (int c = 0; c < kThreads; ++c) {
      consumers.push_back(std::async(std::launch::async, [&queue, &start, &over_capacity] {
        start.arrive_and_wait();
        long sum = 0;
        for (int i = 0; i < kPerThread; ++i) {
          const auto item = queue.pop();
          if (!item) {
            return -1L;  // nullopt from an open queue
          }
          sum += *item;
          if (queue.size() > 1) {
            ++over_capacity;
          }
        }
        return sum;
      }));
    }
    CloseOnExit closer(queue);
    long total = 0;
    bool finished = true;
    for (auto& consumer : consumers) {
      finished = finished && finished_within(consumer, 3s);
    }
    REQUIRE_MESSAGE(finished, "round ", round, ": consumers still wait with items left to pass: a lost wake-up");
    bool returned_nullopt = false;
    for (auto& consumer : consumers) {
      const long sum = consumer.get();
      returned_nullopt = returned_nullopt || sum < 0;
      total += sum;
    }
    REQUIRE_MESSAGE(!returned_nullopt, "round ", round, ": pop returned nullopt from an open queue");
    for (auto& producer : producers) {
      REQUIRE(finished_within(producer, 3s));
      REQUIRE(producer.get());
    }
    const long n = static_cast<long>(kThreads) * kPerThread;
    REQUIRE_MESSAGE(total == n * (n + 1) / 2, "round ", round, ": items lost or passed twice");
    REQUIRE_MESSAGE(over_capacity == 0, "round ", round, ": a queue of capacity 1 held 2 items");
  }
}
