// End-to-end tests of lesson 11's server and client programs (exercise
// entry 11.4), hostile clients included.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <system_error>
#include <string>
#include <vector>

#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "server_testing.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
using lab::threaded::testing::closed_within;
using lab::threaded::testing::round_trip;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

lab::testing::ProgramResult crowd(std::uint16_t port, int connections, int rounds) {
  return lab::testing::run({kClient, "--port", std::to_string(port), "--connections", std::to_string(connections),
                            "--rounds", std::to_string(rounds)},
                           "", 15s);
}

}  // namespace

TEST_CASE("11.4 pair: 300 concurrent clients x 10 round trips, every reply the line upper-cased") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--max-connections", "400"});
  INFO(server.stop_and_describe());
  const auto result = crowd(server.port(), 300, 10);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("connections: 300, round trips: 3000, failures: 0,") != std::string::npos);
  CHECK(result.out.find("every reply was the line upper-cased") != std::string::npos);
}

TEST_CASE("11.4 pair: a pool of 16 workers serves 16 clients x 50 round trips") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--pool", "16"});
  INFO(server.stop_and_describe());
  const auto result = crowd(server.port(), 16, 50);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("connections: 16, round trips: 800, failures: 0,") != std::string::npos);
}

TEST_CASE("11.4 pair: beyond --max-connections a client reads the refusal line") {
  for (const std::string pool : {"0", "2"}) {
    CAPTURE(pool);
    auto server = lab::testing::ServerProcess::start(kServer, {"--max-connections", "2", "--pool", pool});
    INFO(server.stop_and_describe());
    const Endpoint endpoint{"127.0.0.1", server.port()};
    const Fd first = lab::tcp_connect(endpoint);
    const Fd second = lab::tcp_connect(endpoint);
    round_trip(first, "one\n");
    round_trip(second, "two\n");
    const Fd third = lab::tcp_connect(endpoint);
    lab::set_receive_timeout(third, 3000ms);
    CHECK(lab::read_to_end(third, 4096) == "error: too many connections\n");
  }
}

TEST_CASE("11.4 pair: --udp answers each datagram with it upper-cased") {
  {
    // The same program serves TCP through the exercise (so that a stub
    // cannot pass this case on UDP alone).
    auto tcp = lab::testing::ServerProcess::start(kServer);
    INFO(tcp.stop_and_describe());
    const Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", tcp.port()});
    round_trip(client, "tcp first\n");
  }
  auto server = lab::testing::ServerProcess::start(kServer, {"--udp"});
  INFO(server.stop_and_describe());
  const Fd connected = lab::udp_bind(Endpoint{"127.0.0.1", 0});
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(connected.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
  lab::set_receive_timeout(connected, 3000ms);
  // A connected UDP socket: send and read reach only the server.
  for (const std::string& message : std::vector<std::string>{"hello, udp", "Two Words", std::string("\x00\xffz", 3)}) {
    lab::write_all(connected, message);
    const auto reply = lab::read_some(connected, 65536);  // one datagram, whole
    REQUIRE(reply);
    CHECK(*reply == lab::threaded::testing::upper(message));
  }
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  CHECK(server.rest_of_output().find("stopped after 3 datagram(s)") != std::string::npos);
}

TEST_CASE("11.4 server survives garbage, resets, silent, trickling and non-reading clients held while others are served") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "1"});
  INFO(server.stop_and_describe());
  const Endpoint endpoint{"127.0.0.1", server.port()};
  {
    // Garbage: any byte is echoed, letters upper-cased, nothing else changed.
    const Fd garbage = lab::tcp_connect(endpoint);
    std::string bytes;
    for (int b = 0; b < 256; ++b) {
      bytes += static_cast<char>(b);
    }
    round_trip(garbage, bytes);
  }
  {
    Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, "half a mess");
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(rude.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  }
  // Held while the crowd is served: a silent one, a trickler, one that
  // sends a lot and reads nothing (its replies fill the buffers).
  const Fd silent = lab::tcp_connect(endpoint);
  const Fd trickler = lab::tcp_connect(endpoint);
  lab::write_all(trickler, "t");
  const Fd hog = lab::tcp_connect(endpoint);
  lab::testing::set_buffer_sizes(hog, 1 << 20, 4096);
  const std::string megabyte(1 << 20, 'x');
  // 1 MiB: far more than the kernel buffers hold once the server's replies
  // (which we never read) fill ours; on a thread, as the send may block.
  auto hog_sends = std::async(std::launch::async, [&hog, &megabyte] {
    try {
      lab::write_all(hog, megabyte);
    } catch (const std::system_error&) {
      // The server dropped us: what this case expects.
    }
  });
  const auto result = crowd(server.port(), 20, 20);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("failures: 0,") != std::string::npos);
  // The idle deadline (1 s) drops the silent and the non-reading ones.
  CHECK_MESSAGE(closed_within(silent, 4000ms), "a silent client is still held after 4 s (--idle-timeout 1)");
  CHECK_MESSAGE(hog_sends.wait_for(4s) == std::future_status::ready,
                "a client that never reads is still held after 4 s: its send still blocks");
  ::shutdown(hog.get(), SHUT_RDWR);  // ends the send if the check above failed
}

TEST_CASE("11.4 pair: a storm of 300 connections at once, then SIGTERM stops the server with a summary") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--max-connections", "1000"});
  INFO(server.stop_and_describe());
  const Endpoint endpoint{"127.0.0.1", server.port()};
  {
    std::vector<Fd> storm;
    for (int i = 0; i < 300; ++i) {
      storm.push_back(lab::tcp_connect(endpoint));
    }
    round_trip(storm.back(), "the last of the storm\n");
    round_trip(storm.front(), "the first of the storm\n");
  }
  const auto result = crowd(server.port(), 5, 5);
  INFO(result.describe());
  CHECK(result.status.success());
  // Clients still connected do not keep a stopped server alive.
  const Fd held = lab::tcp_connect(endpoint);
  round_trip(held, "held over the stop\n");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  // The storm (300), the crowd (5) and the held one (1).
  CHECK_MESSAGE(log.find("stopped after 306 connection(s), 0 refused") != std::string::npos, log);
}

TEST_CASE("11.4 pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto works = crowd(server.port(), 2, 2);
  INFO(works.describe());
  CHECK(works.status.success());
}
