// Reference solution of exercises 10.1–10.3 (lessons/10_producer_consumer/bounded_queue.hpp).
//
// A template lives entirely in its header: the compiler needs the member
// definitions wherever BoundedQueue<T> is used with a new T. The build puts
// this folder before lessons/10_producer_consumer on the include path of the
// reference, so <bounded_queue.hpp> finds this file there.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

namespace lab::producer_consumer {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) {
      throw std::invalid_argument("BoundedQueue: the capacity must be at least 1");
    }
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // ---- 10.1 ----
  bool push(T item) {
    std::unique_lock lock(mutex_);
    // The predicate is re-checked after every wake-up: a wake-up may be
    // spurious, or another producer may have taken the free slot first.
    wait(lock, not_full_, waiting_producers_, [this] { return closed_ || items_.size() < capacity_; });
    if (closed_) {
      return false;
    }
    append(lock, std::move(item));
    return true;
  }

  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    wait(lock, not_empty_, waiting_consumers_, [this] { return closed_ || !items_.empty(); });
    return take_front(lock);
  }

  [[nodiscard]] std::size_t size() const {
    const std::scoped_lock lock(mutex_);
    return items_.size();
  }

  // ---- 10.2 ----
  void close() {
    {
      const std::scoped_lock lock(mutex_);
      closed_ = true;
      closed_hint_.store(true, std::memory_order_relaxed);
    }
    // Everybody must re-check: blocked producers now fail, blocked
    // consumers drain what is left and then see the end.
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  [[nodiscard]] bool is_closed() const {
    const std::scoped_lock lock(mutex_);
    return closed_;
  }

  [[nodiscard]] bool finished() const {
    const std::scoped_lock lock(mutex_);
    return closed_ && items_.empty();
  }

  // ---- 10.3 ----
  bool try_push(T& item) {
    std::unique_lock lock(mutex_);
    if (closed_ || items_.size() >= capacity_) {
      return false;  // `item` is untouched: the caller still owns it
    }
    append(lock, std::move(item));
    return true;
  }

  std::optional<T> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    // wait_for with a predicate returns the predicate's value: false only
    // if the time ran out with the queue still open and empty.
    const auto ready = [this] { return closed_ || !items_.empty(); };
    if (!ready()) {
      ++waiting_consumers_;
      const bool woken = not_empty_.wait_for(lock, timeout, ready);
      --waiting_consumers_;
      if (!woken) {
        return std::nullopt;
      }
    }
    return take_front(lock);
  }

 private:
  // Waits, with `lock` held, until `ready()`. A sleep and a wake-up cost two
  // context switches and a few microseconds; the other side often makes
  // progress sooner than that. So first a short spin, with the lock
  // released, watching the hints below (atomics: no lock needed to look);
  // only then a real wait, counted in `waiting` so that the other side
  // calls notify only when somebody sleeps.
  template <typename Ready>
  void wait(std::unique_lock<std::mutex>& lock, std::condition_variable& condition, std::size_t& waiting,
            Ready ready) {
    if (ready()) {
      return;
    }
    lock.unlock();
    const bool consumer = &condition == &not_empty_;
    for (int round = 0; round < kSpinRounds; ++round) {
      const std::size_t size = size_hint_.load(std::memory_order_relaxed);
      if (closed_hint_.load(std::memory_order_relaxed) || (consumer ? size > 0 : size < capacity_)) {
        break;
      }
      // Let the other thread run if it shares this CPU; returns at once if not.
      std::this_thread::yield();
    }
    lock.lock();
    if (!ready()) {
      ++waiting;
      condition.wait(lock, ready);
      --waiting;
    }
  }

  // With `lock` held: appends, then releases the lock before waking a
  // consumer (the woken thread should not find our mutex still held), and
  // wakes one only if one sleeps.
  void append(std::unique_lock<std::mutex>& lock, T&& item) {
    items_.push_back(std::move(item));
    size_hint_.store(items_.size(), std::memory_order_relaxed);
    const bool wake = waiting_consumers_ > 0;
    lock.unlock();
    if (wake) {
      not_empty_.notify_one();
    }
  }

  // With `lock` held: the front item, or nullopt if the queue is empty
  // (which, after the waits above, means closed and drained).
  std::optional<T> take_front(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) {
      return std::nullopt;
    }
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    size_hint_.store(items_.size(), std::memory_order_relaxed);
    const bool wake = waiting_producers_ > 0;
    lock.unlock();
    if (wake) {
      not_full_.notify_one();  // one slot came free: one producer may go on
    }
    return item;
  }

  static constexpr int kSpinRounds = 64;

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_;   // producers wait here while full
  std::condition_variable not_empty_;  // consumers wait here while empty
  std::deque<T> items_;
  bool closed_ = false;
  std::size_t waiting_producers_ = 0;  // asleep in not_full_
  std::size_t waiting_consumers_ = 0;  // asleep in not_empty_
  // Copies of items_.size() and closed_, written under the mutex, read
  // without it while spinning: only hints, the decision is taken locked.
  std::atomic<std::size_t> size_hint_{0};
  std::atomic<bool> closed_hint_{false};
};

}  // namespace lab::producer_consumer
