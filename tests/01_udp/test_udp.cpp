// Graded tests of lesson 01 (lessons/01_udp/udp.hpp), and end-to-end tests
// of its server and client. Built twice: against the student's udp.cpp
// (label "grade") and against solutions/01_udp (label "reference").
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <future>
#include <stdexcept>
#include <thread>

#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "udp.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
using lab::SocketAddress;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

SocketAddress ipv4(const char* host, std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, host, &address.sin_addr) == 1);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&address), sizeof address);
}

SocketAddress ipv6(const char* host, std::uint16_t port) {
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(port);
  REQUIRE(::inet_pton(AF_INET6, host, &address.sin6_addr) == 1);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&address), sizeof address);
}

SocketAddress local(const Fd& socket) { return SocketAddress::local_of(socket.get()); }

void send_to(const Fd& socket, const SocketAddress& to, std::string_view payload) {
  REQUIRE(::sendto(socket.get(), payload.data(), payload.size(), 0, to.get(), to.length()) ==
          static_cast<ssize_t>(payload.size()));
}

// One datagram, or nullopt if none arrives within `timeout`.
std::optional<std::pair<std::string, SocketAddress>> receive(const Fd& socket,
                                                             std::chrono::milliseconds timeout) {
  pollfd entry{socket.get(), POLLIN, 0};
  if (::poll(&entry, 1, static_cast<int>(timeout.count())) != 1) {
    return std::nullopt;
  }
  std::string buffer(70000, '\0');
  SocketAddress from;
  from.reset_for_receive();
  const ssize_t got =
      ::recvfrom(socket.get(), buffer.data(), buffer.size(), 0, from.get(), from.length_ptr());
  REQUIRE(got >= 0);
  buffer.resize(static_cast<std::size_t>(got));
  return std::pair{buffer, from};
}

// A test stand-in for the server, on its own thread: `answer` is called for
// each datagram it receives and returns the replies to send (none = drop).
// It handles `expected` datagrams (or gives up after 5 s) and then ends.
class FakeServer {
 public:
  using Answer = std::function<std::vector<std::string>(int index, const std::string& payload)>;

  FakeServer(int expected, Answer answer)
      : socket_(lab::udp_bind(Endpoint{"127.0.0.1", 0})), address_(local(socket_)) {
    thread_ = std::jthread([this, expected, answer = std::move(answer)](std::stop_token stop) {
      const auto give_up = std::chrono::steady_clock::now() + 5s;
      for (int index = 0; index < expected;) {
        // Short waits, so that the test ending early (a failure) ends us too.
        if (stop.stop_requested() || std::chrono::steady_clock::now() > give_up) {
          return;
        }
        auto datagram = receive(socket_, 20ms);
        if (!datagram) {
          continue;
        }
        ++received_;
        for (const auto& reply : answer(index, datagram->first)) {
          ::sendto(socket_.get(), reply.data(), reply.size(), 0, datagram->second.get(),
                   datagram->second.length());
        }
        if (index == 0) {
          first_handled_.set_value();
        }
        ++index;
      }
    });
  }

  [[nodiscard]] const SocketAddress& address() const { return address_; }
  void wait_first_handled() { REQUIRE(first_handled_.get_future().wait_for(5s) == std::future_status::ready); }
  int finish() {
    thread_.join();
    return received_;
  }
  // True if a datagram is still waiting (nobody should have sent it).
  bool has_more() { return receive(socket_, 0ms).has_value(); }

 private:
  Fd socket_;
  SocketAddress address_;
  std::promise<void> first_handled_;
  int received_ = 0;
  std::jthread thread_;
};

Fd client_socket() { return lab::udp_socket(AF_INET); }

}  // namespace

// ---- 01.1 ------------------------------------------------------------------

TEST_CASE("01.1 parse_address reads an IPv4 address and port") {
  const SocketAddress parsed = lab::udp::parse_address("127.0.0.1:9001");
  CHECK(parsed.family() == AF_INET);
  CHECK(parsed.length() == sizeof(sockaddr_in));
  CHECK(parsed == ipv4("127.0.0.1", 9001));
  // The port is stored in network byte order: 9001 = 0x2329, bytes 0x23 0x29.
  const auto* raw = reinterpret_cast<const unsigned char*>(
      &reinterpret_cast<const sockaddr_in*>(parsed.get())->sin_port);
  CHECK(raw[0] == 0x23);
  CHECK(raw[1] == 0x29);
  CHECK(lab::udp::parse_address("10.1.2.3:0") == ipv4("10.1.2.3", 0));
  CHECK(lab::udp::parse_address("255.255.255.255:65535") == ipv4("255.255.255.255", 65535));
}

TEST_CASE("01.1 parse_address reads an IPv6 address in brackets") {
  const SocketAddress parsed = lab::udp::parse_address("[::1]:9001");
  CHECK(parsed.family() == AF_INET6);
  CHECK(parsed.length() == sizeof(sockaddr_in6));
  CHECK(parsed == ipv6("::1", 9001));
  CHECK(lab::udp::parse_address("[2001:db8::42]:443") == ipv6("2001:db8::42", 443));
  CHECK(lab::udp::parse_address("[::ffff:192.0.2.1]:80") == ipv6("::ffff:192.0.2.1", 80));
}

TEST_CASE("01.1 format_address writes IPv4 as HOST:PORT and IPv6 as [HOST]:PORT") {
  CHECK(lab::udp::format_address(ipv4("127.0.0.1", 9001)) == "127.0.0.1:9001");
  CHECK(lab::udp::format_address(ipv4("0.0.0.0", 0)) == "0.0.0.0:0");
  CHECK(lab::udp::format_address(ipv4("192.168.100.200", 65535)) == "192.168.100.200:65535");
  CHECK(lab::udp::format_address(ipv6("::1", 9001)) == "[::1]:9001");
  CHECK(lab::udp::format_address(ipv6("2001:db8:0:0:0:0:0:42", 80)) == "[2001:db8::42]:80");
}

TEST_CASE("01.1 parse_address and format_address round-trip") {
  for (const std::string text : {"127.0.0.1:1", "1.2.3.4:65535", "[::1]:0", "[fe80::1]:5353"}) {
    CAPTURE(text);
    CHECK(lab::udp::format_address(lab::udp::parse_address(text)) == text);
  }
}

TEST_CASE("01.1 parse_address refuses malformed text with a message quoting it") {
  for (const std::string text :
       {"", "127.0.0.1", "127.0.0.1:", ":9001", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:+80", "127.0.0.1:80x", "127.0.0.1:http", "300.1.1.1:80", "1.2.3:80",
        " 127.0.0.1:80", "::1:9001", "[::1:9001", "[::1]9001", "[::1]:", "[127.0.0.1]:80",
        "[::1]:99999"}) {
    CAPTURE(text);
    try {
      (void)lab::udp::parse_address(text);
      FAIL_CHECK("accepted '", text, "'");
    } catch (const std::invalid_argument& error) {
      if (!text.empty()) {
        CHECK_MESSAGE(std::string(error.what()).find(text) != std::string::npos,
                      "the message should quote the text: ", error.what());
      }
    }
  }
}

TEST_CASE("01.1 parse_address refuses host names: only numeric addresses") {
  CHECK_THROWS_AS((void)lab::udp::parse_address("localhost:9001"), std::invalid_argument);
  CHECK_THROWS_AS((void)lab::udp::parse_address("example.com:80"), std::invalid_argument);
  CHECK_THROWS_AS((void)lab::udp::parse_address("[localhost]:80"), std::invalid_argument);
  // ...while the same port with a numeric address is fine.
  CHECK(lab::udp::parse_address("127.0.0.1:9001").family() == AF_INET);
}

TEST_CASE("01.1 format_address refuses a family without IP addresses") {
  sockaddr_storage unix_address{};
  unix_address.ss_family = AF_UNIX;
  const SocketAddress address(reinterpret_cast<const sockaddr*>(&unix_address), sizeof(sa_family_t));
  CHECK_THROWS_AS((void)lab::udp::format_address(address), std::invalid_argument);
  CHECK(lab::udp::format_address(ipv4("127.0.0.1", 7)) == "127.0.0.1:7");
}

// ---- 01.2 ------------------------------------------------------------------

TEST_CASE("01.2 uppercase changes ASCII letters and nothing else") {
  CHECK(lab::udp::uppercase("hello") == "HELLO");
  CHECK(lab::udp::uppercase("Hello, World! 123 az{}`@[") == "HELLO, WORLD! 123 AZ{}`@[");
  CHECK(lab::udp::uppercase("") == "");
  CHECK(lab::udp::uppercase("ALREADY") == "ALREADY");
}

TEST_CASE("01.2 uppercase keeps binary and UTF-8 bytes intact") {
  const std::string binary("a\0b\xff\x80z", 6);
  CHECK(lab::udp::uppercase(binary) == std::string("A\0B\xff\x80Z", 6));
  CHECK(lab::udp::uppercase("caf\xc3\xa9") == "CAF\xc3\xa9");  // "café": é stays as it is
  std::string all;
  for (int byte = 0; byte < 256; ++byte) {
    all += static_cast<char>(byte);
  }
  const std::string upper = lab::udp::uppercase(all);
  REQUIRE(upper.size() == 256);
  for (int byte = 0; byte < 256; ++byte) {
    const char expected = (byte >= 'a' && byte <= 'z') ? static_cast<char>(byte - 32) : static_cast<char>(byte);
    CHECK_MESSAGE(upper[static_cast<std::size_t>(byte)] == expected, "byte ", byte);
  }
}

TEST_CASE("01.2 serve_one replies in upper case to the sender") {
  const Fd server = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const Fd client = client_socket();
  send_to(client, local(server), "hello, udp");
  const lab::udp::Datagram got = lab::udp::serve_one(server);
  CHECK(got.payload == "hello, udp");
  auto reply = receive(client, 2s);
  REQUIRE_MESSAGE(reply, "no reply reached the sender");
  CHECK(reply->first == "HELLO, UDP");
  CHECK(reply->second == local(server));
  // The returned sender is the client's address.
  CHECK(got.sender.port() == local(client).port());
}

TEST_CASE("01.2 serve_one answers an empty datagram with an empty one") {
  const Fd server = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const Fd client = client_socket();
  send_to(client, local(server), "");
  const lab::udp::Datagram got = lab::udp::serve_one(server);
  CHECK(got.payload.empty());
  auto reply = receive(client, 2s);
  REQUIRE_MESSAGE(reply, "an empty datagram must get an (empty) reply");
  CHECK(reply->first.empty());
}

TEST_CASE("01.2 serve_one returns a 65507-byte datagram whole") {
  const Fd server = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const Fd client = client_socket();
  lab::testing::set_buffer_sizes(client, 1 << 18, 1 << 18);
  std::string big(65507, 'x');
  big[0] = 'a';
  big[65506] = 'z';
  send_to(client, local(server), big);
  const lab::udp::Datagram got = lab::udp::serve_one(server);
  CHECK(got.payload.size() == 65507);
  auto reply = receive(client, 2s);
  REQUIRE(reply);
  REQUIRE_MESSAGE(reply->first.size() == 65507, "the reply was cut: use a 65507-byte buffer");
  CHECK(reply->first.front() == 'A');
  CHECK(reply->first.back() == 'Z');
  CHECK(reply->first == lab::udp::uppercase(big));
}

TEST_CASE("01.2 serve_one replies to each of two senders separately") {
  const Fd server = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const Fd first = client_socket();
  const Fd second = client_socket();
  send_to(first, local(server), "one");
  send_to(second, local(server), "two");
  (void)lab::udp::serve_one(server);
  (void)lab::udp::serve_one(server);
  auto reply_one = receive(first, 2s);
  auto reply_two = receive(second, 2s);
  REQUIRE(reply_one);
  REQUIRE(reply_two);
  CHECK(reply_one->first == "ONE");
  CHECK(reply_two->first == "TWO");
  CHECK_FALSE(receive(first, 0ms));  // one datagram in, one out: nothing else
}

TEST_CASE("01.2 serve_one works over IPv6") {
  const Fd server = lab::udp_bind(Endpoint{"::1", 0});
  const Fd client = lab::udp_socket(AF_INET6);
  send_to(client, local(server), "six");
  const lab::udp::Datagram got = lab::udp::serve_one(server);
  CHECK(got.sender.family() == AF_INET6);
  auto reply = receive(client, 2s);
  REQUIRE(reply);
  CHECK(reply->first == "SIX");
}

// ---- 01.3 ------------------------------------------------------------------

TEST_CASE("01.3 request returns the server's reply") {
  FakeServer server(1, [](int, const std::string& payload) {
    return std::vector<std::string>{"reply to " + payload};
  });
  const Fd client = client_socket();
  const auto reply = lab::udp::request(client, server.address(), "ping", {200ms, 3});
  REQUIRE(reply);
  CHECK(*reply == "reply to ping");
  CHECK(server.finish() == 1);
}

TEST_CASE("01.3 request sends again after dropped datagrams") {
  // The server drops the first two datagrams: a third try must get through.
  FakeServer server(3, [](int index, const std::string& payload) {
    return index < 2 ? std::vector<std::string>{} : std::vector<std::string>{payload + "!"};
  });
  const Fd client = client_socket();
  // Each try waits 500 ms: far longer than a loopback reply takes even on a
  // loaded machine, so only a missing resend can make this fail.
  const auto reply = lab::udp::request(client, server.address(), "again", {500ms, 3});
  REQUIRE_MESSAGE(reply, "no reply: does request send again after each timeout?");
  CHECK(*reply == "again!");
  CHECK(server.finish() == 3);
}

TEST_CASE("01.3 request gives up after exactly its number of tries") {
  FakeServer server(4, [](int, const std::string&) { return std::vector<std::string>{}; });
  const Fd client = client_socket();
  const auto reply = lab::udp::request(client, server.address(), "lost", {80ms, 3});
  CHECK_FALSE(reply);
  // Sent three times, not more. (The fake server waits for a 4th for up to 5 s.)
  const Fd poke = client_socket();
  send_to(poke, server.address(), "end");  // lets the fake server finish at once
  CHECK(server.finish() == 4);              // three tries + the poke...
  CHECK_FALSE_MESSAGE(server.has_more(), "more than 3 datagrams were sent");  // ...and nothing else
}

TEST_CASE("01.3 request ignores datagrams from another address") {
  const Fd intruder = client_socket();
  // Bound up front, so the intruder knows where to aim.
  const Fd client = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const SocketAddress client_address = local(client);
  FakeServer server(1, [&](int, const std::string&) {
    // Before the real reply, someone else writes to the client's port.
    send_to(intruder, client_address, "FORGED");
    return std::vector<std::string>{"GENUINE"};
  });
  const auto reply = lab::udp::request(client, server.address(), "who", {1000ms, 1});
  REQUIRE_MESSAGE(reply.has_value(),
                  "request gave up: a datagram from another address (\"FORGED\") came first; "
                  "it must be dropped, and the wait for the server's reply go on");
  CHECK(*reply == "GENUINE");
  CHECK(server.finish() == 1);
}

TEST_CASE("01.3 request does not take a stale duplicate for the next reply") {
  // The first reply arrives twice (UDP may duplicate); the second request
  // must get its own reply, not the leftover copy.
  FakeServer server(2, [](int index, const std::string& payload) {
    const std::string reply = "re:" + payload;
    return index == 0 ? std::vector<std::string>{reply, reply} : std::vector<std::string>{reply};
  });
  const Fd client = client_socket();
  const auto first = lab::udp::request(client, server.address(), "one", {1000ms, 1});
  REQUIRE(first);
  CHECK(*first == "re:one");
  server.wait_first_handled();  // both copies are now in the client's queue
  const auto second = lab::udp::request(client, server.address(), "two", {1000ms, 1});
  REQUIRE(second);
  CHECK(*second == "re:two");
  CHECK(server.finish() == 2);
}

// ---- The pair, end to end --------------------------------------------------

TEST_CASE("01.p pair: the client prints the server's replies, line by line") {
  auto server = lab::testing::ServerProcess::start(kServer);
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--timeout-ms", "1000"},
      "hello\nworld\nexit\nnot sent\n");
  INFO(result.describe());
  INFO(server.stop_and_describe());
  CHECK(result.status.success());
  CHECK(result.out == "HELLO\nWORLD\n");
}

TEST_CASE("01.p pair: the server logs each datagram and stops on SIGTERM with status 0") {
  auto server = lab::testing::ServerProcess::start(kServer);
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--message", "hi there"});
  INFO(result.describe());
  REQUIRE(result.out == "HI THERE\n");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("sent 8 bytes: \"hi there\"") != std::string::npos, log);
}

TEST_CASE("01.p pair: the server answers a client written from the README alone") {
  // A client that knows only the protocol: one datagram out, one back.
  auto server = lab::testing::ServerProcess::start(kServer);
  const Fd client = client_socket();
  lab::testing::set_buffer_sizes(client, 1 << 18, 1 << 18);
  const SocketAddress address = ipv4("127.0.0.1", server.port());
  INFO("server: ", server.child().pid());
  for (const std::string& payload :
       {std::string("hello"), std::string(), std::string("\x00\xff mixed Case", 14),
        std::string(65507, 'q')}) {
    send_to(client, address, payload);
    auto reply = receive(client, 2s);
    REQUIRE_MESSAGE(reply, "no reply to a ", payload.size(), "-byte datagram; ",
                    server.stop_and_describe());
    CHECK(reply->first.size() == payload.size());
    CHECK(reply->first == lab::udp::uppercase(payload));
  }
}

TEST_CASE("01.p pair: hostile datagrams do not stop the server") {
  auto server = lab::testing::ServerProcess::start(kServer);
  const Fd client = client_socket();
  const SocketAddress address = ipv4("127.0.0.1", server.port());
  // A burst from a socket that closes before the replies arrive.
  {
    const Fd vanishing = client_socket();
    for (int i = 0; i < 50; ++i) {
      send_to(vanishing, address, std::string(static_cast<std::size_t>(i * 97), static_cast<char>(i)));
    }
  }
  const auto reply = lab::udp::request(client, address, "still there?", {2000ms, 2});
  INFO(server.stop_and_describe());
  REQUIRE(reply);
  CHECK(*reply == "STILL THERE?");
}

TEST_CASE("01.p pair: a client with no server says so in one line") {
  // A bound port where nothing answers: datagrams go nowhere.
  const Fd silent = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  const auto result = lab::testing::run({kClient, "--port", std::to_string(local(silent).port()),
                                         "--message", "anyone?", "--timeout-ms", "100",
                                         "--tries", "2"});
  INFO(result.describe());
  CHECK(result.status.exited());
  CHECK(result.status.code != 0);
  CHECK(result.out.empty());
  const std::string expected =
      "no reply from 127.0.0.1:" + std::to_string(local(silent).port()) + " after 2 tries";
  CHECK(result.err.find(expected) != std::string::npos);
  CHECK(result.err.find("is the server running?") != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  // It really sent twice.
  CHECK(receive(silent, 0ms));
  CHECK(receive(silent, 0ms));
  CHECK_FALSE(receive(silent, 0ms));
}
