// Graded tests of lesson 10's BoundedQueue, exercise 10.2 (close), in
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
#include <cstdint>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "queue_testing.hpp"

using namespace std::chrono_literals;
using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::testing::CloseOnExit;
using lab::producer_consumer::testing::blocked_in_futex;
using lab::producer_consumer::testing::this_thread_id;
using lab::producer_consumer::testing::finished_within;

namespace {

// The stress test: 8 producers and 8 consumers pass 100,000 items in all
// (12,500 from each producer) through a queue of 64. Under ThreadSanitizer
// every lock and wait costs many times more, and on a busy 2-core machine
// the full size takes about 6 s there; kItemsUnderTsan keeps that case
// well inside its timeout while still running 16 threads flat out.
constexpr std::size_t kProducers = 8;
constexpr std::size_t kConsumers = 8;
constexpr std::uint64_t kItemsUnderTsan = 40'000;
constexpr std::uint64_t kItemsInAll = lab::testing::kThreadSanitizer ? kItemsUnderTsan : 100'000;
constexpr std::uint64_t kItemsPerProducer = kItemsInAll / kProducers;

}  // namespace

// ---- 10.2 close ------------------------------------------------------------------

TEST_CASE("10.2 pop after close drains what is left, then returns nullopt") {
  BoundedQueue<int> queue(4);
  REQUIRE(queue.push(7));
  REQUIRE(queue.push(8));
  queue.close();
  CHECK(queue.is_closed());
  CHECK_FALSE_MESSAGE(queue.finished(), "finished() is true while two items are still queued");
  CHECK_FALSE_MESSAGE(queue.push(9), "push into a closed queue returned true");
  CHECK(queue.size() == 2);
  CHECK(queue.pop() == std::optional<int>(7));
  CHECK(queue.pop() == std::optional<int>(8));
  CHECK_FALSE_MESSAGE(queue.pop().has_value(), "pop on a closed, empty queue must return nullopt");
  CHECK(queue.finished());
  queue.close();  // twice: harmless
  CHECK(queue.finished());
}

TEST_CASE("10.2 close wakes every consumer blocked on an empty queue") {
  BoundedQueue<int> queue(4);
  REQUIRE_FALSE(queue.is_closed());
  std::vector<std::future<std::optional<int>>> consumers;
  CloseOnExit closer(queue);
  // Close only once every consumer is provably asleep in pop: a close that
  // came first would not test waking anybody.
  std::mutex tids_mutex;
  std::vector<pid_t> tids;
  for (int k = 0; k < 8; ++k) {
    consumers.push_back(std::async(std::launch::async, [&queue, &tids_mutex, &tids] {
      {
        const std::scoped_lock lock(tids_mutex);
        tids.push_back(this_thread_id());
      }
      return queue.pop();
    }));
  }
  while (true) {
    const std::scoped_lock lock(tids_mutex);
    if (tids.size() == 8) {
      break;
    }
  }
  REQUIRE_MESSAGE(blocked_in_futex(tids, 5s), "the consumers did not all wait in pop on an empty queue");
  queue.close();
  for (auto& consumer : consumers) {
    REQUIRE_MESSAGE(finished_within(consumer, 5s),
                    "a consumer blocked in pop did not wake up when the queue was closed");
    const auto item = consumer.get();
    CHECK_FALSE_MESSAGE(item.has_value(), "pop on a closed, empty queue returned an item");
  }
}

TEST_CASE("10.2 close wakes every producer blocked on a full queue, and their push returns false") {
  BoundedQueue<int> queue(2);
  REQUIRE(queue.push(1));
  REQUIRE(queue.push(2));
  std::vector<std::future<bool>> producers;
  CloseOnExit closer(queue);
  std::mutex tids_mutex;
  std::vector<pid_t> tids;
  for (int k = 0; k < 8; ++k) {
    producers.push_back(std::async(std::launch::async, [&queue, &tids_mutex, &tids, k] {
      {
        const std::scoped_lock lock(tids_mutex);
        tids.push_back(this_thread_id());
      }
      return queue.push(100 + k);
    }));
  }
  while (true) {
    const std::scoped_lock lock(tids_mutex);
    if (tids.size() == 8) {
      break;
    }
  }
  // Close only once every producer is provably asleep in push.
  REQUIRE_MESSAGE(blocked_in_futex(tids, 5s), "the producers did not all wait in push on a full queue");
  queue.close();
  for (auto& producer : producers) {
    REQUIRE_MESSAGE(finished_within(producer, 5s),
                    "a producer blocked in push did not wake up when the queue was closed");
    CHECK_FALSE_MESSAGE(producer.get(), "push returned true on a closed queue");
  }
  CHECK_MESSAGE(queue.size() == 2, "a closed queue took items: it holds ", queue.size());
  CHECK(queue.pop() == std::optional<int>(1));
  CHECK(queue.pop() == std::optional<int>(2));
  CHECK(queue.finished());
}

TEST_CASE("10.2 8 producers and 8 consumers pass 100,000 items (40,000 under TSan) exactly once, in order per producer") {
  BoundedQueue<std::uint64_t> queue(64);
  // Item = producer * kItemsPerProducer + sequence number.
  std::vector<std::future<std::vector<std::uint64_t>>> consumers;
  std::vector<std::future<bool>> producers;
  CloseOnExit closer(queue);
  for (std::size_t k = 0; k < kConsumers; ++k) {
    consumers.push_back(std::async(std::launch::async, [&queue] {
      std::vector<std::uint64_t> taken;
      while (auto item = queue.pop()) {
        taken.push_back(*item);
      }
      return taken;
    }));
  }
  for (std::size_t p = 0; p < kProducers; ++p) {
    producers.push_back(std::async(std::launch::async, [&queue, p] {
      for (std::uint64_t i = 0; i < kItemsPerProducer; ++i) {
        if (!queue.push(p * kItemsPerProducer + i)) {
          return false;
        }
      }
      return true;
    }));
  }
  for (auto& producer : producers) {
    REQUIRE_MESSAGE(producer.get(), "push returned false before the queue was closed");
  }
  queue.close();  // every producer is done: the consumers drain and end

  std::vector<std::uint8_t> seen(kProducers * kItemsPerProducer, 0);
  std::size_t received = 0;
  for (auto& consumer : consumers) {
    const std::vector<std::uint64_t> taken = consumer.get();
    received += taken.size();
    // FIFO: a consumer sees each producer's items in increasing order.
    std::vector<std::uint64_t> last(kProducers, 0);
    std::vector<bool> any(kProducers, false);
    for (const std::uint64_t item : taken) {
      REQUIRE_MESSAGE(item < seen.size(), "an item that nobody pushed came out: ", item);
      REQUIRE_MESSAGE(seen[item] == 0, "item ", item, " came out twice");
      seen[item] = 1;
      const std::size_t producer = item / kItemsPerProducer;
      REQUIRE_MESSAGE((!any[producer] || item > last[producer]),
                      "producer ", producer, "'s items came out of order: ", item, " after ", last[producer]);
      any[producer] = true;
      last[producer] = item;
    }
  }
  CHECK_MESSAGE(received == seen.size(), "expected ", seen.size(), " items, the consumers got ", received);
  CHECK(queue.finished());
}
