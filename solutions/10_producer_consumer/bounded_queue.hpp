// Reference solution of exercises 10.1–10.3 (lessons/10_producer_consumer/bounded_queue.hpp).
//
// A template lives entirely in its header: the compiler needs the member
// definitions wherever BoundedQueue<T> is used with a new T. The build puts
// this folder before lessons/10_producer_consumer on the include path of the
// reference, so <bounded_queue.hpp> finds this file there.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
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
    not_full_.wait(lock, [this] { return closed_ || items_.size() < capacity_; });
    if (closed_) {
      return false;
    }
    items_.push_back(std::move(item));
    lock.unlock();  // the woken consumer should not have to wait for our mutex
    not_empty_.notify_one();
    return true;
  }

  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [this] { return closed_ || !items_.empty(); });
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
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  std::optional<T> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    // wait_for with a predicate returns the predicate's value: false only
    // if the time ran out with the queue still open and empty.
    if (!not_empty_.wait_for(lock, timeout, [this] { return closed_ || !items_.empty(); })) {
      return std::nullopt;
    }
    return take_front(lock);
  }

 private:
  // With `lock` held: the front item, or nullopt if the queue is empty
  // (which, after the waits above, means closed and drained).
  std::optional<T> take_front(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) {
      return std::nullopt;
    }
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();  // one slot came free: one producer may go on
    return item;
  }

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_;   // producers wait here while full
  std::condition_variable not_empty_;  // consumers wait here while empty
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace lab::producer_consumer
