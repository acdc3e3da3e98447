// Benchmark of lesson 02 (label "bench", release build): the TCP hello
// server's CPU time per request ("Ann" in, "Hello, Ann!" out), next to the
// Python course's server (tcp_hello_server.py beside this file) measured in
// the same run, with both pinned to one CPU and unpinned. Per request the
// server makes two system calls, recv(2) and send(2); `strace -c` shows it.
//
// With --floor, a third server of the same protocol written with bare system
// calls (raw_hello_server.cpp beside this file) is measured too, and the two
// others are printed as ratios to it: the floor is what the kernel costs per
// request (two system calls, a loopback segment each way and, pinned, the
// switch to and from the client), so the rest is what each server adds.
// Python's figure can never drop below the floor's, and neither can ours:
// if the floor is above half of Python's, no server meets "<= 0.5x".
//
//   cmake --workflow --preset bench
//   build/release/tests/bench02_tcp_server SERVER PYTHON_SERVER
//       [--floor FLOOR_SERVER] [--messages N]
#include <fmt/core.h>

#include <array>
#include <cstdio>
#include <span>
#include <string>

#include "bench_support.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"

namespace {

// `count` names sent and greetings read back, each checked. One name at a
// time: the next is sent only after the reply, so no two names can merge.
void exchange(const lab::Fd& socket, std::uint64_t count) {
  const std::string_view expected = "Hello, Ann!";
  std::array<std::uint8_t, 11> reply{};
  static_assert(reply.size() == 11, "\"Hello, Ann!\"");
  for (std::uint64_t i = 0; i < count; ++i) {
    lab::write_all(socket, "Ann");
    if (!lab::read_exact(socket, std::span<std::uint8_t>(reply)) ||
        std::string_view(reinterpret_cast<const char*>(reply.data()), reply.size()) != expected) {
      throw std::runtime_error("a wrong or missing greeting");
    }
  }
}

lab::bench::ServerCpu measure(const std::string& program, bool pinned, std::uint64_t messages) {
  auto server = lab::testing::ServerProcess::start(program);
  const lab::bench::Drain drain(server.child().output());
  const lab::Fd socket = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(socket, std::chrono::seconds(2));
  const auto welcome = lab::read_exact(socket, 8);
  if (!welcome || *welcome != "Welcome!") {
    throw std::runtime_error("no Welcome!");
  }
  const auto cpu = lab::bench::server_cpu(server, pinned, messages,
                                          [&](std::uint64_t n) { exchange(socket, n); });
  server.stop();
  return cpu;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SERVER PYTHON_SERVER [--floor FLOOR_SERVER] [--messages N]\n",
                 argv[0]);
    return 64;
  }
  try {
    const std::uint64_t messages = lab::bench::number_option(argc, argv, "--messages", 300'000);
    lab::bench::compare_servers(
        fmt::format(
            "lesson 02: TCP hello server, CPU per request (utime+stime from /proc), {} requests",
            messages),
        "lesson 02 server", argv[1], argv[2], lab::bench::text_option(argc, argv, "--floor", ""),
        [messages](const std::string& program, bool pinned) {
          return measure(program, pinned, messages);
        });
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench02_tcp_server: %s\n", error.what());
    return 1;
  }
}
