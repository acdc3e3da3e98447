// Lesson 10 — the consumer pool you write in consumer_pool.cpp (exercise 10.4).
// The reference answer is in solutions/10_producer_consumer/consumer_pool.cpp.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <bounded_queue.hpp>

namespace lab::producer_consumer {

// What a consumer does with one item. `consumer` is the consumer's number,
// 0 .. consumers-1, so a handler can keep per-consumer results in a vector
// slot that only that consumer's thread ever touches (no lock needed).
using Handler = std::function<void(std::size_t consumer, std::string item)>;

// ---- Exercise 10.4: the consumer pool -----------------------------------------
//
// The constructor starts `consumers` std::jthreads. Each one pops items from
// `queue` until pop returns nullopt (closed and drained), calls
// handle(its number, item) for each, and counts how many it handled.
// `consumers` == 0 is refused with std::invalid_argument (nobody would ever
// empty the queue).
//
// finish(): the producers are done. Closes the queue (close, not one
// "poison pill" item per consumer: see the README), waits until every
// consumer has drained it and ended, and returns how many items each
// consumer handled (a vector of `consumers` counts). If a handler threw,
// finish rethrows the first such exception, after every thread has ended.
//
// A handler that throws must not leave producers blocked for ever on a full
// queue that nobody empties: its consumer keeps the exception
// (std::current_exception, under a mutex), closes the queue, and ends.
//
// The destructor, when finish() was not called (an exception is unwinding
// the producer, say), closes the queue and joins every thread: never a
// thread left running, never a consumer blocked for ever in pop.
class ConsumerPool {
 public:
  ConsumerPool(BoundedQueue<std::string>& queue, std::size_t consumers, Handler handle);
  ~ConsumerPool();
  ConsumerPool(const ConsumerPool&) = delete;
  ConsumerPool& operator=(const ConsumerPool&) = delete;

  std::vector<std::size_t> finish();

 private:
  // The loop of consumer number k, run on its own thread (you may write it
  // as a lambda in the constructor instead).
  void consume(std::size_t k);

  // The members you will need; add or change them as you like.
  BoundedQueue<std::string>& queue_;
  Handler handle_;
  std::vector<std::size_t> counts_;  // counts_[k] is written only by consumer k
  std::mutex error_mutex_;
  std::exception_ptr first_error_;
  // Declared last, so destroyed (joined) first, while the members the
  // threads use still exist.
  std::vector<std::jthread> threads_;
};

}  // namespace lab::producer_consumer
