#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <system_error>

#include "lab/endpoint.hpp"

using lab::Endpoint;

TEST_CASE("Endpoint::parse reads IPv4, bracketed IPv6 and host names") {
  CHECK(Endpoint::parse("127.0.0.1:9001") == Endpoint{"127.0.0.1", 9001});
  CHECK(Endpoint::parse("[::1]:9001") == Endpoint{"::1", 9001});
  CHECK(Endpoint::parse("localhost:0") == Endpoint{"localhost", 0});
  CHECK(Endpoint::parse("example.org:65535") == Endpoint{"example.org", 65535});
}

TEST_CASE("Endpoint::to_string brackets IPv6 hosts") {
  CHECK(Endpoint{"127.0.0.1", 9001}.to_string() == "127.0.0.1:9001");
  CHECK(Endpoint{"::1", 9001}.to_string() == "[::1]:9001");
  CHECK(Endpoint{"localhost", 80}.to_string() == "localhost:80");
}

TEST_CASE("Endpoint::parse refuses malformed text, quoting it") {
  for (const std::string text : {"", "localhost", "localhost:", ":80", "host:65536", "host:-1",
                                 "host:+1", "host:8o", "::1:80", "[::1", "[::1]", "[::1]80", "[]:80"}) {
    CAPTURE(text);
    try {
      (void)Endpoint::parse(text);
      FAIL_CHECK("accepted");
    } catch (const std::invalid_argument& error) {
      CHECK(std::string(error.what()).find("'" + text + "'") != std::string::npos);
    }
  }
}

TEST_CASE("resolve finds IPv4 and IPv6 loopback addresses") {
  const auto v4 = lab::resolve(Endpoint{"127.0.0.1", 9001}, SOCK_STREAM);
  REQUIRE(v4.size() == 1);
  CHECK(v4[0].family() == AF_INET);
  CHECK(v4[0].port() == 9001);
  CHECK(v4[0].to_string() == "127.0.0.1:9001");
  const auto v6 = lab::resolve(Endpoint{"::1", 80}, SOCK_DGRAM);
  REQUIRE(v6.size() == 1);
  CHECK(v6[0].family() == AF_INET6);
  CHECK(v6[0].host() == "::1");
  CHECK(v6[0].to_string() == "[::1]:80");
}

TEST_CASE("resolve names the endpoint when a name does not resolve") {
  try {
    (void)lab::resolve(Endpoint{"no-such-host.invalid", 80}, SOCK_STREAM);
    FAIL_CHECK("resolved a .invalid name");
  } catch (const std::system_error& error) {
    CHECK(std::string(error.what()).find("resolve no-such-host.invalid:80") == 0);
  }
}

TEST_CASE("SocketAddress compares family, address and port") {
  const auto a = lab::resolve(Endpoint{"127.0.0.1", 1}, SOCK_DGRAM).front();
  const auto b = lab::resolve(Endpoint{"127.0.0.1", 1}, SOCK_DGRAM).front();
  const auto other_port = lab::resolve(Endpoint{"127.0.0.1", 2}, SOCK_DGRAM).front();
  const auto other_host = lab::resolve(Endpoint{"127.0.0.2", 1}, SOCK_DGRAM).front();
  const auto v6 = lab::resolve(Endpoint{"::1", 1}, SOCK_DGRAM).front();
  CHECK(a == b);
  CHECK_FALSE(a == other_port);
  CHECK_FALSE(a == other_host);
  CHECK_FALSE(a == v6);
  CHECK(lab::SocketAddress{}.to_string() == "(none)");
}
