// Hostile clients against lesson 09's job server, which serves one client at
// a time with a pool of worker processes: garbage, bad lengths, cut frames,
// resets, silent and trickling clients, and SIGTERM in the middle. After
// each, a normal client is served and the server is back to its
// descriptors, with no worker process or zombie left.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "hostile.hpp"

using namespace hostile;

namespace {

// The normal client: the reference client program, 30 jobs checked.
void jobs_09(const ServerProcess& server) {
  const auto result = lab::testing::run(
      {program("09_queues", "client"), "--port", std::to_string(server.port()), "--jobs", "30"}, "", 8s);
  INFO(result.describe());
  CHECK(result.out.find("30 jobs sent, 30 results, each exactly once and correct") != std::string::npos);
}

// A 4-byte big-endian length.
std::string length_header(std::uint32_t length) {
  return {static_cast<char>(length >> 24), static_cast<char>((length >> 16) & 0xff),
          static_cast<char>((length >> 8) & 0xff), static_cast<char>(length & 0xff)};
}

// What the server sends back to `bytes` (and the end of our sending side):
// its frames, raw, until it closes.
std::string answer_to(const ServerProcess& server, const std::string& bytes) {
  const lab::Fd socket = connect_to(server);
  lab::write_all(socket, bytes);
  ::shutdown(socket.get(), SHUT_WR);
  std::string got = read_until(socket, "\x01\x02never", 3s);  // everything, until it closes
  CHECK(closed_by_server(socket, 1s));
  return got;
}

// True if `raw` ends with a frame "error: ...".
bool ends_with_error_frame(const std::string& raw) {
  const auto at = raw.rfind("error: ");
  return at != std::string::npos && at >= 4 && raw.substr(at - 4, 2) == std::string("\0\0", 2);
}

}  // namespace

TEST_CASE("09: garbage, bad lengths and cut frames get an error frame, and a normal client follows each") {
  auto server = ServerProcess::start(program("09_queues"), {"--workers", "2"});
  const OutputDrain drain(server);
  const int baseline = open_fds_of(server);
  const std::vector<std::pair<std::string, std::string>> attacks{
      {"garbage (an HTTP request)", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"a job without an ID", length_header(5) + "hello"},
      {"the limit + 1", length_header(1024 * 1024 + 1) + "1 x"},
      {"a 4 GiB length", length_header(0xffffffff) + "1 x"},
      {"a frame cut short", length_header(100) + "1 only ten"},
      {"half a header", std::string("\0\0", 2)},
  };
  for (const auto& attack : attacks) {
    CAPTURE(attack.first);
    CHECK(ends_with_error_frame(answer_to(server, attack.second)));
    jobs_09(server);
    CHECK(back_to_baseline(server, baseline));
  }
  stop_cleanly(server);
}

TEST_CASE("09: a client that resets the connection in the middle of a frame costs nothing") {
  auto server = ServerProcess::start(program("09_queues"));
  const OutputDrain drain(server);
  const int baseline = open_fds_of(server);
  for (int i = 0; i < 5; ++i) {
    lab::Fd socket = connect_to(server);
    lab::write_all(socket, length_header(1000) + "1 part of a job");
    const linger reset{1, 0};  // close(2) with a zero linger sends RST
    REQUIRE(::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
    socket.reset();
  }
  jobs_09(server);
  CHECK(back_to_baseline(server, baseline));
  stop_cleanly(server);
}

TEST_CASE("09: a silent and a trickling client are dropped by their deadlines while a normal client waits") {
  auto server = ServerProcess::start(program("09_queues"), {"--idle-timeout", "0.5", "--request-timeout", "1.5"});
  const OutputDrain drain(server);
  const int baseline = open_fds_of(server);
  {
    const lab::Fd silent = connect_to(server);
    const auto began = std::chrono::steady_clock::now();
    jobs_09(server);  // queued behind the silent one for its idle deadline
    CHECK(std::chrono::steady_clock::now() - began < 3s);
    CHECK(closed_by_server(silent, 1s));
    CHECK(back_to_baseline(server, baseline));
  }
  {
    // One byte every 100 ms, never silent for 0.5 s: the frame would take
    // 6 s, the request deadline ends it at 1.5 s.
    const lab::Fd trickler = connect_to(server);
    const std::string frame = length_header(56) + "1 " + std::string(54, 't');
    const auto began = std::chrono::steady_clock::now();
    bool dropped = false;
    for (std::size_t i = 0; i < frame.size() && !dropped; ++i) {
      try {
        lab::write_all(trickler, frame.substr(i, 1));
      } catch (const std::system_error&) {
        dropped = true;  // the server has closed it
        break;
      }
      dropped = closed_by_server(trickler, 100ms);
    }
    CHECK(dropped);
    CHECK(std::chrono::steady_clock::now() - began < 3s);
    jobs_09(server);
    CHECK(back_to_baseline(server, baseline));
  }
  stop_cleanly(server);
}

TEST_CASE("09: SIGTERM in the middle of a client's frame stops the server and its workers within 1 s, status 0") {
  auto server = ServerProcess::start(program("09_queues"), {"--workers", "4"});
  const lab::Fd client = connect_to(server);
  lab::write_all(client, length_header(100) + "1 half a job");
  REQUIRE(wait_for_children(server, 5, 3s));  // 4 workers and the feeder
  stop_cleanly(server);
  CHECK(closed_by_server(client, 1s));
}
