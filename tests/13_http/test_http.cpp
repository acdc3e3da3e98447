// Graded tests of lesson 13's exercise (lessons/13_http/http.hpp): 13.1 the
// request, 13.2 the heads, 13.3 the bodies. No sockets needed: a ByteReader
// reads from bytes the test hands it, split wherever the test likes (one
// byte per read is the hardest case for a parser). Built twice: against the
// student's http.cpp (label "grade") and solutions/13_http (label "reference").
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http.hpp"
#include "lab/io.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"

using lab::Fd;
using lab::http::BodyKind;
using lab::http::ByteReader;
using lab::http::Framing;
using lab::http::HttpError;
using lab::http::Limits;

namespace {

// A reader of `text`, handing out at most `piece` bytes per read. `served`,
// if given, counts the bytes handed out.
ByteReader reader_of(std::string text, std::size_t piece = 1 << 20, std::size_t* served = nullptr) {
  auto rest = std::make_shared<std::string>(std::move(text));
  return ByteReader([rest, piece, served](std::size_t max_bytes) -> std::optional<std::string> {
    if (rest->empty()) {
      return std::nullopt;
    }
    const std::size_t take = std::min({piece, max_bytes, rest->size()});
    std::string bytes = rest->substr(0, take);
    rest->erase(0, take);
    if (served != nullptr) {
      *served += take;
    }
    return bytes;
  });
}

// The status an HttpError carries, or -1 if something else (or nothing) was thrown.
template <typename F>
int status_thrown(F&& call) {
  try {
    call();
  } catch (const HttpError& error) {
    return error.status();
  } catch (const lab::NotImplemented&) {
    throw;
  } catch (const std::exception&) {
    return -1;
  }
  return 0;
}

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 7 + i / 509) & 0xff);
  }
  return data;
}

std::string body_of(ByteReader& reader, const Framing& framing, std::uint64_t max = 1 << 24) {
  std::string body;
  const std::uint64_t count = lab::http::read_body(reader, framing, max, [&](std::string_view piece) { body += piece; });
  CHECK_MESSAGE(count == body.size(), "read_body returned ", count, " but passed ", body.size(), " bytes");
  return body;
}

std::string rest_of(ByteReader& reader) {
  std::string rest;
  while (!reader.buffered().empty() || reader.fill()) {
    rest += reader.buffered();
    reader.consume(reader.buffered().size());
  }
  return rest;
}

lab::http::RequestHead request_with(std::vector<std::pair<std::string, std::string>> fields) {
  lab::http::RequestHead head;
  head.method = "POST";
  head.target = "/";
  head.fields.list = std::move(fields);
  return head;
}

lab::http::ResponseHead response_with(int status, std::vector<std::pair<std::string, std::string>> fields) {
  lab::http::ResponseHead head;
  head.status = status;
  head.fields.list = std::move(fields);
  return head;
}

}  // namespace

// ---------------------------------------------------------------------------
// 13.1
// ---------------------------------------------------------------------------

TEST_CASE("13.1 parse_url splits host, port and target") {
  using lab::http::parse_url;
  const auto url = parse_url("http://127.0.0.1:8080/files/a.txt?x=1");
  CHECK(url.host == "127.0.0.1");
  CHECK(url.port == 8080);
  CHECK(url.target == "/files/a.txt?x=1");

  const auto plain = parse_url("http://localhost");
  CHECK(plain.host == "localhost");
  CHECK_MESSAGE(plain.port == 80, "no port in the URL means 80");
  CHECK_MESSAGE(plain.target == "/", "no path means \"/\"");

  const auto v6 = parse_url("HTTP://[::1]:9013/index.html#top");
  CHECK_MESSAGE(v6.host == "::1", "an IPv6 host without its brackets, got ", v6.host);
  CHECK(v6.port == 9013);
  CHECK_MESSAGE(v6.target == "/index.html", "the fragment is never sent, got ", v6.target);

  CHECK(parse_url("http://h?q=2").target == "/?q=2");
  CHECK(parse_url("http://h:65535/").port == 65535);
}

TEST_CASE("13.1 parse_url refuses other schemes, credentials, bad ports and control characters") {
  using lab::http::parse_url;
  for (const std::string& bad : std::vector<std::string>{"https://127.0.0.1/", "ftp://h/", "127.0.0.1:80/", "http://", "http:///x", "http://user:pw@h/",
        "http://h:0/", "http://h:65536/", "http://h:80x/", "http://h:/", "http://h:-1/", "http://h/a b",
        "http://h/a\r\nX: y", std::string("http://h/a\0b", 12), "http://h/\xc3\xa9", "http://[::1/"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_url(bad), std::invalid_argument);
  }
}

TEST_CASE("13.1 build_request writes the exact bytes, every line ending in CRLF") {
  lab::http::RequestSpec spec;
  spec.method = "GET";
  spec.target = "/a.txt";
  spec.host = "127.0.0.1";
  spec.port = 80;
  CHECK(lab::http::build_request(spec) == "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");

  spec.method = "HEAD";
  spec.keep_alive = true;
  spec.extra_fields = {{"Accept", "*/*"}, {"User-Agent", "lab13\ttest"}};
  CHECK(lab::http::build_request(spec) ==
        "HEAD /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nAccept: */*\r\n"
        "User-Agent: lab13\ttest\r\n\r\n");
}

TEST_CASE("13.1 build_request names the port in Host unless it is 80, an IPv6 host in brackets") {
  lab::http::RequestSpec spec;
  spec.host = "localhost";
  spec.port = 8080;
  CHECK(lab::http::build_request(spec) == "GET / HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n");
  spec.host = "::1";
  CHECK(lab::http::build_request(spec) == "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n");
  spec.port = 80;
  CHECK(lab::http::build_request(spec) == "GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
}

TEST_CASE("13.1 build_request refuses CR, LF and other input that would change the request") {
  const auto refused = [](const lab::http::RequestSpec& spec) {
    bool threw = false;
    try {
      (void)lab::http::build_request(spec);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    return threw;
  };
  lab::http::RequestSpec good;
  good.host = "h";
  REQUIRE_FALSE(refused(good));
  for (const std::string method : {"", "GE T", "GET\r\n", "G/T", "GET\t"}) {
    auto spec = good;
    spec.method = method;
    CHECK_MESSAGE(refused(spec), "method ", lab::preview(method));
  }
  for (const std::string& target : std::vector<std::string>{"", "a.txt", "/a b", "/a\r\nX-Evil: 1", std::string("/a\0b", 4), "/\x7f", "/\xc3\xa9"}) {
    auto spec = good;
    spec.target = target;
    CHECK_MESSAGE(refused(spec), "target ", lab::preview(target));
  }
  for (const std::string host : {"", "h\r\nX: y", "h h", "h/x", "u@h"}) {
    auto spec = good;
    spec.host = host;
    CHECK_MESSAGE(refused(spec), "host ", lab::preview(host));
  }
  for (const auto& field : std::vector<std::pair<std::string, std::string>>{
           {"X-Ok", "a\r\nX-Evil: 1"}, {"X-Ok", "a\nb"}, {"X-Ok", "a\rb"}, {"X-Ok", std::string("a\0b", 3)},
           {"X Bad", "v"}, {"", "v"}, {"X:Bad", "v"}, {"X-Bad\r\n", "v"}}) {
    auto spec = good;
    spec.extra_fields = {field};
    CHECK_MESSAGE(refused(spec), "field ", lab::preview(field.first), ": ", lab::preview(field.second));
  }
}

// ---------------------------------------------------------------------------
// 13.2
// ---------------------------------------------------------------------------

TEST_CASE("13.2 read_request_head reads a request split at every byte, names in lower case") {
  const std::string text =
      "GET /a%20b.txt?x=1 HTTP/1.1\r\nHost: example\r\nCONTENT-length:  5 \r\nX-Tab:\tv a l\t\r\n\r\nhello"
      "NEXT";
  for (const std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{1000}}) {
    CAPTURE(piece);
    ByteReader reader = reader_of(text, piece);
    const auto head = lab::http::read_request_head(reader);
    REQUIRE(head.has_value());
    CHECK(head->method == "GET");
    CHECK(head->target == "/a%20b.txt?x=1");
    CHECK(head->minor_version == 1);
    using Field = std::pair<std::string, std::string>;
    const std::vector<Field> expected{{"host", "example"}, {"content-length", "5"}, {"x-tab", "v a l"}};
    CHECK_MESSAGE(head->fields.list == expected, "names are stored in lower case, values trimmed of spaces and tabs");
    CHECK_MESSAGE(rest_of(reader) == "helloNEXT", "the head ends at the empty line: the body stays in the reader");
  }
}

TEST_CASE("13.2 read_request_head reads requests one after another and returns nullopt at a clean end") {
  ByteReader reader = reader_of("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.0\nHost: b\n\n", 5);
  const auto first = lab::http::read_request_head(reader);
  REQUIRE(first.has_value());
  CHECK(first->target == "/1");
  const auto second = lab::http::read_request_head(reader);
  REQUIRE_MESSAGE(second.has_value(), "bare LF line ends are accepted (RFC 9112 §2.2)");
  CHECK(second->method == "HEAD");
  CHECK(second->minor_version == 0);
  CHECK(second->fields.get("Host") == "b");
  CHECK_MESSAGE(!lab::http::read_request_head(reader).has_value(), "the end of the stream between requests is nullopt");

  ByteReader cut = reader_of("GET / HTTP/1.1\r\nHost: a\r\n");
  CHECK_THROWS_AS(lab::http::read_request_head(cut), lab::ProtocolError);
}

TEST_CASE("13.2 read_request_head: a malformed request line is 400, another HTTP major version 505") {
  const auto status_of = [](const std::string& line) {
    return status_thrown([&] {
      ByteReader reader = reader_of(line + "\r\nHost: a\r\n\r\n");
      (void)lab::http::read_request_head(reader);
    });
  };
  for (const std::string line : {"GET /", "GET  / HTTP/1.1", "GET / HTTP/1.1 extra", "GET / HTTP/1.1 ", "GET /\tx HTTP/1.1",
                                 "G(T / HTTP/1.1", " GET / HTTP/1.1", "GET / HTTP/11", "GET / http/1.1", "GET / HTTP/1.x",
                                 "GET / HTTP/1.10", "GET / HTTP/1.1\r", "garbage"}) {
    CAPTURE(line);
    CHECK(status_of(line) == 400);
  }
  CHECK(status_of("GET / HTTP/2.0") == 505);
  CHECK(status_of("GET / HTTP/0.9") == 505);
  CHECK(status_of("GET / HTTP/1.0") == 0);
}

TEST_CASE("13.2 field lines: obs-fold, space before the colon, no colon, control characters are 400") {
  const auto status_of = [](const std::string& fields) {
    return status_thrown([&] {
      ByteReader reader = reader_of("GET / HTTP/1.1\r\n" + fields + "\r\n");
      (void)lab::http::read_request_head(reader);
    });
  };
  CHECK(status_of("Host: a\r\nX-Long: one\r\n two\r\n") == 400);
  CHECK(status_of("Host: a\r\nX-Long: one\r\n\ttwo\r\n") == 400);
  CHECK(status_of("Host : a\r\n") == 400);
  CHECK(status_of("Host\t: a\r\n") == 400);
  CHECK(status_of("Host a\r\n") == 400);
  CHECK(status_of(": a\r\n") == 400);
  CHECK(status_of("Ho(st: a\r\n") == 400);
  CHECK(status_of("X: a\rb\r\n") == 400);
  CHECK(status_of(std::string("X: a\0b\r\n", 8)) == 400);
  CHECK(status_of("X: a\x01\r\n") == 400);
  CHECK(status_of("X: caf\xc3\xa9, \"q\"\r\nEmpty:\r\n") == 0);
}

TEST_CASE("13.2 limits: a long request line is 414, a long field line, too many fields or bytes are 431") {
  Limits limits;
  limits.max_line = 100;
  limits.max_fields = 5;
  limits.max_header_bytes = 200;
  const auto status_of = [&](const std::string& text) {
    return status_thrown([&] {
      ByteReader reader = reader_of(text, 7);
      (void)lab::http::read_request_head(reader, limits);
    });
  };
  CHECK(status_of("GET /" + std::string(95, 'a') + " HTTP/1.1\r\n\r\n") == 414);
  CHECK(status_of("GET /" + std::string(80, 'a') + " HTTP/1.1\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.1\r\nX: " + std::string(98, 'v') + "\r\n\r\n") == 431);
  CHECK(status_of("GET / HTTP/1.1\r\nX: " + std::string(97, 'v') + "\r\n\r\n") == 0);
  std::string five;
  for (int i = 0; i < 5; ++i) {
    five += "F" + std::to_string(i) + ": v\r\n";
  }
  CHECK(status_of("GET / HTTP/1.1\r\n" + five + "\r\n") == 0);
  CHECK_MESSAGE(status_of("GET / HTTP/1.1\r\n" + five + "F5: v\r\n\r\n") == 431, "a sixth field line with max_fields 5");
  // 3 lines of 68 bytes + CRLF = 210 > 200, each line well under max_line.
  const std::string line = "X: " + std::string(65, 'v') + "\r\n";
  CHECK(status_of("GET / HTTP/1.1\r\n" + line + line + "\r\n") == 0);
  CHECK_MESSAGE(status_of("GET / HTTP/1.1\r\n" + line + line + line + "\r\n") == 431, "fields totalling 210 bytes");

  // A header that never ends is refused after the limits, not held in memory.
  std::size_t served = 0;
  ByteReader endless = reader_of("GET / HTTP/1.1\r\n" + std::string(1 << 20, 'x'), 4096, &served);
  CHECK(status_thrown([&] { (void)lab::http::read_request_head(endless, limits); }) == 431);
  CHECK_MESSAGE(served < 64 * 1024, "read ", served, " bytes of a header that broke its limit after 100");
}

TEST_CASE("13.2 read_response_head reads the status line, reason and fields") {
  ByteReader reader = reader_of("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope", 2);
  const auto head = lab::http::read_response_head(reader);
  CHECK(head.minor_version == 1);
  CHECK(head.status == 404);
  CHECK(head.reason == "Not Found");
  CHECK(head.fields.list.size() == 2);
  CHECK(head.fields.list.at(0).first == "content-type");
  CHECK(rest_of(reader) == "nope");

  ByteReader bare = reader_of("HTTP/1.0 200 \r\n\r\n");
  const auto empty_reason = lab::http::read_response_head(bare);
  CHECK(empty_reason.status == 200);
  CHECK(empty_reason.minor_version == 0);
  CHECK(empty_reason.reason.empty());
  ByteReader interim = reader_of("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
  CHECK(lab::http::read_response_head(interim).status == 100);
  CHECK(lab::http::read_response_head(interim).status == 204);
}

TEST_CASE("13.2 read_response_head refuses a bad status line, HTTP/2, obs-fold and an early end") {
  for (const std::string text :
       {"", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nX: a", "HTTP/2 200 OK\r\n\r\n", "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 Odd\r\n\r\n", "HTTP/1.1 600 Odd\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n"}) {
    CAPTURE(text);
    ByteReader reader = reader_of(text);
    CHECK_THROWS_AS(lab::http::read_response_head(reader), lab::ProtocolError);
  }
}

TEST_CASE("13.2 read_request_head over a socket, the request trickling in") {
  auto sockets = lab::testing::socket_pair();
  Fd& ours = sockets.first;
  Fd& theirs = sockets.second;
  const std::string text = "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  std::thread writer([&theirs, &text] {
    for (const char c : text) {
      lab::write_all(theirs, std::string_view(&c, 1));
    }
    theirs.reset();
  });
  ByteReader reader = ByteReader::of_socket(ours);
  std::optional<lab::http::RequestHead> head;
  try {
    head = lab::http::read_request_head(reader);
  } catch (...) {
    writer.join();
    throw;
  }
  writer.join();
  REQUIRE(head.has_value());
  CHECK(head->fields.get("accept") == "*/*");
  CHECK_FALSE(lab::http::read_request_head(reader).has_value());
}

// ---------------------------------------------------------------------------
// 13.3
// ---------------------------------------------------------------------------

TEST_CASE("13.3 request_framing: none, Content-Length, chunked, and 400 for both or a bad length") {
  using lab::http::request_framing;
  CHECK(request_framing(request_with({{"host", "a"}})) == Framing{BodyKind::none, 0});
  CHECK(request_framing(request_with({{"content-length", "42"}})) == Framing{BodyKind::length, 42});
  CHECK(request_framing(request_with({{"Content-Length", "0"}})) == Framing{BodyKind::length, 0});
  CHECK(request_framing(request_with({{"content-length", "7"}, {"content-length", "7"}})) == Framing{BodyKind::length, 7});
  CHECK(request_framing(request_with({{"content-length", "7, 7"}})) == Framing{BodyKind::length, 7});
  CHECK(request_framing(request_with({{"transfer-encoding", "chunked"}})) == Framing{BodyKind::chunked, 0});
  CHECK(request_framing(request_with({{"transfer-encoding", "gzip, CHUNKED"}})) == Framing{BodyKind::chunked, 0});
  for (const auto& fields : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"transfer-encoding", "chunked"}, {"content-length", "5"}},
           {{"transfer-encoding", "gzip"}},
           {{"transfer-encoding", "chunked, gzip"}},
           {{"content-length", "5"}, {"content-length", "6"}},
           {{"content-length", "5, 6"}},
           {{"content-length", "-1"}},
           {{"content-length", "+5"}},
           {{"content-length", "5x"}},
           {{"content-length", ""}},
           {{"content-length", "0x10"}},
           {{"content-length", "99999999999999999999999"}}}) {
    CAPTURE(fields.front().second);
    CHECK(status_thrown([&] { (void)request_framing(request_with(fields)); }) == 400);
  }
}

TEST_CASE("13.3 response_framing: HEAD, 1xx, 204, 304 have no body, chunked wins, no length reads to the close") {
  using lab::http::response_framing;
  const std::vector<std::pair<std::string, std::string>> sized{{"content-length", "10"}};
  CHECK(response_framing(response_with(200, sized), "GET") == Framing{BodyKind::length, 10});
  CHECK(response_framing(response_with(200, sized), "HEAD") == Framing{BodyKind::none, 0});
  CHECK(response_framing(response_with(204, sized), "GET") == Framing{BodyKind::none, 0});
  CHECK(response_framing(response_with(304, sized), "GET") == Framing{BodyKind::none, 0});
  CHECK(response_framing(response_with(101, {}), "GET") == Framing{BodyKind::none, 0});
  CHECK(response_framing(response_with(404, sized), "GET") == Framing{BodyKind::length, 10});
  CHECK(response_framing(response_with(200, {{"transfer-encoding", "chunked"}, {"content-length", "10"}}), "GET") ==
        Framing{BodyKind::chunked, 0});
  CHECK(response_framing(response_with(200, {{"Transfer-Encoding", "Chunked"}}), "GET") == Framing{BodyKind::chunked, 0});
  CHECK(response_framing(response_with(200, {{"transfer-encoding", "gzip"}}), "GET") == Framing{BodyKind::until_close, 0});
  CHECK(response_framing(response_with(200, {}), "GET") == Framing{BodyKind::until_close, 0});
  CHECK_THROWS_AS(response_framing(response_with(200, {{"content-length", "1, 2"}}), "GET"), lab::ProtocolError);
  CHECK_THROWS_AS(response_framing(response_with(200, {{"content-length", "ten"}}), "GET"), lab::ProtocolError);
}

TEST_CASE("13.3 read_body by Content-Length leaves the next message in the reader, a short body throws") {
  const std::string body = pattern(100'000);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{1000}, std::size_t{1 << 20}}) {
    CAPTURE(piece);
    ByteReader reader = reader_of(body + "GET /next", piece == 1 ? 1 : piece);
    if (piece == 1) {
      ByteReader small = reader_of(body.substr(0, 3000) + "GET /next", 1);
      CHECK(body_of(small, {BodyKind::length, 3000}) == body.substr(0, 3000));
      CHECK(rest_of(small) == "GET /next");
      continue;
    }
    CHECK(body_of(reader, {BodyKind::length, body.size()}) == body);
    CHECK(rest_of(reader) == "GET /next");
  }
  ByteReader nothing = reader_of("after");
  CHECK(body_of(nothing, {BodyKind::length, 0}).empty());
  CHECK(body_of(nothing, {BodyKind::none, 0}).empty());
  CHECK(rest_of(nothing) == "after");
  ByteReader short_body = reader_of("only 7!");
  CHECK_THROWS_AS(body_of(short_body, {BodyKind::length, 10}), lab::ProtocolError);
}

TEST_CASE("13.3 read_body refuses a body over the limit, a known length before reading any of it") {
  std::size_t served = 0;
  ByteReader reader = reader_of(pattern(50'000), 1000, &served);
  std::size_t passed = 0;
  CHECK(status_thrown([&] {
          (void)lab::http::read_body(reader, {BodyKind::length, 50'000}, 10'000,
                                     [&](std::string_view piece) { passed += piece.size(); });
        }) == 413);
  CHECK_MESSAGE(served == 0, "read ", served, " bytes of a body whose length was already too large");
  CHECK(passed == 0);

  ByteReader to_close = reader_of(pattern(50'000), 1000);
  CHECK(status_thrown([&] { (void)body_of(to_close, {BodyKind::until_close, 0}, 10'000); }) == 413);
  ByteReader chunked = reader_of("2710\r\n" + pattern(10'000) + "\r\n1\r\nx\r\n0\r\n\r\n");
  CHECK(status_thrown([&] { (void)body_of(chunked, {BodyKind::chunked, 0}, 10'000); }) == 413);
  ByteReader exact = reader_of("2710\r\n" + pattern(10'000) + "\r\n0\r\n\r\n");
  CHECK(body_of(exact, {BodyKind::chunked, 0}, 10'000).size() == 10'000);
}

TEST_CASE("13.3 read_body decodes chunks: hex sizes, extensions ignored, trailers read, the rest left") {
  const std::string data = pattern(70'000);
  const std::string wire = "1a\r\n" + data.substr(0, 26) + "\r\n" +              // lower-case hex
                           "FFFF;name=value;q=\"x\"\r\n" + data.substr(26, 65535) + "\r\n" +  // extensions
                           "00001157\r\n" + data.substr(26 + 65535) + "\r\n" +  // leading zeros
                           "0;last\r\nX-Checksum: abc\r\nX-More: d\r\n\r\n" + "HTTP/1.1 200 OK";
  for (const std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{4096}}) {
    CAPTURE(piece);
    ByteReader reader = reader_of(wire, piece);
    CHECK(body_of(reader, {BodyKind::chunked, 0}) == data);
    CHECK_MESSAGE(rest_of(reader) == "HTTP/1.1 200 OK", "the trailers and the final CRLF are read, nothing after");
  }
  ByteReader empty = reader_of("0\r\n\r\n");
  CHECK(body_of(empty, {BodyKind::chunked, 0}).empty());
}

TEST_CASE("13.3 read_body refuses bad chunk sizes, data without CRLF, endless trailers, an early end") {
  const auto status_of = [](const std::string& wire) {
    return status_thrown([&] {
      ByteReader reader = reader_of(wire, 5);
      (void)body_of(reader, {BodyKind::chunked, 0});
    });
  };
  CHECK(status_of("zz\r\nab\r\n0\r\n\r\n") == 400);
  CHECK(status_of("\r\nab\r\n0\r\n\r\n") == 400);
  CHECK(status_of("-2\r\nab\r\n0\r\n\r\n") == 400);
  CHECK(status_of("0x2\r\nab\r\n0\r\n\r\n") == 400);
  CHECK(status_of("2\r\nabc\r\n0\r\n\r\n") == 400);
  CHECK(status_of("2\r\nab0\r\n\r\n") == 400);
  CHECK(status_of("fffffffffffffffff\r\n") == 400);
  CHECK(status_of(std::string(20'000, '1') + "\r\n") == 400);
  CHECK(status_of("1;" + std::string(20'000, 'e') + "\r\nx\r\n0\r\n\r\n") == 400);
  std::string trailers = "0\r\n";
  for (int i = 0; i < 1000; ++i) {
    trailers += "X-T: v\r\n";
  }
  CHECK_MESSAGE(status_of(trailers + "\r\n") == 400, "a thousand trailer lines");
  CHECK(status_of("5\r\nab") == -1);
  CHECK(status_of("2\r\nab\r\n") == -1);
  CHECK(status_of("0\r\nX: y\r\n") == -1);
}

TEST_CASE("13.3 read_body until the close reads everything, the limit allowing") {
  const std::string data = pattern(200'000);
  ByteReader reader = reader_of(data, 777);
  CHECK(body_of(reader, {BodyKind::until_close, 0}, 200'000) == data);
  ByteReader none = reader_of("");
  CHECK(body_of(none, {BodyKind::until_close, 0}).empty());
  auto sockets = lab::testing::socket_pair();
  Fd& ours = sockets.first;
  Fd& theirs = sockets.second;
  std::thread writer([&theirs, &data] {
    lab::write_all(theirs, data);
    theirs.reset();
  });
  ByteReader socket_reader = ByteReader::of_socket(ours);
  std::string got;
  try {
    got = body_of(socket_reader, {BodyKind::until_close, 0});
  } catch (...) {
    writer.join();
    throw;
  }
  writer.join();
  CHECK(got == data);
}
