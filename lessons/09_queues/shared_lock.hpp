// Lesson 09 — a lock that works between processes (given code, not an
// exercise).
//
// A std::mutex lives in one process's memory; after fork(2) each process has
// its own copy, and locking one copy does not stop the others. This lock is
// a POSIX semaphore (sem_init with pshared = 1, initial value 1) placed in
// memory that fork does NOT copy: an anonymous MAP_SHARED mapping, which
// parent and children keep sharing. Create it BEFORE forking.
// (Python's multiprocessing.Lock is the same idea: a semaphore in shared
// memory.)
#pragma once

#include <semaphore.h>
#include <sys/mman.h>

#include <cerrno>

#include "lab/error.hpp"
#include "lab/stop.hpp"

namespace lab::queues {

class SharedLock {
 public:
  SharedLock() {
    void* memory = ::mmap(nullptr, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      throw os_error("mmap shared lock");
    }
    semaphore_ = static_cast<sem_t*>(memory);
    if (::sem_init(semaphore_, 1, 1) != 0) {
      const auto error = os_error("sem_init");
      ::munmap(memory, sizeof(sem_t));
      throw error;
    }
  }
  // Unmapping is all the clean-up: on Linux an unnamed semaphore holds no
  // kernel object, and other processes keep their own mapping of the page.
  ~SharedLock() { ::munmap(semaphore_, sizeof(sem_t)); }
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

  // Waits for the lock. A signal interrupts sem_wait with EINTR (our
  // handlers have no SA_RESTART): stop if a stop was requested, else wait on.
  void lock() {
    while (::sem_wait(semaphore_) != 0) {
      if (errno != EINTR) {
        throw os_error("sem_wait");
      }
      throw_if_stop_requested();
    }
  }
  void unlock() noexcept { ::sem_post(semaphore_); }

 private:
  sem_t* semaphore_ = nullptr;
};

// Holds a SharedLock for the scope: the same RAII as std::scoped_lock.
class SharedLockGuard {
 public:
  explicit SharedLockGuard(SharedLock& lock) : lock_(lock) { lock_.lock(); }
  ~SharedLockGuard() { lock_.unlock(); }
  SharedLockGuard(const SharedLockGuard&) = delete;
  SharedLockGuard& operator=(const SharedLockGuard&) = delete;

 private:
  SharedLock& lock_;
};

}  // namespace lab::queues
