#include "lab/line_reader.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>

#include "lab/error.hpp"

namespace lab {

LineReader::Filled LineReader::fill(std::chrono::steady_clock::time_point deadline) {
  if (ended_) {
    return Filled::end;
  }
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Filled::timeout;
    }
    // poll(2) ignores an entry whose fd is negative: with no stop to watch,
    // the second entry is never ready.
    const int stop_fd = rules_.stop != nullptr ? rules_.stop->fd() : -1;
    std::array<pollfd, 2> entries{{{fd_, POLLIN, 0}, {stop_fd, POLLIN, 0}}};
    // In steps poll(2)'s int can hold: the loop comes back for the rest.
    const auto step = std::min<std::chrono::milliseconds::rep>(left.count(), std::numeric_limits<int>::max());
    const int ready = ::poll(entries.data(), entries.size(), static_cast<int>(step));
    if (ready < 0 && errno != EINTR) {
      throw os_error("poll");
    }
    if (entries[1].revents != 0) {
      throw StopRequested{};
    }
    if (ready <= 0 || entries[0].revents == 0) {
      continue;
    }
    char chunk[4096];
    const ssize_t got = ::read(fd_, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      throw os_error("read");
    }
    if (got == 0) {
      ended_ = true;
      return Filled::end;
    }
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return Filled::bytes;
  }
}

void LineReader::check_length(std::size_t length) const {
  if (rules_.max_length > 0 && length > rules_.max_length) {
    throw LineTooLong(fmt::format("a line longer than {} bytes", rules_.max_length));
  }
}

std::optional<std::string> LineReader::next_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t searched = 0;  // the bytes already known to hold no "\n"
  for (;;) {
    if (const auto newline = buffer_.find('\n', searched); newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      check_length(line.size());
      return line;
    }
    searched = buffer_.size();
    // No "\n" yet. A "\r" at the end may be the start of "\r\n": not counted.
    check_length(buffer_.size() - (!buffer_.empty() && buffer_.back() == '\r' ? 1 : 0));
    switch (fill(deadline)) {
      case Filled::bytes:
        break;
      case Filled::timeout:
        throw TimeoutError(fmt::format("no whole line within {} ms", timeout.count()));
      case Filled::end:
        if (buffer_.empty()) {
          return std::nullopt;
        }
        if (!rules_.accept_unterminated) {
          throw ProtocolError(
              fmt::format("the stream ended in the middle of a line, after {} bytes", buffer_.size()));
        }
        return std::exchange(buffer_, {});
    }
  }
}

std::string LineReader::read_rest(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    switch (fill(deadline)) {
      case Filled::bytes:
        break;
      case Filled::timeout:
        throw TimeoutError(fmt::format("the stream did not end within {} ms", timeout.count()));
      case Filled::end:
        return std::exchange(buffer_, {});
    }
  }
}

}  // namespace lab
