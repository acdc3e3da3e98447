// Lesson 08 — locks (互斥锁). The functions you write in locks.cpp
// (exercises 08.1–08.3). The reference answers are in solutions/08_locks/:
// look only after trying. ticket_file.hpp has the given file helpers.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>

#include "lab/fd.hpp"
#include "ticket_file.hpp"

namespace lab::locks {

// ---- Exercise 08.1: buy under a file lock (across processes) ---------------
//
// FileLock: an exclusive lock on the whole file behind `file`, held for the
// FileLock's lifetime (RAII: the destructor unlocks, also when an exception
// leaves the scope). The constructor WAITS until the lock is free.
//
// Use an open-file-description lock: fcntl(fd, F_OFD_SETLKW, &flock) with
// l_type = F_WRLCK, l_whence = SEEK_SET, l_start = 0, l_len = 0 (the whole
// file) and l_pid = 0; unlock with l_type = F_UNLCK and F_OFD_SETLK. On
// EINTR, call lab::throw_if_stop_requested() and wait again; other errors
// throw std::system_error. Why not the classic F_SETLKW? Those locks belong
// to the PROCESS: two threads of one process never exclude each other, and
// closing ANY descriptor of the file drops the process's lock. OFD locks
// belong to one open() (fcntl(2), "Open file description locks").
class FileLock {
 public:
  explicit FileLock(const Fd& file);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// Buys one ticket from the office file, safely against any number of other
// buyers in other processes: under a FileLock, read the count (read_count);
// if it is above 0, wait `race_window` (the demo's widened gap: the lock
// must make it harmless), write count - 1 (write_count) and return it;
// otherwise return nullopt (sold out) and leave the file as it is.
std::optional<int> buy_ticket(const Fd& office, std::chrono::microseconds race_window = {});

// ---- Exercise 08.2: the same with threads and a mutex ------------------------
//
// The ticket office inside one process: any number of threads call buy()
// at once. Guard the count with the std::mutex, locking it with
// std::scoped_lock (RAII: unlocked at the end of the scope, also by an
// exception), and keep the whole check-then-buy inside ONE lock: a lock
// around the check and another around the write still oversells.
//   buy: if tickets are left, wait `race_window` (see 08.1), take one and
//        return how many are left after it; otherwise nullopt.
//   remaining: the count now (0 or more, never below).
// A negative number of tickets is refused (std::invalid_argument).
class TicketCounter {
 public:
  explicit TicketCounter(int tickets);
  std::optional<int> buy(std::chrono::microseconds race_window = {});
  [[nodiscard]] int remaining() const;

 private:
  mutable std::mutex mutex_;
  int left_;  // guarded by mutex_
};

// ---- Exercise 08.3: a two-lock transfer that cannot deadlock -----------------
//
// Moves `amount` from `from` to `to`, holding BOTH accounts' mutexes so that
// nobody sees the money in neither or in both. Returns false, changing
// nothing, if `from` holds less than `amount`.
//
// Deadlock (死锁): thread 1 transfers A->B and locks A, then waits for B;
// thread 2 transfers B->A and locks B, then waits for A. Both wait for ever.
// Lock both at once with std::scoped_lock(from.mutex, to.mutex), which
// avoids it, or always lock in one global order (e.g. by address).
// Refuse (std::invalid_argument) a negative amount, and a transfer from an
// account to itself: locking one std::mutex twice is undefined behaviour.
struct Account {
  explicit Account(long long opening_balance) : balance(opening_balance) {}
  std::mutex mutex;
  long long balance;  // guarded by mutex
};

bool transfer(Account& from, Account& to, long long amount);

}  // namespace lab::locks
