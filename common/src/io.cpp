#include "lab/io.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "lab/stop.hpp"

namespace lab {

namespace {

// One send(2), or write(2) for what is not a socket (a pipe, a file).
ssize_t write_once(int fd, const char* data, std::size_t size) {
  const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
  if (sent < 0 && errno == ENOTSOCK) {
    return ::write(fd, data, size);
  }
  return sent;
}

ssize_t read_once(int fd, char* data, std::size_t size) {
  const ssize_t received = ::recv(fd, data, size, 0);
  if (received < 0 && errno == ENOTSOCK) {
    return ::read(fd, data, size);
  }
  return received;
}

[[noreturn]] void throw_read_error(std::string_view call) {
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    throw TimeoutError(std::string(call) + ": timed out waiting for the peer");
  }
  throw os_error(std::string(call));
}

// Reads up to `size` bytes into `data`; 0 means end of stream.
std::size_t read_retrying(int fd, char* data, std::size_t size) {
  for (;;) {
    const ssize_t received = read_once(fd, data, size);
    if (received >= 0) {
      return static_cast<std::size_t>(received);
    }
    if (errno != EINTR) {
      throw_read_error("recv");
    }
    throw_if_stop_requested();
  }
}

bool fill(int fd, char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const std::size_t received = read_retrying(fd, data + done, size - done);
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

}  // namespace

void write_all(const Fd& fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t sent = write_once(fd.get(), bytes.data() + done, bytes.size() - done);
    if (sent < 0) {
      if (errno == EINTR) {
        throw_if_stop_requested();
        continue;
      }
      throw os_error("send");
    }
    done += static_cast<std::size_t>(sent);  // a short write: send the rest
  }
}

void write_all(const Fd& fd, std::span<const std::uint8_t> bytes) {
  write_all(fd, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::optional<std::string> read_some(const Fd& fd, std::size_t max_bytes) {
  std::string buffer(max_bytes, '\0');
  const std::size_t received = read_retrying(fd.get(), buffer.data(), buffer.size());
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
  for (;;) {
    const std::size_t received = read_retrying(fd.get(), chunk, sizeof chunk);
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
