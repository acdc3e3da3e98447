#include "lab/io.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bitset>
#include <cerrno>
#include <string>

#include "lab/stop.hpp"

namespace lab {

namespace {

// Which calls move bytes through a descriptor: send/recv for a socket (send
// needs MSG_NOSIGNAL, so that a peer that has gone gives EPIPE instead of
// SIGPIPE), write/read for anything else (a pipe, a file, a terminal), where
// send and recv fail with ENOTSOCK.
//
// Asking costs a system call, so each helper asks once per call, not once
// per read or write in its loop, and each thread remembers which descriptor
// numbers were sockets the last time it looked. It remembers only that: a
// number may be closed and reused for something else at any time. A stale
// "socket" costs one send that fails with ENOTSOCK, after which we use
// write. A stale "not a socket" would make us write() to a socket, without
// MSG_NOSIGNAL: SIGPIPE could kill the program. So that is never assumed.
class SocketMemory {
 public:
  [[nodiscard]] bool was_socket(int fd) const noexcept {
    return tracked(fd) && sockets_[static_cast<std::size_t>(fd)];
  }
  void set(int fd, bool socket) noexcept {
    if (tracked(fd)) {
      sockets_[static_cast<std::size_t>(fd)] = socket;
    }
  }

 private:
  static constexpr int kTrackedDescriptors =
      1024;  // the usual RLIMIT_NOFILE; above it, ask every time
  static bool tracked(int fd) noexcept { return fd >= 0 && fd < kTrackedDescriptors; }
  std::bitset<kTrackedDescriptors> sockets_;
};

thread_local SocketMemory socket_memory;

bool is_socket(int fd) noexcept {
  if (socket_memory.was_socket(fd)) {
    return true;  // checked by the send or recv itself: ENOTSOCK if it was wrong
  }
  struct stat status {};
  // If fstat fails (EBADF), say "not a socket": the write or read that
  // follows fails the same way and reports it under its own name.
  const bool socket = ::fstat(fd, &status) == 0 && S_ISSOCK(status.st_mode);
  socket_memory.set(fd, socket);
  return socket;
}

// One descriptor, and the calls that read and write it: one system call per
// read or write, whatever the descriptor is.
class Stream {
 public:
  explicit Stream(int fd) noexcept : fd_(fd), socket_(is_socket(fd)) {}
  // The caller knows what `fd` is: no fstat.
  Stream(int fd, bool socket) noexcept : fd_(fd), socket_(socket) {}

  ssize_t write_once(const char* data, std::size_t size) noexcept {
    if (socket_) {
      const ssize_t sent = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (sent >= 0 || errno != ENOTSOCK) {
        return sent;
      }
      forget_socket();
    }
    return ::write(fd_, data, size);
  }

  ssize_t read_once(char* data, std::size_t size) noexcept {
    if (socket_) {
      const ssize_t received = ::recv(fd_, data, size, 0);
      if (received >= 0 || errno != ENOTSOCK) {
        return received;
      }
      forget_socket();
    }
    return ::read(fd_, data, size);
  }

  // For error messages: the call that failed ("send: Broken pipe",
  // "write: Broken pipe").
  [[nodiscard]] const char* write_call() const noexcept { return socket_ ? "send" : "write"; }
  [[nodiscard]] const char* read_call() const noexcept { return socket_ ? "recv" : "read"; }

 private:
  // The number was a socket once, and is something else now.
  void forget_socket() noexcept {
    socket_ = false;
    socket_memory.set(fd_, false);
  }

  int fd_;
  bool socket_;
};

[[noreturn]] void throw_read_error(std::string_view call) {
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    throw TimeoutError(std::string(call) + ": timed out waiting for the peer");
  }
  throw os_error(std::string(call));
}

// Reads up to `size` bytes into `data`; 0 means end of stream.
std::size_t read_retrying(Stream& stream, char* data, std::size_t size) {
  for (;;) {
    const ssize_t received = stream.read_once(data, size);
    if (received >= 0) {
      return static_cast<std::size_t>(received);
    }
    if (errno != EINTR) {
      throw_read_error(stream.read_call());
    }
    throw_if_stop_requested();
  }
}

bool fill(int fd, char* data, std::size_t size) {
  Stream stream(fd);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t received = read_retrying(stream, data + done, size - done);
    if (received == 0) {
      if (done == 0) {
        return false;
      }
      throw ProtocolError("connection closed after " + std::to_string(done) + " of " +
                          std::to_string(size) + " bytes");
    }
    done += received;
  }
  return true;
}

Stream stream_for(const Fd& fd, Descriptor kind) noexcept {
  switch (kind) {
    case Descriptor::socket:
      return Stream(fd.get(), true);
    case Descriptor::not_socket:
      return Stream(fd.get(), false);
    case Descriptor::unknown:
      break;
  }
  return Stream(fd.get());
}

}  // namespace

void write_all(const Fd& fd, std::string_view bytes, Descriptor kind) {
  if (bytes.empty()) {
    return;
  }
  Stream stream = stream_for(fd, kind);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t sent = stream.write_once(bytes.data() + done, bytes.size() - done);
    if (sent < 0) {
      if (errno == EINTR) {
        throw_if_stop_requested();
        continue;
      }
      throw os_error(stream.write_call());
    }
    done += static_cast<std::size_t>(sent);  // a short write: send the rest
  }
}

void write_all(const Fd& fd, std::span<const std::uint8_t> bytes, Descriptor kind) {
  write_all(fd, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), kind);
}

std::optional<std::string> read_some(const Fd& fd, std::size_t max_bytes) {
  std::string buffer(max_bytes, '\0');
  Stream stream(fd.get());
  const std::size_t received = read_retrying(stream, buffer.data(), buffer.size());
  if (received == 0 && max_bytes > 0) {
    return std::nullopt;
  }
  buffer.resize(received);
  return buffer;
}

std::optional<std::string> read_exact(const Fd& fd, std::size_t count) {
  std::string buffer(count, '\0');
  if (!fill(fd.get(), buffer.data(), count) && count > 0) {
    return std::nullopt;
  }
  return buffer;
}

bool read_exact(const Fd& fd, std::span<std::uint8_t> buffer) {
  return fill(fd.get(), reinterpret_cast<char*>(buffer.data()), buffer.size()) || buffer.empty();
}

std::string read_to_end(const Fd& fd, std::size_t max_bytes) {
  std::string data;
  char chunk[4096];
  Stream stream(fd.get());
  for (;;) {
    const std::size_t received = read_retrying(stream, chunk, sizeof chunk);
    if (received == 0) {
      return data;
    }
    if (data.size() + received > max_bytes) {
      throw ProtocolError("more than " + std::to_string(max_bytes) + " bytes");
    }
    data.append(chunk, received);
  }
}

}  // namespace lab
