// Reference solution of exercise 08 (lessons/08_locks/locks.hpp).
#include "locks.hpp"

#include <fcntl.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

#include "lab/error.hpp"
#include "lab/stop.hpp"

namespace lab::locks {

namespace {

struct flock whole_file(short type) {
  struct flock region {};
  region.l_type = type;
  region.l_whence = SEEK_SET;
  region.l_start = 0;
  region.l_len = 0;  // 0 = to the end of the file, however long it grows
  region.l_pid = 0;  // must be 0 for OFD locks
  return region;
}

}  // namespace

FileLock::FileLock(const Fd& file) : fd_(file.get()) {
  struct flock region = whole_file(F_WRLCK);
  // F_OFD_SETLKW sleeps until no other open file description holds a
  // conflicting lock. A signal interrupts the wait with EINTR.
  while (::fcntl(fd_, F_OFD_SETLKW, &region) != 0) {
    if (errno != EINTR) {
      throw os_error("fcntl F_OFD_SETLKW");
    }
    throw_if_stop_requested();
  }
}

FileLock::~FileLock() {
  struct flock region = whole_file(F_UNLCK);
  // Unlocking cannot block, and a destructor must not throw: if it failed
  // (it does not for a valid fd), closing the descriptor would still
  // release an OFD lock.
  (void)::fcntl(fd_, F_OFD_SETLK, &region);
}

std::optional<int> buy_ticket(const Fd& office, std::chrono::microseconds race_window) {
  const FileLock lock(office);  // the critical section (临界区) starts here...
  const int left = read_count(office);
  if (left <= 0) {
    return std::nullopt;
  }
  std::this_thread::sleep_for(race_window);  // harmless now: nobody else can read
  write_count(office, left - 1);
  return left - 1;
}  // ...and ends here, when `lock` is destroyed

TicketCounter::TicketCounter(int tickets) : left_(tickets) {
  if (tickets < 0) {
    throw std::invalid_argument("TicketCounter: a negative number of tickets");
  }
}

std::optional<int> TicketCounter::buy(std::chrono::microseconds race_window) {
  const std::scoped_lock lock(mutex_);  // check AND buy under one lock
  if (left_ <= 0) {
    return std::nullopt;
  }
  std::this_thread::sleep_for(race_window);
  --left_;
  return left_;
}

int TicketCounter::remaining() const {
  const std::scoped_lock lock(mutex_);
  return left_;
}

bool transfer(Account& from, Account& to, long long amount) {
  if (amount < 0) {
    throw std::invalid_argument("transfer: a negative amount");
  }
  if (&from == &to) {
    throw std::invalid_argument("transfer: from and to are the same account");
  }
  // Locks both without deadlock, whatever order other threads name them in
  // (std::lock's algorithm: lock one, try the other, back off on failure).
  const std::scoped_lock both(from.mutex, to.mutex);
  if (from.balance < amount) {
    return false;
  }
  from.balance -= amount;
  to.balance += amount;
  return true;
}

}  // namespace lab::locks
