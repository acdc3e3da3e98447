// lab::http::ByteReader — bytes from a stream, read ahead into a buffer.
//
// HTTP has no length in front of its header: the header ends at an empty
// line, wherever that falls in the stream. So a program reads a chunk (one
// recv may bring half a line, or the whole header and part of the body),
// looks for the end of a line in what it has, and keeps the bytes after it
// for the next call. This class is that buffer. It reads from a Source,
// not from a socket directly, so that tests can feed it any bytes, split
// anywhere, without a socket:
//
//   ByteReader reader = ByteReader::of_socket(connection);
//   std::optional<std::string> line = reader.read_line(8192);  // "GET / HTTP/1.1"
//   while (!reader.buffered().empty() || reader.fill()) { ... reader.consume(n); }
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"

namespace lab::http {

// A line longer than the limit given to read_line. HTTP answers it with
// 414 (request line) or 431 (header field): the caller knows which.
class LineTooLong : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

class ByteReader {
 public:
  // Returns the next bytes of the stream, at most `max_bytes` and at least
  // one, or nullopt at the end of the stream.
  using Source = std::function<std::optional<std::string>(std::size_t max_bytes)>;

  static constexpr std::size_t kReadSize = 16 * 1024;

  explicit ByteReader(Source source, std::size_t read_size = kReadSize)
      : source_(std::move(source)), read_size_(read_size) {}

  // A reader of a socket (or pipe) with lab::read_some: one recv per fill,
  // whatever it brings.
  static ByteReader of_socket(const Fd& fd) {
    return ByteReader([&fd](std::size_t max_bytes) { return lab::read_some(fd, max_bytes); });
  }

  // The bytes read from the source and not consumed yet.
  [[nodiscard]] std::string_view buffered() const noexcept {
    return std::string_view(buffer_).substr(start_);
  }

  // Reads once more from the source and appends to buffered(). Returns false
  // at the end of the stream (nothing was added).
  bool fill() {
    compact();
    std::optional<std::string> more = source_(read_size_);
    if (!more || more->empty()) {
      return false;
    }
    buffer_ += *more;
    return true;
  }

  // Drops the first `count` bytes of buffered() (count <= buffered().size()).
  void consume(std::size_t count) noexcept {
    start_ += std::min(count, buffer_.size() - start_);
  }

  // The next line, without its "\n" and without one "\r" before it (RFC 9112
  // §2.2 lets a recipient accept a bare LF as the end of a line). Returns
  // nullopt if the stream ended before the line's first byte; throws
  // ProtocolError if it ended inside the line, and LineTooLong once more than
  // `max_length` bytes came without a "\n": the limit is checked as the bytes
  // come, so a peer sending a line without end costs at most
  // max_length + one read of memory.
  std::optional<std::string> read_line(std::size_t max_length) {
    std::size_t searched = 0;
    for (;;) {
      const std::string_view have = buffered();
      const std::size_t end = have.find('\n', searched);
      if (end != std::string_view::npos) {
        std::size_t length = end;
        if (length > 0 && have[length - 1] == '\r') {
          --length;
        }
        if (length > max_length) {
          throw LineTooLong("line longer than " + std::to_string(max_length) + " bytes");
        }
        std::string line(have.substr(0, length));
        consume(end + 1);
        return line;
      }
      // +1: the "\r" before a "\n" still to come is not part of the line.
      if (have.size() > max_length + 1) {
        throw LineTooLong("line longer than " + std::to_string(max_length) + " bytes");
      }
      searched = have.size();
      if (!fill()) {
        if (buffered().empty()) {
          return std::nullopt;
        }
        throw ProtocolError("the stream ended in the middle of a line");
      }
    }
  }

 private:
  // Moves the unread bytes to the front now and then, so that the buffer
  // does not grow with everything ever read on a long connection.
  void compact() {
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
  }

  Source source_;
  std::size_t read_size_;
  std::string buffer_;
  std::size_t start_ = 0;
};

}  // namespace lab::http
