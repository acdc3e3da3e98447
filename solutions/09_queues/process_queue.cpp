// Reference solution of exercise 09 (lessons/09_queues/process_queue.hpp).
#include "process_queue.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <stdexcept>

#include "lab/error.hpp"
#include "lab/io.hpp"

namespace lab::queues {

// ---- Given -------------------------------------------------------------------

ProcessQueue::ProcessQueue(std::size_t capacity_bytes) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    throw os_error("pipe2");
  }
  read_end_.reset(ends[0]);
  write_end_.reset(ends[1]);
  if (::fcntl(write_end_.get(), F_SETPIPE_SZ, static_cast<int>(capacity_bytes)) < 0) {
    throw os_error("fcntl F_SETPIPE_SZ " + std::to_string(capacity_bytes));
  }
}

std::size_t ProcessQueue::capacity() const {
  const Fd& end = write_end_ ? write_end_ : read_end_;
  const int size = ::fcntl(end.get(), F_GETPIPE_SZ);
  if (size < 0) {
    throw os_error("fcntl F_GETPIPE_SZ");
  }
  return static_cast<std::size_t>(size);
}

// ---- 09.1 --------------------------------------------------------------------

void write_frame(const Fd& pipe, std::string_view message) {
  if (message.size() > kMaxMessage) {
    throw std::length_error("a message of " + std::to_string(message.size()) +
                            " bytes is longer than the queue's limit of " + std::to_string(kMaxMessage));
  }
  const auto length = static_cast<std::uint32_t>(message.size());
  std::string frame;
  frame.reserve(kHeaderSize + message.size());
  // Big-endian, byte by byte: the same on every machine, no struct on the wire.
  frame.push_back(static_cast<char>((length >> 24) & 0xff));
  frame.push_back(static_cast<char>((length >> 16) & 0xff));
  frame.push_back(static_cast<char>((length >> 8) & 0xff));
  frame.push_back(static_cast<char>(length & 0xff));
  frame.append(message);
  // One buffer, so a frame of up to PIPE_BUF bytes goes in one atomic write.
  write_all(pipe, frame);
}

std::optional<std::string> read_frame(const Fd& pipe) {
  std::array<std::uint8_t, kHeaderSize> header{};
  if (!read_exact(pipe, header)) {
    return std::nullopt;  // a clean end between frames
  }
  const std::uint32_t length = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                               (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
  if (length > kMaxMessage) {
    throw ProtocolError("a frame claims " + std::to_string(length) + " bytes; the limit is " +
                        std::to_string(kMaxMessage));
  }
  if (length == 0) {
    return std::string();
  }
  auto payload = read_exact(pipe, length);
  if (!payload) {
    throw ProtocolError("the stream ended after a frame header, before its " + std::to_string(length) +
                        " bytes");
  }
  return payload;
}

// ---- 09.2 --------------------------------------------------------------------

void ProcessQueue::put(std::string_view message) {
  if (!write_end_) {
    throw std::logic_error("put on a queue this process has closed for writing");
  }
  const SharedLockGuard lock(writers_);
  write_frame(write_end_, message);
}

std::optional<std::string> ProcessQueue::get() {
  if (!read_end_) {
    throw std::logic_error("get in a process that gave up the read end (producer_only)");
  }
  const SharedLockGuard lock(readers_);
  return read_frame(read_end_);
}

// ---- 09.3 --------------------------------------------------------------------

void ProcessQueue::producer_only() { read_end_.reset(); }

void ProcessQueue::consumer_only() { write_end_.reset(); }

void ProcessQueue::close() { write_end_.reset(); }

}  // namespace lab::queues
