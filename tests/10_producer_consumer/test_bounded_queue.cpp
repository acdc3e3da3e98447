// Graded tests of lesson 10's BoundedQueue (exercises 10.1–10.3, in
// lessons/10_producer_consumer/bounded_queue.hpp). Built twice: against the
// student's header (label "grade") and against solutions/ (label "reference").
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
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "queue_testing.hpp"

using namespace std::chrono_literals;
using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::testing::CloseOnExit;
using lab::producer_consumer::testing::becomes_true;
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
#if LAB_TEST_UNDER_TSAN
constexpr std::uint64_t kItemsUnderTsan = 40'000;
constexpr std::uint64_t kItemsInAll = kItemsUnderTsan;
#else
constexpr std::uint64_t kItemsInAll = 100'000;
#endif
constexpr std::uint64_t kItemsPerProducer = kItemsInAll / kProducers;

}  // namespace

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
