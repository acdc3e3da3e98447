// Reference solution of exercise 03 (lessons/03_sticky_packets/line_splitter.hpp).
#include "line_splitter.hpp"

#include <fmt/core.h>

#include "lab/error.hpp"

namespace lab::sticky {

namespace {

[[noreturn]] void throw_too_long(std::size_t max_line) {
  throw ProtocolError(fmt::format("line longer than {} bytes: the peer is not sending command lines", max_line));
}

}  // namespace

std::vector<std::string> LineSplitter::feed(std::string_view chunk) {
  std::vector<std::string> lines;
  while (!chunk.empty()) {
    const std::size_t newline = chunk.find('\n');
    if (newline == std::string_view::npos) {
      // No end in sight: keep the bytes, but never more than a line can hold.
      // One byte of slack for a "\r" whose "\n" is still on its way.
      if (tail_.size() + chunk.size() > max_line_ + 1) {
        throw_too_long(max_line_);
      }
      tail_.append(chunk);
      break;
    }
    // Check before appending: a huge chunk never lands in tail_.
    if (tail_.size() + newline > max_line_ + 1) {
      throw_too_long(max_line_);
    }
    tail_.append(chunk.substr(0, newline));
    chunk.remove_prefix(newline + 1);
    if (!tail_.empty() && tail_.back() == '\r') {
      tail_.pop_back();
    }
    if (tail_.size() > max_line_) {
      throw_too_long(max_line_);
    }
    lines.push_back(std::move(tail_));
    tail_.clear();  // a moved-from string is valid but unspecified: make it empty
  }
  return lines;
}

std::optional<std::string> LineSplitter::finish() {
  if (tail_.empty()) {
    return std::nullopt;
  }
  throw ProtocolError(
      fmt::format("the stream ended inside a line ({} bytes without \\n)", tail_.size()));
}

}  // namespace lab::sticky
