// Lesson 03 — sticky packets (粘包). The class you write in line_splitter.cpp
// (exercises 03.1–03.3): delimiter framing, the first fix for a byte stream.
// The reference answers are in solutions/03_sticky_packets/line_splitter.cpp:
// look only after trying.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lab::sticky {

// The longest command line the lesson's server accepts, without its "\n".
inline constexpr std::size_t kMaxCommandLine = 256;

// Cuts a byte stream into lines. TCP hands the receiver chunks of any size:
// half a line, or three lines and a half, wherever the kernel happened to
// split them. Feed every chunk, in order; get back only whole lines.
//
//   LineSplitter splitter(256);
//   for (const std::string& line : splitter.feed(chunk_from_recv)) { ... }
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = kMaxCommandLine) : max_line_(max_line) {}

  // ---- Exercise 03.1: whole lines, in order, whatever the chunks ----------
  //
  // Appends `chunk` to what is pending and returns every line now complete,
  // in order. A line ends with "\n"; the "\n" is not part of it, and neither
  // is a "\r" just before it (telnet and Windows send "\r\n"). An empty line
  // is returned as "". Bytes after the last "\n" stay pending until a later
  // chunk completes them, so feeding "da", "te\nls", " -l\n" returns {},
  // {"date"}, {"ls -l"}. Any byte other than "\n" (even "\0") is data.
  std::vector<std::string> feed(std::string_view chunk);

  // How many bytes are pending: received, but not yet part of a whole line.
  [[nodiscard]] std::size_t pending() const noexcept { return tail_.size(); }

  // ---- Exercise 03.2: a limit, so a peer cannot make the buffer grow -------
  //
  // In feed: a line longer than max_line bytes (not counting "\n" or the
  // "\r" before it) throws lab::ProtocolError whose message contains "line
  // longer than <max_line> bytes". Throw as soon as you know, even before
  // its "\n" arrives: a peer that never sends "\n" must not make pending()
  // grow past max_line + 1 bytes. Lines completed earlier in the same chunk
  // are lost with the connection; that is fine.

  // ---- Exercise 03.3: the end of the stream ---------------------------------
  //
  // Call when recv returned 0 (the peer closed). Returns nullopt if nothing
  // is pending: the stream ended cleanly between lines. If bytes are pending,
  // the last line was cut short (the peer forgot its "\n", or the connection
  // broke): throw lab::ProtocolError whose message contains "ended inside a
  // line" and the number of pending bytes, e.g. "the stream ended inside a
  // line (4 bytes without \n)". The return type leaves room for a protocol
  // that accepts a last line without "\n"; this one does not.
  std::optional<std::string> finish();

 private:
  std::size_t max_line_;
  std::string tail_;  // the bytes after the last "\n" seen so far
};

}  // namespace lab::sticky
