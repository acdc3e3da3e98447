// Lesson 08 — the ticket office's line protocol, shared by server and client
// (given code, not an exercise).
//
//   client -> server             server -> client
//   "check\n"                    "left N\n"
//   "buy\n"                      "bought, N left\n" | "sold out\n"      (under the file lock)
//   "buy-no-lock\n"              the same, WITHOUT the lock (the --no-lock demo)
//   "restock N\n"                "restocked N\n"                         (0 <= N <= 1000000)
//   anything else                "error: ...\n", then the server closes
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab::locks {

inline constexpr std::size_t kMaxCommand = 64;

// Reads one "\n"-terminated line (without the "\n") from `connection`,
// keeping what arrives after it in `pending`. nullopt at a clean end of
// stream between lines; ProtocolError for a line longer than kMaxCommand or
// a stream that ends inside a line.
inline std::optional<std::string> read_line(const Fd& connection, std::string& pending) {
  for (;;) {
    if (const auto end = pending.find('\n'); end != std::string::npos) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      return line;
    }
    if (pending.size() > kMaxCommand) {
      throw ProtocolError("a line longer than " + std::to_string(kMaxCommand) + " bytes");
    }
    // Wait for data OR a stop request: a SIGTERM that arrived just before a
    // blocking read would otherwise be missed, and the read never end.
    wait_readable(connection.get(), process_stop());
    const auto chunk = read_some(connection, 512);
    if (!chunk) {
      if (!pending.empty()) {
        throw ProtocolError("the connection ended inside a line");
      }
      return std::nullopt;
    }
    pending += *chunk;
  }
}

}  // namespace lab::locks
