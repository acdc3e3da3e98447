// Lesson 08 — the ticket office's file: given code, not an exercise.
//
// The office is a small text file holding the number of tickets left, e.g.
// "100\n". Every buyer opens the file ITSELF (open_office), so that each
// buyer has its own open file description: that is what an OFD lock
// (exercise 08.1) belongs to.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "lab/error.hpp"
#include "lab/fd.hpp"

namespace lab::locks {

// Opens an existing ticket file for reading and writing.
inline Fd open_office(const std::filesystem::path& path) {
  Fd file{::open(path.c_str(), O_RDWR | O_CLOEXEC)};
  if (!file) {
    throw os_error("open " + path.string());
  }
  return file;
}

// The count in the file. pread at offset 0: no shared file offset to race on.
inline int read_count(const Fd& office) {
  char text[32];
  ssize_t got = 0;
  do {
    got = ::pread(office.get(), text, sizeof text, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    throw os_error("pread ticket file");
  }
  int count = 0;
  const char* end = text + got;
  const auto [stop, error] = std::from_chars(text, end, count);
  if (error != std::errc{} || stop == text || (stop != end && *stop != '\n')) {
    throw ProtocolError("the ticket file does not hold a number");
  }
  return count;
}

// Replaces the count in the file. One pwrite of a few bytes at offset 0,
// then ftruncate, so a shorter number ("9" after "10") leaves no old digit.
inline void write_count(const Fd& office, int count) {
  const std::string text = std::to_string(count) + "\n";
  ssize_t wrote = 0;
  do {
    wrote = ::pwrite(office.get(), text.data(), text.size(), 0);
  } while (wrote < 0 && errno == EINTR);
  if (wrote != static_cast<ssize_t>(text.size())) {
    throw os_error("pwrite ticket file");
  }
  if (::ftruncate(office.get(), static_cast<off_t>(text.size())) != 0) {
    throw os_error("ftruncate ticket file");
  }
}

// Creates (or overwrites) a ticket file holding `tickets`.
inline void create_office(const std::filesystem::path& path, int tickets) {
  const Fd file{::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (!file) {
    throw os_error("create " + path.string());
  }
  write_count(file, tickets);
}

// The Python course's buy, WITHOUT a lock: check, then buy. Between the read
// and the write another buyer can read the same count; both then sell "the
// last ticket" and one sale is lost from the count: an oversell.
// `race_window` widens that gap ON PURPOSE, so the demo shows the race every
// time instead of once in a while (a real program has the gap too, only
// shorter). Returns the tickets left after this sale, or nullopt if sold out.
inline std::optional<int> buy_ticket_without_lock(const Fd& office, std::chrono::microseconds race_window) {
  const int left = read_count(office);
  if (left <= 0) {
    return std::nullopt;
  }
  std::this_thread::sleep_for(race_window);  // the other buyers read the same `left` now
  write_count(office, left - 1);
  return left - 1;
}

}  // namespace lab::locks
