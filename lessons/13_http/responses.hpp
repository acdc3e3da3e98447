// Lesson 13 — writing HTTP responses: the status line and header every
// answer starts with, the small plain-text error replies, whether the
// connection stays open after them, and the lingering close that keeps an
// error reply from being lost to a reset.
#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

#include "http.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"

namespace lab::http {

inline std::string reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
  }
}

// The Date field (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
inline std::string http_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::array<char, 64> text{};
  const std::size_t length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text.data(), length);
}

// The status line and header of a response. Every line ends in CRLF, and
// the header ends with an empty line: "\r\n\r\n" on the wire.
inline std::string response_head(int status, const std::string& type, std::uint64_t length, bool keep_alive,
                                 const std::string& extra = "") {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\n";
  head += "Date: " + http_date() + "\r\n";
  head += "Server: lab13\r\n";
  head += "Content-Type: " + type + "\r\n";
  head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += extra;
  head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  head += "\r\n";
  return head;
}

inline void send_error(const Fd& connection, int status, bool keep_alive, bool head_only,
                       const std::string& extra = "") {
  const std::string body = std::to_string(status) + " " + reason_of(status) + "\n";
  std::string reply = response_head(status, "text/plain; charset=utf-8", body.size(), keep_alive, extra);
  if (!head_only) {
    reply += body;
  }
  write_all(connection, reply);
}

// Does the client want the connection kept open after this response?
// HTTP/1.1: yes unless "Connection: close"; HTTP/1.0: no (we do not
// implement 1.0's "keep-alive" extension).
inline bool keep_alive_wanted(const RequestHead& request) {
  if (request.minor_version == 0) {
    return false;
  }
  std::string connection = request.fields.get("connection").value_or("");
  for (char& c : connection) {
    c = Fields::ascii_lower(c);
  }
  return connection.find("close") == std::string::npos;
}

// Closing a socket with unread bytes in its receive buffer makes the kernel
// send a reset (RST), which can destroy the error response we just sent
// before the client has read it. So: stop sending (FIN after our reply),
// read and throw away what the client still sends, for a short while, then
// close. ("Lingering close", RFC 9112 §9.6.)
inline void lingering_close(const Fd& connection) {
  ::shutdown(connection.get(), SHUT_WR);
  set_receive_timeout(connection, std::chrono::milliseconds(500));
  try {
    for (int reads = 0; reads < 64; ++reads) {
      if (!read_some(connection, 16 * 1024)) {
        return;
      }
    }
  } catch (const std::exception&) {
    // A reset or the timeout: either way we are done.
  }
}

}  // namespace lab::http
