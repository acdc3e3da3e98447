// Reading and writing whole messages over sockets and pipes.
//
// These are the only functions in the lab (outside the exercises that ask the
// student to write their own) that call read/recv/send/write directly. Each
// one loops on short reads and writes, retries EINTR unless a stop was
// requested, and sends with MSG_NOSIGNAL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lab/error.hpp"
#include "lab/fd.hpp"

namespace lab {

// A read on a socket with SO_RCVTIMEO (set_receive_timeout) timed out.
class TimeoutError : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

// Writes every byte, however many calls it takes: send(2) and write(2) may
// write fewer bytes than asked ("short write"), and a signal may interrupt
// them (EINTR). Sockets are written with send and MSG_NOSIGNAL, so a peer
// that has gone away gives EPIPE instead of killing the program with
// SIGPIPE; anything else (a pipe, a file) with write. Throws
// std::system_error naming the call: "send: Broken pipe" for a socket whose
// peer is gone, "write: Broken pipe" for a pipe with no reader (write(2) has
// no MSG_NOSIGNAL: that needs SIGPIPE ignored, as install_stop_handlers does).
//
// Knowing whether `fd` is a socket costs write_all an fstat(2) on each call
// for a descriptor that is not one (sockets are remembered: see io.cpp).
// A caller that knows says so, and each write is then one system call:
// Descriptor::not_socket writes a file or pipe with write(2) at once,
// Descriptor::socket sends at once. A wrong hint is a bug in the caller:
// write(2) to a socket has no MSG_NOSIGNAL.
enum class Descriptor { unknown, socket, not_socket };
void write_all(const Fd& fd, std::string_view bytes, Descriptor kind = Descriptor::unknown);
void write_all(const Fd& fd, std::span<const std::uint8_t> bytes,
               Descriptor kind = Descriptor::unknown);

// Reads whatever is available, at most `max_bytes` (at least 1 byte, unless
// the stream ended). Returns nullopt at end of stream: the peer closed its
// side cleanly. Throws std::system_error on a reset ("recv: Connection reset
// by peer"), TimeoutError after SO_RCVTIMEO.
std::optional<std::string> read_some(const Fd& fd, std::size_t max_bytes);

// Reads exactly `count` bytes. Returns nullopt if the stream ended before the
// first byte (a clean end at a message boundary); throws ProtocolError if it
// ended part way ("connection closed after 3 of 8 bytes").
std::optional<std::string> read_exact(const Fd& fd, std::size_t count);

// The same into a caller's buffer: true when filled, false on a clean end
// before the first byte.
bool read_exact(const Fd& fd, std::span<std::uint8_t> buffer);

// Reads until end of stream, refusing more than `max_bytes` (ProtocolError).
std::string read_to_end(const Fd& fd, std::size_t max_bytes);

}  // namespace lab
