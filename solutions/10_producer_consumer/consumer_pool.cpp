// Reference solution of exercise 10.4 (lessons/10_producer_consumer/consumer_pool.hpp).
#include "consumer_pool.hpp"

#include <stdexcept>
#include <utility>

namespace lab::producer_consumer {

ConsumerPool::ConsumerPool(BoundedQueue<std::string>& queue, std::size_t consumers, Handler handle)
    : queue_(queue), handle_(std::move(handle)), counts_(consumers, 0) {
  if (consumers == 0) {
    throw std::invalid_argument("ConsumerPool: at least one consumer is needed");
  }
  threads_.reserve(consumers);
  try {
    for (std::size_t k = 0; k < consumers; ++k) {
      threads_.emplace_back([this, k] { consume(k); });
    }
  } catch (...) {
    // Starting a thread failed (std::system_error). The destructor will not
    // run for a half-built object, but threads_'s will, and it joins the
    // threads already started: they must be able to end.
    queue_.close();
    throw;
  }
}

void ConsumerPool::consume(std::size_t k) {
  try {
    while (auto item = queue_.pop()) {
      handle_(k, std::move(*item));
      ++counts_[k];
    }
  } catch (...) {
    {
      const std::scoped_lock lock(error_mutex_);
      if (!first_error_) {
        first_error_ = std::current_exception();
      }
    }
    // Nobody may wait for ever on a queue that this consumer no longer
    // empties: closing wakes the producers (push returns false).
    queue_.close();
  }
}

ConsumerPool::~ConsumerPool() {
  // Without close, the consumers would wait in pop for ever and the joins
  // below would never return.
  queue_.close();
}  // threads_ is destroyed here: each jthread joins its consumer

std::vector<std::size_t> ConsumerPool::finish() {
  queue_.close();
  for (auto& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  // Every thread has ended: counts_ and first_error_ are ours alone now
  // (join is the synchronisation that makes their writes visible).
  if (first_error_) {
    std::rethrow_exception(first_error_);
  }
  return counts_;
}

}  // namespace lab::producer_consumer
