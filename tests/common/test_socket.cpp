#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <system_error>
#include <thread>

#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;

TEST_CASE("tcp_listen on port 0 gets a real port, and tcp_connect reaches it (IPv4)") {
  const lab::Fd listener = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  const auto bound = lab::SocketAddress::local_of(listener.get());
  CHECK(bound.port() != 0);
  const lab::Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", bound.port()});
  lab::StopSignal stop;
  auto accepted = lab::accept_client(listener, stop);
  REQUIRE(accepted);
  CHECK(accepted->peer == lab::SocketAddress::local_of(client.get()));
  lab::write_all(client, "ping");
  CHECK(lab::read_exact(accepted->socket, 4) == "ping");
}

TEST_CASE("tcp_listen and tcp_connect work over IPv6 loopback") {
  const lab::Fd listener = lab::tcp_listen(Endpoint{"::1", 0});
  const auto bound = lab::SocketAddress::local_of(listener.get());
  CHECK(bound.family() == AF_INET6);
  const lab::Fd client = lab::tcp_connect(Endpoint{"::1", bound.port()});
  lab::StopSignal stop;
  auto accepted = lab::accept_client(listener, stop);
  REQUIRE(accepted);
  CHECK(accepted->peer.family() == AF_INET6);
  CHECK(accepted->peer.to_string().rfind("[::1]:", 0) == 0);
}

TEST_CASE("tcp_connect to a closed port names the call and the address") {
  // Bound but never listening, for the whole test: a connect there is refused.
  const lab::testing::RefusingPort refusing;
  const std::uint16_t port = refusing.port;
  try {
    (void)lab::tcp_connect(Endpoint{"127.0.0.1", port});
    FAIL_CHECK("connected to a closed port");
  } catch (const std::system_error& error) {
    CHECK(error.code() == std::errc::connection_refused);
    CHECK(std::string(error.what()) ==
          "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  }
}

TEST_CASE("tcp_listen on a port in use names the call and the address") {
  const lab::Fd first = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  const auto port = lab::SocketAddress::local_of(first.get()).port();
  try {
    (void)lab::tcp_listen(Endpoint{"127.0.0.1", port});
    FAIL_CHECK("bound a port twice");
  } catch (const std::system_error& error) {
    CHECK(error.code() == std::errc::address_in_use);
    CHECK(std::string(error.what()).rfind("bind 127.0.0.1:" + std::to_string(port), 0) == 0);
  }
}

TEST_CASE("udp_bind binds IPv4 and IPv6 loopback and datagrams flow") {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    const lab::Fd server = lab::udp_bind(Endpoint{host, 0});
    const auto address = lab::SocketAddress::local_of(server.get());
    const lab::Fd client = lab::udp_socket(address.family());
    REQUIRE(::sendto(client.get(), "dgram", 5, 0, address.get(), address.length()) == 5);
    char buffer[16];
    CHECK(::recv(server.get(), buffer, sizeof buffer, 0) == 5);
  }
}

TEST_CASE("accept_client returns nullopt once stop is requested, even while waiting") {
  const lab::Fd listener = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  lab::StopSignal stop;
  std::jthread stopper([&stop] {
    std::this_thread::sleep_for(50ms);  // let accept_client start waiting; correctness does not depend on it
    stop.request();
  });
  CHECK_FALSE(lab::accept_client(listener, stop).has_value());
  CHECK(stop.requested());
}

TEST_CASE("StopSignal stays requested and wakes every waiter") {
  lab::StopSignal stop;
  CHECK_FALSE(stop.requested());
  stop.request();
  stop.request();
  CHECK(stop.requested());
  const auto [a, b] = lab::testing::socket_pair();
  CHECK_THROWS_AS(lab::wait_readable(a.get(), stop), lab::StopRequested);
  CHECK_THROWS_AS(lab::wait_readable(a.get(), stop, 10ms), lab::StopRequested);
}

TEST_CASE("wait_readable times out, and sees data and hang-ups") {
  lab::StopSignal stop;
  auto [a, b] = lab::testing::socket_pair();
  CHECK_FALSE(lab::wait_readable(a.get(), stop, 20ms));
  lab::write_all(b, "x");
  CHECK(lab::wait_readable(a.get(), stop, 1000ms));
  CHECK(lab::read_some(a, 10) == "x");
  b.reset();
  CHECK(lab::wait_readable(a.get(), stop, 1000ms));
  CHECK_FALSE(lab::read_some(a, 10).has_value());
}
