// Helpers shared by lesson 10's tests: threads that cannot hang a failed
// case, and bounded waits.
#pragma once

#include <atomic>
#include <bounded_queue.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <sys/syscall.h>
#include <thread>
#include <vector>

#include "lab/sanitizers.hpp"
#include "lab/testing.hpp"

namespace lab::producer_consumer::testing {

// Closes the queue when the case ends, however it ends. Declare it AFTER the
// futures of threads that use the queue: it is then destroyed first, and a
// thread still blocked in push or pop (because a check failed half way)
// wakes up before its future's destructor waits for it. A close that throws
// (the stub) is ignored here: the case has already failed.
template <typename Queue>
class CloseOnExit {
 public:
  explicit CloseOnExit(Queue& queue) : queue_(queue) {}
  ~CloseOnExit() {
    try {
      queue_.close();
    } catch (...) {  // NOLINT(bugprone-empty-catch): the stub's close throws
    }
  }
  CloseOnExit(const CloseOnExit&) = delete;
  CloseOnExit& operator=(const CloseOnExit&) = delete;

 private:
  Queue& queue_;
};

// True as soon as `flag` is set; false if it is still unset after `wait`.
// Used only to give a WRONG implementation time to show itself: a correct
// one leaves the flag unset however long this waits.
inline bool becomes_true(const std::atomic<bool>& flag, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (flag.load()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return flag.load();
}

// True if the work behind `result` has ended (returned or thrown) within
// `limit`. A generous limit: it only turns a hang into a clear failure.
template <typename T>
bool finished_within(std::future<T>& result, std::chrono::milliseconds limit) {
  return result.wait_for(limit) == std::future_status::ready;
}

// This thread's kernel id, for blocked_in_futex.
using lab::testing::this_thread_id;

// True once every thread in `tids` sleeps in futex(2), the call a condition
// variable or a mutex waits in, as lab::testing::asleep_in reads it from
// /proc (a thread merely passing through a mutex does not count). False
// after `limit`.
inline bool blocked_in_futex(const std::vector<pid_t>& tids, std::chrono::milliseconds limit) {
  return lab::testing::asleep_in(lab::testing::Task::threads(tids), {SYS_futex}, limit);
}

// Threads of this process, from /proc/self/task.
inline int thread_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

// The thread count to compare with after a case: a sanitizer's runtime
// starts a helper thread of its own with the first thread a program makes,
// so one throwaway thread is made (and joined) first.
inline int baseline_thread_count() {
  std::jthread([] {}).join();
  return thread_count();
}

}  // namespace lab::producer_consumer::testing
