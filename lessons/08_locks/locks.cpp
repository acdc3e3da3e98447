// Exercise 08 — write these functions. locks.hpp says what each must do, and
// lessons/08_locks/README.md walks through them. Grade with:
//   build/default/lab grade 08
#include "locks.hpp"

#include "lab/error.hpp"

namespace lab::locks {

namespace {
constexpr const char* kLesson = "lessons/08_locks";
}  // namespace

FileLock::FileLock(const Fd& file) : fd_(file.get()) {
  throw NotImplemented("08.1", "buy under a file lock", kLesson);
}

FileLock::~FileLock() = default;  // Exercise 08.1: unlock here

std::optional<int> buy_ticket(const Fd& /*office*/, std::chrono::microseconds /*race_window*/) {
  throw NotImplemented("08.1", "buy under a file lock", kLesson);
}

TicketCounter::TicketCounter(int tickets) {
  left_ = tickets;  // Exercise 08.2: refuse a negative number (std::invalid_argument)
}

std::optional<int> TicketCounter::buy(std::chrono::microseconds /*race_window*/) {
  throw NotImplemented("08.2", "the same with threads and a mutex", kLesson);
}

int TicketCounter::remaining() const {
  throw NotImplemented("08.2", "the same with threads and a mutex", kLesson);
}

bool transfer(Account& /*from*/, Account& /*to*/, long long /*amount*/) {
  throw NotImplemented("08.3", "a two-lock transfer that cannot deadlock", kLesson);
}

}  // namespace lab::locks
