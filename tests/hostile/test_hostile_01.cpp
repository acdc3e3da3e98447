// Hostile clients against lesson 01's UDP echo-upper server: garbage, empty
// and largest datagrams, and a flood; a normal request is answered after
// each, and SIGTERM stops it.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

#include "hostile.hpp"
#include "lab/endpoint.hpp"

using namespace hostile;

namespace {

// A client's UDP socket and the server's address.
struct UdpClient {
  explicit UdpClient(const ServerProcess& server)
      : socket(lab::udp_socket(AF_INET)), server_address(lab::resolve(lab::Endpoint{server.host(), server.port()}, SOCK_DGRAM).at(0)) {}

  void send(const std::string& payload) const {
    REQUIRE(::sendto(socket.get(), payload.data(), payload.size(), 0, server_address.get(), server_address.length()) ==
            static_cast<ssize_t>(payload.size()));
  }
  // The next datagram within `timeout`, or nullopt.
  [[nodiscard]] std::optional<std::string> receive(std::chrono::milliseconds timeout) const {
    lab::StopSignal never;
    if (!lab::wait_readable(socket.get(), never, timeout)) {
      return std::nullopt;
    }
    std::string buffer(65536, '\0');
    const ssize_t got = ::recv(socket.get(), buffer.data(), buffer.size(), 0);
    REQUIRE(got >= 0);
    buffer.resize(static_cast<std::size_t>(got));
    return buffer;
  }

  lab::Fd socket;
  lab::SocketAddress server_address;
};

// The normal client: "hello" answered "HELLO". UDP may lose a datagram
// (under a flood the server's buffer overflows), so it asks up to 5 times.
void hello_01(const ServerProcess& server) {
  const UdpClient client(server);
  std::optional<std::string> reply;
  for (int attempt = 0; attempt < 5 && !reply; ++attempt) {
    client.send("hello");
    reply = client.receive(1s);
  }
  CHECK(reply == std::optional<std::string>("HELLO"));
}

}  // namespace

TEST_CASE("01: garbage, empty and 64 KiB datagrams are answered byte for byte, then a normal request") {
  auto server = ServerProcess::start(program("01_udp"));
  const OutputDrain drain(server);
  const int baseline = open_fds_of(server);
  const UdpClient client(server);
  const std::string garbage("\x00\x01\xff\xfe\x80 abc\r\n\x7f", 12);
  client.send(garbage);
  CHECK(client.receive(3s) == std::optional<std::string>(std::string("\x00\x01\xff\xfe\x80 ABC\r\n\x7f", 12)));
  client.send("");
  CHECK(client.receive(3s) == std::optional<std::string>(""));
  const std::string largest(65507, 'q');  // the largest UDP payload over IPv4
  client.send(largest);
  CHECK(client.receive(3s) == std::optional<std::string>(std::string(65507, 'Q')));
  hello_01(server);
  CHECK(back_to_baseline(server, baseline));
  stop_cleanly(server);
}

TEST_CASE("01: a flood of 20,000 datagrams never read back leaves the server answering a normal request") {
  auto server = ServerProcess::start(program("01_udp"));
  const OutputDrain drain(server);  // a log line per datagram
  const int baseline = open_fds_of(server);
  {
    const UdpClient flooder(server);
    for (int i = 0; i < 20'000; ++i) {
      const std::string payload = "flood " + std::to_string(i);
      // A full send buffer is the flooder's problem, not the server's: drop and go on.
      if (::sendto(flooder.socket.get(), payload.data(), payload.size(), 0, flooder.server_address.get(),
                   flooder.server_address.length()) < 0) {
        REQUIRE((errno == ENOBUFS || errno == EAGAIN));
      }
    }
  }  // closed: the replies to it go nowhere
  hello_01(server);
  CHECK(back_to_baseline(server, baseline));
  stop_cleanly(server);
}
