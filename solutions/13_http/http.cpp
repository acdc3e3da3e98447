// Reference implementation of lessons/13_http/http.hpp.
#include "http.hpp"

#include <charconv>
#include <stdexcept>

namespace lab::http {

namespace {

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  for (const char c : text) {
    if (!is_token_char(c)) {
      return false;
    }
  }
  return true;
}

bool is_control(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}

bool is_plain_visible(std::string_view text) {  // no space, no control, ASCII only
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      return false;
    }
  }
  return true;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = Fields::ascii_lower(c);
  }
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return lower(a) == lower(b);
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// "HTTP/1.1" -> minor version 1; a well-formed version with another major
// digit throws 505; anything else throws 400.
int parse_version(std::string_view text) {
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || text[6] != '.' || text[5] < '0' ||
      text[5] > '9' || text[7] < '0' || text[7] > '9') {
    throw HttpError(400, "malformed HTTP version");
  }
  if (text[5] != '1') {
    throw HttpError(505, "HTTP version " + std::string(text.substr(5)) + " is not supported");
  }
  return text[7] - '0';
}

// Field lines up to the empty line that ends the head.
Fields read_fields(ByteReader& reader, const Limits& limits) {
  Fields fields;
  std::size_t total = 0;
  for (;;) {
    std::optional<std::string> line;
    try {
      line = reader.read_line(limits.max_line);
    } catch (const LineTooLong&) {
      throw HttpError(431, "a header field line is longer than " + std::to_string(limits.max_line) + " bytes");
    }
    if (!line) {
      throw ProtocolError("the stream ended inside the header");
    }
    if (line->empty()) {
      return fields;
    }
    total += line->size() + 2;
    if (total > limits.max_header_bytes) {
      throw HttpError(431, "the header fields are longer than " + std::to_string(limits.max_header_bytes) + " bytes");
    }
    if (fields.list.size() >= limits.max_fields) {
      throw HttpError(431, "more than " + std::to_string(limits.max_fields) + " header fields");
    }
    if (line->front() == ' ' || line->front() == '\t') {
      throw HttpError(400, "obsolete line folding (a field line starting with whitespace)");
    }
    const std::size_t colon = line->find(':');
    if (colon == std::string::npos) {
      throw HttpError(400, "a header field line without ':'");
    }
    const std::string_view name = std::string_view(*line).substr(0, colon);
    if (!is_token(name)) {
      // Includes "Host : x": whitespace before the colon (RFC 9112 §5.1).
      throw HttpError(400, "a header field name that is not a token");
    }
    const std::string_view value = trim_ows(std::string_view(*line).substr(colon + 1));
    for (const char c : value) {
      if (is_control(c) && c != '\t') {
        throw HttpError(400, "a control character in a header field value");
      }
    }
    fields.list.emplace_back(lower(name), std::string(value));
  }
}

// Content-Length: one decimal number, repeated identically at most.
std::uint64_t content_length(const std::vector<std::string>& values) {
  std::optional<std::uint64_t> length;
  for (const std::string& value : values) {
    std::string_view rest = value;
    for (;;) {
      const std::size_t comma = rest.find(',');
      const std::string_view item = trim_ows(rest.substr(0, comma));
      if (item.empty() || item.size() > 18) {
        throw HttpError(400, "a Content-Length that is not a number");
      }
      std::uint64_t number = 0;
      const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), number);
      if (error != std::errc{} || end != item.data() + item.size()) {
        throw HttpError(400, "a Content-Length that is not a number");
      }
      if (length && *length != number) {
        throw HttpError(400, "Content-Length fields that disagree");
      }
      length = number;
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return *length;
}

bool last_coding_is_chunked(const std::string& transfer_encoding) {
  const std::size_t comma = transfer_encoding.rfind(',');
  const std::string_view last =
      trim_ows(std::string_view(transfer_encoding).substr(comma == std::string::npos ? 0 : comma + 1));
  return equals_ignoring_case(last, "chunked");
}

void check_url_bytes(std::string_view url) {
  for (const char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      throw std::invalid_argument("the URL holds a space, a control character or a non-ASCII byte");
    }
  }
}

}  // namespace

Url parse_url(std::string_view url) {
  check_url_bytes(url);
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || !equals_ignoring_case(url.substr(0, scheme_end), "http")) {
    throw std::invalid_argument("only http:// URLs are supported");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);  // the fragment is for the browser, never sent
  }
  const std::size_t authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  Url result;
  if (authority_end != std::string_view::npos) {
    result.target = std::string(rest.substr(authority_end));
    if (result.target.front() == '?') {
      result.target.insert(0, "/");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    throw std::invalid_argument("credentials in a URL are not supported");
  }
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      throw std::invalid_argument("an IPv6 address without its closing ']'");
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        throw std::invalid_argument("unexpected text after the IPv6 address");
      }
      has_port = true;
      port = after.substr(1);
    }
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    has_port = true;
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    throw std::invalid_argument("the URL has no host");
  }
  result.host = std::string(host);
  if (has_port) {
    unsigned number = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (port.empty() || port.size() > 5 || error != std::errc{} || end != port.data() + port.size() ||
        number < 1 || number > 65535) {
      throw std::invalid_argument("the port must be a number from 1 to 65535");
    }
    result.port = static_cast<std::uint16_t>(number);
  }
  return result;
}

std::string build_request(const RequestSpec& request) {
  if (!is_token(request.method)) {
    throw std::invalid_argument("the method must be a token");
  }
  if (request.target.empty() || request.target.front() != '/' || !is_plain_visible(request.target)) {
    throw std::invalid_argument("the target must start with '/' and hold no space or control character");
  }
  if (request.host.empty() || !is_plain_visible(request.host) ||
      request.host.find_first_of("/@") != std::string::npos) {
    throw std::invalid_argument("the host must be a plain name or address");
  }
  std::string text = request.method + " " + request.target + " HTTP/1.1\r\n";
  const bool ipv6 = request.host.find(':') != std::string::npos;
  text += "Host: " + (ipv6 ? "[" + request.host + "]" : request.host);
  if (request.port != 80) {
    text += ":" + std::to_string(request.port);
  }
  text += "\r\n";
  text += request.keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [name, value] : request.extra_fields) {
    if (!is_token(name)) {
      throw std::invalid_argument("a header field name must be a token");
    }
    for (const char c : value) {
      if (is_control(c) && c != '\t') {
        throw std::invalid_argument("a header field value may not hold CR, LF or another control character");
      }
    }
    text += name + ": " + value + "\r\n";
  }
  text += "\r\n";
  return text;
}

std::optional<RequestHead> read_request_head(ByteReader& reader, const Limits& limits) {
  std::optional<std::string> line;
  try {
    line = reader.read_line(limits.max_line);
  } catch (const LineTooLong&) {
    throw HttpError(414, "the request line is longer than " + std::to_string(limits.max_line) + " bytes");
  }
  if (!line) {
    return std::nullopt;
  }
  const std::size_t first = line->find(' ');
  const std::size_t second = first == std::string::npos ? first : line->find(' ', first + 1);
  if (second == std::string::npos || line->find(' ', second + 1) != std::string::npos) {
    throw HttpError(400, "a request line must be METHOD SP TARGET SP VERSION");
  }
  RequestHead head;
  head.method = line->substr(0, first);
  head.target = line->substr(first + 1, second - first - 1);
  if (!is_token(head.method)) {
    throw HttpError(400, "the method is not a token");
  }
  if (head.target.empty()) {
    throw HttpError(400, "an empty request target");
  }
  for (const char c : head.target) {
    if (is_control(c)) {
      throw HttpError(400, "a control character in the request target");
    }
  }
  head.minor_version = parse_version(std::string_view(*line).substr(second + 1));
  head.fields = read_fields(reader, limits);
  return head;
}

ResponseHead read_response_head(ByteReader& reader, const Limits& limits) {
  const std::optional<std::string> line = reader.read_line(limits.max_line);
  if (!line) {
    throw ProtocolError("the connection closed before a response");
  }
  const std::string_view text = *line;
  ResponseHead head;
  head.minor_version = parse_version(text.substr(0, 8));
  if (text.size() < 12 || text[8] != ' ' || (text.size() > 12 && text[12] != ' ')) {
    throw ProtocolError("a malformed status line");
  }
  const std::string_view code = text.substr(9, 3);
  for (const char c : code) {
    if (c < '0' || c > '9') {
      throw ProtocolError("a status code that is not three digits");
    }
  }
  head.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  if (head.status < 100 || head.status > 599) {
    throw ProtocolError("a status code outside 100-599");
  }
  if (text.size() > 13) {
    head.reason = std::string(text.substr(13));
  }
  for (const char c : head.reason) {
    if (is_control(c) && c != '\t') {
      throw ProtocolError("a control character in the reason phrase");
    }
  }
  head.fields = read_fields(reader, limits);
  return head;
}

Framing request_framing(const RequestHead& head) {
  const std::optional<std::string> coding = head.fields.get("transfer-encoding");
  const std::vector<std::string> lengths = head.fields.all("content-length");
  if (coding && !lengths.empty()) {
    throw HttpError(400, "both Transfer-Encoding and Content-Length");
  }
  if (coding) {
    if (!last_coding_is_chunked(*coding)) {
      throw HttpError(400, "a request body whose last transfer coding is not chunked");
    }
    return {BodyKind::chunked, 0};
  }
  if (!lengths.empty()) {
    return {BodyKind::length, content_length(lengths)};
  }
  return {BodyKind::none, 0};
}

Framing response_framing(const ResponseHead& head, std::string_view request_method) {
  if (request_method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304) {
    return {BodyKind::none, 0};
  }
  if (const std::optional<std::string> coding = head.fields.get("transfer-encoding")) {
    return {last_coding_is_chunked(*coding) ? BodyKind::chunked : BodyKind::until_close, 0};
  }
  const std::vector<std::string> lengths = head.fields.all("content-length");
  if (!lengths.empty()) {
    return {BodyKind::length, content_length(lengths)};
  }
  return {BodyKind::until_close, 0};
}

namespace {

constexpr std::size_t kMaxChunkLine = 8 * 1024;
constexpr std::size_t kMaxTrailerLines = 100;

void too_large(std::uint64_t max_body) {
  throw HttpError(413, "the body is larger than " + std::to_string(max_body) + " bytes");
}

// Passes the next `count` bytes of the stream to `sink`.
void pass_exactly(ByteReader& reader, std::uint64_t count, const std::function<void(std::string_view)>& sink) {
  std::uint64_t left = count;
  while (left > 0) {
    if (reader.buffered().empty() && !reader.fill()) {
      throw ProtocolError("the connection closed " + std::to_string(left) + " bytes before the end of the body");
    }
    const std::string_view piece = reader.buffered().substr(0, static_cast<std::size_t>(
                                                                    std::min<std::uint64_t>(left, reader.buffered().size())));
    sink(piece);
    left -= piece.size();
    reader.consume(piece.size());
  }
}

std::string chunk_line(ByteReader& reader) {
  std::optional<std::string> line;
  try {
    line = reader.read_line(kMaxChunkLine);
  } catch (const LineTooLong&) {
    throw HttpError(400, "a chunk-size line is too long");
  }
  if (!line) {
    throw ProtocolError("the connection closed inside a chunked body");
  }
  return *line;
}

std::uint64_t chunk_size(const std::string& line) {
  std::string_view digits = line;
  if (const std::size_t semicolon = digits.find(';'); semicolon != std::string_view::npos) {
    digits = digits.substr(0, semicolon);  // chunk extensions: ignored
  }
  digits = trim_ows(digits);
  std::uint64_t size = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
  if (digits.empty() || digits.size() > 16 || error != std::errc{} || end != digits.data() + digits.size()) {
    throw HttpError(400, "a chunk size that is not hexadecimal");
  }
  return size;
}

}  // namespace

std::uint64_t read_body(ByteReader& reader, const Framing& framing, std::uint64_t max_body,
                        const std::function<void(std::string_view)>& sink) {
  switch (framing.kind) {
    case BodyKind::none:
      return 0;
    case BodyKind::length:
      if (framing.length > max_body) {
        too_large(max_body);  // before reading a byte of it
      }
      pass_exactly(reader, framing.length, sink);
      return framing.length;
    case BodyKind::until_close: {
      std::uint64_t total = 0;
      while (!reader.buffered().empty() || reader.fill()) {
        const std::string_view piece = reader.buffered();
        total += piece.size();
        if (total > max_body) {
          too_large(max_body);
        }
        sink(piece);
        reader.consume(piece.size());
      }
      return total;
    }
    case BodyKind::chunked: {
      std::uint64_t total = 0;
      for (;;) {
        const std::uint64_t size = chunk_size(chunk_line(reader));
        if (size == 0) {
          break;
        }
        if (size > max_body - total) {
          too_large(max_body);
        }
        pass_exactly(reader, size, sink);
        total += size;
        if (!chunk_line(reader).empty()) {
          throw HttpError(400, "chunk data not followed by CRLF");
        }
      }
      // The trailer section: field lines up to an empty line, ignored.
      for (std::size_t lines = 0;; ++lines) {
        if (lines > kMaxTrailerLines) {
          throw HttpError(400, "too many trailer fields");
        }
        if (chunk_line(reader).empty()) {
          return total;
        }
      }
    }
  }
  return 0;
}

}  // namespace lab::http
