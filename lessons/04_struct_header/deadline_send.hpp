// Lesson 04 — sending within a deadline, and stopping at once on SIGINT or
// SIGTERM, even half way through a large file. Given code, not an exercise.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab::file_server {

using Clock = std::chrono::steady_clock;

// Every step of a download checks both: a stop (SIGINT/SIGTERM) ends the
// server within moments even half way through 1 GiB, and a request that
// takes longer than --request-timeout (a client reading very slowly) is
// dropped so that the next client gets its turn.
inline void check_stop_and_deadline(Clock::time_point deadline) {
  throw_if_stop_requested();
  if (Clock::now() >= deadline) {
    throw TimeoutError("the request took longer than --request-timeout");
  }
}

// Sends all of `bytes` before `deadline`. A plain blocking send(2) is not
// enough here: a signal that arrives while send has already queued part of
// the data makes it return that short count, not EINTR, and the next
// blocking send would sleep through the stop. So send(2) never blocks
// (MSG_DONTWAIT), and only when the socket buffer is full do we poll(2),
// on the socket and on the stop's eventfd together, until the deadline.
inline void send_before(const Fd& socket, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a client that has gone is an EPIPE error, not a SIGPIPE.
    const ssize_t sent = ::send(socket.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));  // a short write: send the rest
      continue;
    }
    if (errno == EINTR) {
      throw_if_stop_requested();
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      throw os_error("send");
    }
    check_stop_and_deadline(deadline);
    pollfd waits[2] = {{socket.get(), POLLOUT, 0}, {process_stop().fd(), POLLIN, 0}};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(waits, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0))) < 0 && errno != EINTR) {
      throw os_error("poll");
    }
  }
}

}  // namespace lab::file_server
