// Hostile clients against lesson 06's forking server: a child per client, so
// a client costs a process; the server caps them and reaps them at once.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "hostile.hpp"

using namespace hostile;

namespace {

// The normal client: one line, one answer from a child.
void hello_06(const ServerProcess& server, const std::string& name) {
  const lab::Fd socket = connect_to(server);
  lab::write_all(socket, name + "\n");
  CHECK(read_until(socket, "\n", 5s).rfind("hello " + name + " from pid ", 0) == 0);
}

}  // namespace

TEST_CASE("06: beyond --max-children a client is told the server is busy, and served once a place is free") {
  auto server = ServerProcess::start(program("06_fork_join"), {"--max-children", "2", "--idle-ms", "5000"});
  lab::Fd first = connect_to(server);
  const lab::Fd second = connect_to(server);
  REQUIRE(wait_for_children(server, 2, 3s));
  const lab::Fd third = connect_to(server);
  CHECK(read_until(third, "\n", 3s) == "error: the server is busy, try again later\n");
  CHECK(closed_by_server(third, 1s));
  first.reset();  // its child sees the end of the stream and ends
  REQUIRE(wait_for_children(server, 1, 3s));
  hello_06(server, "Ann");
  stop_cleanly(server);
}

TEST_CASE("06: a client trickling its line is dropped by --idle-ms for the whole line") {
  auto server = ServerProcess::start(program("06_fork_join"), {"--idle-ms", "500"});
  const lab::Fd trickler = connect_to(server);
  const auto began = std::chrono::steady_clock::now();
  bool dropped = false;
  for (int i = 0; i < 30 && !dropped; ++i) {  // 30 x 100 ms, never silent for 500 ms
    try {
      lab::write_all(trickler, "a");
    } catch (const std::system_error&) {
      dropped = true;
      break;
    }
    dropped = closed_by_server(trickler, 100ms);
  }
  CHECK(dropped);
  CHECK(std::chrono::steady_clock::now() - began < 1500ms);
  hello_06(server, "Ann");
  stop_cleanly(server);
}

TEST_CASE("06: every child is reaped within about 100 ms of its end, with no new client to wake the server") {
  auto server = ServerProcess::start(program("06_fork_join"));
  std::chrono::nanoseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    const lab::Fd socket = connect_to(server);
    lab::write_all(socket, "Ann\n");
    REQUIRE(read_until(socket, "\n", 5s).rfind("hello Ann", 0) == 0);
    REQUIRE(closed_by_server(socket, 2s));  // the child has closed: it is ending
    const auto ended = std::chrono::steady_clock::now();
    REQUIRE(wait_for_children(server, 0, 2s));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - ended);
  }
  // About 100 ms, with room for a loaded machine: a missed SIGCHLD would
  // leave the zombie until the next client, and fail this at 2 s.
  CHECK(slowest < 300ms);
  stop_cleanly(server);
}

TEST_CASE("06: a burst of 1000 clients at once is served in full, in bounded time") {
  auto server = ServerProcess::start(program("06_fork_join"), {"--max-children", "1000"});
  const OutputDrain drain(server);
  const DescriptorLimit limit(1100);
  const auto began = std::chrono::steady_clock::now();
  std::vector<lab::Fd> burst;
  for (int i = 0; i < 1000; ++i) {
    burst.push_back(connect_to(server));
    lab::write_all(burst.back(), "c" + std::to_string(i) + "\n");
  }
  std::size_t served = 0;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    const std::string reply = read_until(burst[i], "\n", 10s);
    served += reply.rfind("hello c" + std::to_string(i) + " from pid ", 0) == 0 ? 1 : 0;
    burst[i].reset();
  }
  CHECK(served == burst.size());
  CHECK(std::chrono::steady_clock::now() - began < 20s);
  CHECK(wait_for_children(server, 0, 3s));
  hello_06(server, "Ann");
  stop_cleanly(server);
}

TEST_CASE("06: SIGTERM while children are mid-request stops the server and them within 1 s, status 0") {
  auto server = ServerProcess::start(program("06_fork_join"), {"--idle-ms", "60000"});
  const lab::Fd first = connect_to(server);
  const lab::Fd second = connect_to(server);
  lab::write_all(second, "half a li");
  REQUIRE(wait_for_children(server, 2, 3s));
  stop_cleanly(server);
  CHECK(closed_by_server(first, 1s));
  CHECK(closed_by_server(second, 1s));
}
