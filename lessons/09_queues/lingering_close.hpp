// Lesson 09 — the lingering close: after an error frame, stop sending and
// drop what the client still sends, so our last words are not lost to a reset.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "process_queue.hpp"

namespace lab::queues {

// After an error frame, the client may still be sending (the rest of a job
// we refused). close(2) with unread input sends a reset, and a reset can
// make the client's kernel throw away our error frame before the client
// reads it (RFC 1122 4.2.2.13). So stop sending, then read and drop what
// still comes, for a short while only: the "lingering close".
inline void close_after_error(const lab::Fd& connection) {
  constexpr std::chrono::milliseconds kLinger{250};
  constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;  // more than any socket buffer holds
  ::shutdown(connection.get(), SHUT_WR);
  lab::set_receive_timeout(connection, kLinger);
  const auto until = std::chrono::steady_clock::now() + kLinger;
  std::size_t dropped = 0;
  try {
    while (dropped < kLingerBytes && std::chrono::steady_clock::now() < until) {
      const auto chunk = lab::read_some(connection, 64 * 1024);
      if (!chunk) {
        break;  // the client has closed too: a clean end
      }
      dropped += chunk->size();
    }
  } catch (const lab::ProtocolError&) {  // the linger's time is up (TimeoutError)
  } catch (const std::system_error&) {   // the client reset: it is gone anyway
  }
}

// Sends the frame "error: WHY", then closes as above. A client already gone
// cannot be told: that is no error of ours.
inline void send_error_and_close(const lab::Fd& connection, const std::string& why) {
  try {
    write_frame(connection, "error: " + why);
    close_after_error(connection);
  } catch (const std::system_error&) {
  }
}

}  // namespace lab::queues
