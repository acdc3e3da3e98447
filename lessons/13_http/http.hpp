// Lesson 13 — HTTP/1.1 over a raw TCP connection: the exercise.
//
// You write the functions declared here, in http.cpp. The lesson's client
// and server call them, so they work once your functions do. The byte-level
// rules are in README.md ("HTTP/1.1 on the wire") and in RFC 9112.
//
//   13.1  parse_url, build_request          the request a client sends
//   13.2  read_request_head,
//         read_response_head                a message's start line and header
//   13.3  request_framing, response_framing,
//         read_body                         where a body ends, and reading it
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "byte_reader.hpp"
#include "lab/error.hpp"

namespace lab::http {

// A message broke HTTP's rules, or a limit. `status()` is what a server
// answers it with: 400 Bad Request, 413 Content Too Large, 414 URI Too Long,
// 431 Request Header Fields Too Large, 505 HTTP Version Not Supported.
class HttpError : public ProtocolError {
 public:
  HttpError(int status, const std::string& what) : ProtocolError(what), status_(status) {}
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

// The header fields of a message, in the order they came.
struct Fields {
  std::vector<std::pair<std::string, std::string>> list;  // {name, value}

  // Every value of the field `name`, compared without regard to case
  // ("Content-Length" == "content-length": RFC 9110 §5.1).
  [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> values;
    for (const auto& [field, value] : list) {
      if (field.size() == name.size() &&
          std::equal(field.begin(), field.end(), name.begin(), [](char a, char b) {
            return ascii_lower(a) == ascii_lower(b);
          })) {
        values.push_back(value);
      }
    }
    return values;
  }
  // The value of `name` if it came exactly once; nullopt if not at all. If
  // it came several times, the values joined with ", " (RFC 9110 §5.3).
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
    const std::vector<std::string> values = all(name);
    if (values.empty()) {
      return std::nullopt;
    }
    std::string joined = values.front();
    for (std::size_t i = 1; i < values.size(); ++i) {
      joined += ", " + values[i];
    }
    return joined;
  }
  static constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
};

// ---------------------------------------------------------------------------
// 13.1 — the request a client sends
// ---------------------------------------------------------------------------

struct Url {
  std::string host;        // "127.0.0.1", "localhost", or "::1" (without brackets)
  std::uint16_t port = 80;
  std::string target = "/";  // the path and query, as sent in the request line
};

// Splits "http://HOST[:PORT][/PATH[?QUERY]][#FRAGMENT]":
//  - the scheme is "http", in any case ("HTTP://" too); anything else
//    ("https://", "ftp://", no scheme) is refused: this client cannot check
//    a TLS certificate, so it does not pretend to speak https;
//  - HOST is a name or IPv4 address, or an IPv6 address in brackets
//    ("[::1]", returned as "::1"); it is not empty and holds no '@'
//    (credentials in URLs are refused);
//  - PORT, if there is a ':', is 1 to 65535 in decimal digits only; 80 if
//    there is no ':';
//  - the target is everything from the first '/' after the host up to a '#'
//    (the fragment is never sent), "/" if empty; "http://h?x=1" has target
//    "/?x=1".
//  - a URL holding a space, a control character (CR, LF, NUL, TAB, ...) or
//    a byte >= 0x80 anywhere is refused (percent-encode them instead).
// Throws std::invalid_argument saying what is wrong.
Url parse_url(std::string_view url);

struct RequestSpec {
  std::string method = "GET";
  std::string target = "/";
  std::string host;          // as in Url: an IPv6 address without brackets
  std::uint16_t port = 80;
  bool keep_alive = false;   // false: ask the server to close after its answer
  std::vector<std::pair<std::string, std::string>> extra_fields;  // sent after the others, in order
};

// The bytes of a request without a body, exactly:
//
//   METHOD SP TARGET SP "HTTP/1.1" CRLF
//   "Host: " HOST [":" PORT] CRLF          ":PORT" only when the port is not 80;
//                                          an IPv6 host in brackets: "[::1]:8080"
//   "Connection: " ("keep-alive" | "close") CRLF
//   NAME ": " VALUE CRLF                   for each extra field, in order
//   CRLF
//
// Every line ends in CR LF ("\r\n"), never a bare "\n". Refuses, with
// std::invalid_argument and nothing built:
//  - a method that is empty or not a token (RFC 9110 §5.6.2: letters,
//    digits and !#$%&'*+-.^_`|~ only);
//  - a target that is empty, does not start with '/', or holds a space, a
//    control character or a byte >= 0x80;
//  - a host that is empty or holds a space, a control character, '/', '@'
//    or a byte >= 0x80;
//  - an extra field whose name is not a token, or whose value holds CR, LF,
//    NUL or another control character except TAB (a "\r\n" in a value
//    would let the caller's input write headers of its own: header
//    injection).
std::string build_request(const RequestSpec& request);

// ---------------------------------------------------------------------------
// 13.2 — the start line and the header fields, with limits
// ---------------------------------------------------------------------------

struct Limits {
  std::size_t max_line = 8 * 1024;            // the start line, and each field line
  std::size_t max_fields = 100;               // field lines in one header
  std::size_t max_header_bytes = 64 * 1024;   // all field lines together, line ends included
};

struct RequestHead {
  std::string method;   // "GET", case kept (methods are case-sensitive)
  std::string target;   // "/index.html?x=1", as sent
  int minor_version = 1;  // 1 for "HTTP/1.1", 0 for "HTTP/1.0"
  Fields fields;
};

struct ResponseHead {
  int minor_version = 1;
  int status = 0;        // 100 to 599
  std::string reason;    // "Not Found"; may be empty
  Fields fields;
};

// Reads one request's head with reader.read_line: the request line, then
// field lines up to the empty line, which ends the head (nothing after it is
// read; the body, if any, stays in the reader). Returns nullopt if the
// stream ended cleanly before the request's first byte (a keep-alive
// client that is done).
//
// The request line is METHOD SP TARGET SP "HTTP/" DIGIT "." DIGIT, with
// exactly one space between the parts. The method is a token, the target
// is not empty and holds no control character. Errors:
//  - a request line longer than limits.max_line:           HttpError 414;
//  - a malformed request line:                             HttpError 400;
//  - a well-formed version whose major digit is not 1
//    ("HTTP/2.0", "HTTP/0.9"):                             HttpError 505.
// Each field line is NAME ":" OWS VALUE OWS (OWS: spaces and tabs, trimmed):
//  - NAME is a non-empty token, stored in lower case ("content-length"), so
//    that comparing names never depends on how the peer wrote them;
//  - a space or tab before the ':' (RFC 9112 §5.1), a missing ':', a value
//    holding a control character other than TAB (a bare CR, NUL):  HttpError 400;
//  - a line starting with a space or tab (obs-fold, a value continued on
//    the next line, RFC 9112 §5.2) is refused:                     HttpError 400;
//  - a field line longer than limits.max_line, more than
//    limits.max_fields field lines, or field lines totalling more than
//    limits.max_header_bytes (each line counted with 2 bytes for its end):
//                                                                  HttpError 431;
//  - the stream ending inside the head: lab::ProtocolError (any).
std::optional<RequestHead> read_request_head(ByteReader& reader, const Limits& limits = {});

// The same for a response: the status line is "HTTP/" DIGIT "." DIGIT SP
// STATUS [SP REASON], STATUS three digits from 100 to 599, REASON anything
// without control characters other than TAB (a client ignores it). The
// fields follow the same rules and limits. Any error, a major version other
// than 1, or the stream ending before or inside the head throws
// lab::ProtocolError (an HttpError is one; its status does not matter here).
ResponseHead read_response_head(ByteReader& reader, const Limits& limits = {});

// ---------------------------------------------------------------------------
// 13.3 — where the body ends, and reading it
// ---------------------------------------------------------------------------

enum class BodyKind {
  none,         // no body at all
  length,       // exactly `length` bytes (Content-Length)
  chunked,      // chunked transfer coding (Transfer-Encoding: chunked)
  until_close,  // everything until the peer closes (a response only)
};

struct Framing {
  BodyKind kind = BodyKind::none;
  std::uint64_t length = 0;  // for BodyKind::length
  friend bool operator==(const Framing&, const Framing&) = default;
};

// How a request's body is delimited (RFC 9112 §6.3, for a server):
//  - Transfer-Encoding present together with Content-Length: HttpError 400
//    (two answers to one question are how requests get smuggled);
//  - Transfer-Encoding whose last coding is "chunked" (any case, a list
//    such as "gzip, chunked" allowed): chunked; any other
//    Transfer-Encoding: HttpError 400;
//  - Content-Length: length. Its value is decimal digits only, at most 18
//    of them; several Content-Length fields or a list ("5, 5") are allowed
//    only if every value is the same. Anything else: HttpError 400;
//  - neither: none.
Framing request_framing(const RequestHead& head);

// How a response's body is delimited (RFC 9112 §6.3, for a client), given
// the method of the request it answers:
//  - a response to HEAD, and every 1xx, 204 and 304 response: none,
//    whatever its fields say;
//  - Transfer-Encoding whose last coding is "chunked": chunked (it
//    overrides a Content-Length); any other Transfer-Encoding: until_close;
//  - Content-Length (same rules as for a request; a bad one throws
//    lab::ProtocolError): length;
//  - neither: until_close (HTTP/1.0's way: the end of the body is the end
//    of the connection).
Framing response_framing(const ResponseHead& head, std::string_view request_method);

// Reads one body framed as `framing` from `reader` and passes it to `sink`
// piece by piece (pieces of any size; never the whole body at once unless
// it fits in one read). Returns the number of body bytes passed. A body of
// more than `max_body` bytes throws HttpError 413, and when the length is
// known beforehand (BodyKind::length) before reading any of it.
//  - length: exactly that many bytes; the stream ending sooner throws
//    lab::ProtocolError. Bytes after the body stay in the reader (the next
//    message on a keep-alive connection).
//  - chunked (RFC 9112 §7.1): chunks of CHUNK-SIZE [";" EXTENSIONS] CRLF,
//    DATA, CRLF; CHUNK-SIZE is 1 to 16 hex digits (either case); extensions
//    are ignored; a chunk of size 0 ends the data. Then trailer field lines
//    up to an empty line, read and ignored (at most 100 lines of at most
//    8 KiB each). A chunk-size line longer than 8 KiB, a size that is not
//    hex, data not followed by CRLF, or too many trailer lines: HttpError
//    400; the stream ending anywhere inside: lab::ProtocolError.
//    Nothing after the final CRLF is read.
//  - until_close: everything until the end of the stream.
//  - none: nothing; returns 0.
std::uint64_t read_body(ByteReader& reader, const Framing& framing, std::uint64_t max_body,
                        const std::function<void(std::string_view)>& sink);

}  // namespace lab::http
