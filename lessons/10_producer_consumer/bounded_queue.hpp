// Lesson 10 — producer/consumer (生产者消费者模型). The bounded queue you write
// in this header (exercises 10.1–10.3); consumer_pool.hpp has exercise 10.4.
// The reference answers are in solutions/10_producer_consumer/: look only
// after trying.
//
// BoundedQueue is a template, so its member functions are written here, in
// the header, not in a .cpp: the compiler must see their code wherever the
// queue is used with a new item type. Replace each `throw NotImplemented` at
// the bottom of this file with your code. Grade with:
//   build/default/lab grade 10
//
// Programs and tests include it as <bounded_queue.hpp> (angle brackets): the
// reference build puts solutions/10_producer_consumer first on the include
// path, and "quotes" would find this file beside the includer instead.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "lab/error.hpp"

namespace lab::producer_consumer {

// A first-in first-out queue of at most capacity() items, shared by any
// number of producer threads (push) and consumer threads (pop). Every member
// function may be called from any thread at the same time as any other.
template <typename T>
class BoundedQueue {
 public:
  // Given: a queue that can never hold an item would block every push for
  // ever, so a capacity of 0 is refused (std::invalid_argument).
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) {
      throw std::invalid_argument("BoundedQueue: the capacity must be at least 1");
    }
  }
  // A mutex cannot be copied or moved, and neither can a queue that threads
  // are waiting on.
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // ---- Exercise 10.1: push and pop that block ------------------------------
  //
  // push: waits while the queue is full (back-pressure: a producer that is
  // faster than its consumers is slowed down to their pace instead of
  // filling memory), then appends `item` and returns true. Returns false,
  // without queuing, if the queue is closed (10.2), also if it was closed
  // while push waited.
  //
  // pop: waits while the queue is empty, then removes and returns the oldest
  // item. Returns nullopt only when the queue is closed AND empty (10.2).
  //
  // size: how many items are queued right now.
  //
  // One std::mutex guards every member below; wait on two
  // std::condition_variables, "not full" for producers and "not empty" for
  // consumers, ALWAYS with a predicate (cv.wait(lock, [this] { ... })): a
  // wait may return without a notify (a spurious wake-up), and another
  // thread may have taken the slot or item you were woken for.
  bool push(T item);
  std::optional<T> pop();
  [[nodiscard]] std::size_t size() const;

  // ---- Exercise 10.2: close ------------------------------------------------
  //
  // close: from now on push fails, and pop returns what is left, then
  // nullopt. It wakes EVERY waiting thread (notify_all on both condition
  // variables): a blocked producer returns false, a blocked consumer drains
  // or returns nullopt. Closing twice is harmless.
  //
  // is_closed: close() has been called.
  // finished: closed and empty, so no item will ever come out again. Once
  // true it stays true, which makes it safe to check after pop_for (10.3)
  // returned nullopt.
  void close();
  [[nodiscard]] bool is_closed() const;
  [[nodiscard]] bool finished() const;

  // ---- Exercise 10.3: try_push and pop_for -------------------------------
  //
  // try_push: never waits. If the queue is open and has room, moves `item`
  // into it and returns true; otherwise returns false and leaves `item` as
  // it was, so the caller still has it (to retry, drop or push later).
  //
  // pop_for: like pop, but waits at most `timeout` (use the wait_for of
  // std::condition_variable that takes a predicate). Returns nullopt if the
  // time ran out, or if the queue is closed and empty; finished() tells the
  // two apart. A zero timeout takes an item if one is there, without waiting.
  bool try_push(T& item);
  std::optional<T> pop_for(std::chrono::milliseconds timeout);

 private:
  const std::size_t capacity_;
  // The state you will need; add or change members as you like.
  mutable std::mutex mutex_;
  std::condition_variable not_full_;   // producers wait here while full
  std::condition_variable not_empty_;  // consumers wait here while empty
  std::deque<T> items_;
  bool closed_ = false;
};

// ---- Your code: the member functions -----------------------------------------

namespace detail {
inline constexpr const char* kLesson = "lessons/10_producer_consumer";
}  // namespace detail

template <typename T>
bool BoundedQueue<T>::push(T /*item*/) {
  throw NotImplemented("10.1", "push and pop that block", detail::kLesson);
}

template <typename T>
std::optional<T> BoundedQueue<T>::pop() {
  throw NotImplemented("10.1", "push and pop that block", detail::kLesson);
}

template <typename T>
std::size_t BoundedQueue<T>::size() const {
  throw NotImplemented("10.1", "push and pop that block", detail::kLesson);
}

template <typename T>
void BoundedQueue<T>::close() {
  throw NotImplemented("10.2", "close", detail::kLesson);
}

template <typename T>
bool BoundedQueue<T>::is_closed() const {
  throw NotImplemented("10.2", "close", detail::kLesson);
}

template <typename T>
bool BoundedQueue<T>::finished() const {
  throw NotImplemented("10.2", "close", detail::kLesson);
}

template <typename T>
bool BoundedQueue<T>::try_push(T& /*item*/) {
  throw NotImplemented("10.3", "try_push and pop_for", detail::kLesson);
}

template <typename T>
std::optional<T> BoundedQueue<T>::pop_for(std::chrono::milliseconds /*timeout*/) {
  throw NotImplemented("10.3", "try_push and pop_for", detail::kLesson);
}

}  // namespace lab::producer_consumer
