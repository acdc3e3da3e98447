// Reading a stream line by line: a program's output, or a client's request.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab {

// A line longer than LineRules::max_length. It is thrown as soon as the
// bytes read, with no "\n" among them, pass the limit: the rest of the line
// is never read, so a peer sending one endless line costs max_length bytes.
class LineTooLong : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

// What a LineReader accepts. The defaults suit a program's output read by a
// test; a server reading a client's line sets all three.
struct LineRules {
  // The longest line, in bytes without its "\n" or "\r\n"; 0: no limit.
  std::size_t max_length = 0;
  // If set, every wait also watches it, and throws StopRequested once it is
  // requested (even if it was requested before the wait began).
  const StopSignal* stop = nullptr;
  // A last line that the end of stream cuts off before its "\n": returned
  // (true), or a ProtocolError (false: a request must be a whole line).
  bool accept_unterminated = true;
};

// Reads a descriptor line by line, each line bounded by one deadline. A line
// ends at "\n"; a "\r" just before it is dropped too, so a line typed in
// telnet or nc -C ("status\r\n") reads the same as "status\n". One read is
// not one line: a read may bring half a line, or three and a half, so the
// reader keeps what follows the line it returns for the next call.
class LineReader {
 public:
  explicit LineReader(const Fd& fd, LineRules rules = {}) : fd_(fd.get()), rules_(rules) {}

  // The next line; nullopt at end of stream. Throws TimeoutError if the
  // whole line has not come within `timeout` (one deadline for the line,
  // not one per read: a peer trickling a byte at a time cannot stretch it),
  // LineTooLong, StopRequested, or ProtocolError (see LineRules).
  std::optional<std::string> next_line(std::chrono::milliseconds timeout);
  // Everything until end of stream, with no line rules. Throws TimeoutError
  // after `timeout`.
  std::string read_rest(std::chrono::milliseconds timeout);
  // What was read past the last line returned, without reading more.
  std::string take_buffered() { return std::exchange(buffer_, {}); }

 private:
  enum class Filled { bytes, end, timeout };
  // Waits for the descriptor (and the stop, if any) and reads once.
  Filled fill(std::chrono::steady_clock::time_point deadline);
  void check_length(std::size_t length) const;

  int fd_;
  LineRules rules_;
  std::string buffer_;
  bool ended_ = false;
};

}  // namespace lab
