// Lesson 09 — a lock that works between processes (given code, not an
// exercise).
//
// A std::mutex lives in one process's memory; after fork(2) each process has
// its own copy, and locking one copy does not stop the others. This lock is
// a pthread mutex made for sharing (PTHREAD_PROCESS_SHARED) placed in memory
// that fork does NOT copy: an anonymous MAP_SHARED mapping, which parent and
// children keep sharing. Create it BEFORE forking.
// (Python's multiprocessing.Lock is the same idea: a semaphore in shared
// memory.)
//
// It is also ROBUST (pthread_mutexattr_setrobust(3)): a process can be
// killed (SIGKILL) while it holds the lock, and a worker waiting for a job
// in get() holds the readers' lock all that time. A semaphore would stay
// taken for ever and every other process would wait on it; a robust mutex
// hands the next locker EOWNERDEAD instead, and the lock lives on.
#pragma once

#include <pthread.h>
#include <sys/mman.h>

#include <cerrno>

#include "lab/error.hpp"

namespace lab::queues {

class SharedLock {
 public:
  SharedLock() {
    void* memory =
        ::mmap(nullptr, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      throw os_error("mmap shared lock");
    }
    mutex_ = static_cast<pthread_mutex_t*>(memory);
    pthread_mutexattr_t attributes;
    ::pthread_mutexattr_init(&attributes);
    ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    const int error = ::pthread_mutex_init(mutex_, &attributes);
    ::pthread_mutexattr_destroy(&attributes);
    if (error != 0) {
      ::munmap(memory, sizeof(pthread_mutex_t));
      throw os_error(error, "pthread_mutex_init");
    }
  }
  // Unmapping is all the clean-up: a process-shared mutex holds no kernel
  // object, and other processes keep their own mapping of the page.
  ~SharedLock() { ::munmap(mutex_, sizeof(pthread_mutex_t)); }
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

  // Waits for the lock. Unlike sem_wait, pthread_mutex_lock(3) never
  // returns EINTR: a stop does not end the wait. It need not: the holder is
  // the one blocked in a read or write, which the signal does interrupt, and
  // once it lets go (or dies) the waiter goes on to an end of stream.
  void lock() {
    const int error = ::pthread_mutex_lock(mutex_);
    if (error == EOWNERDEAD) {
      // The holder died holding it. The lock is ours now; mark it usable
      // again. What it guarded may be half done (a frame half read or half
      // written): the job server checks for that (server.cpp).
      ::pthread_mutex_consistent(mutex_);
    } else if (error != 0) {
      throw os_error(error, "pthread_mutex_lock");
    }
  }
  void unlock() noexcept { ::pthread_mutex_unlock(mutex_); }

 private:
  pthread_mutex_t* mutex_ = nullptr;
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
