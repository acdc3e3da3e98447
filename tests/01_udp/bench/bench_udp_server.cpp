// Benchmark of lesson 01 (label "bench", release build): the UDP
// upper-casing server's CPU time per request, next to the Python course's
// server (udp_upper_server.py beside this file) measured in the same run,
// with both pinned to one CPU and unpinned. The figure that matters is the
// server's system calls per message: `strace -c` on the server shows them.
//
//   cmake --workflow --preset bench
//   build/release/lessons/01_udp/bench01_udp_server SERVER PYTHON_SERVER [--messages N]
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>

#include "bench_support.hpp"
#include "lab/socket.hpp"

namespace {

// `count` requests and replies, each checked.
void exchange(const lab::Fd& socket, std::uint64_t count) {
  const std::string request = "hello, server number one";
  const std::string expected = "HELLO, SERVER NUMBER ONE";
  char reply[256];
  for (std::uint64_t i = 0; i < count; ++i) {
    if (::send(socket.get(), request.data(), request.size(), 0) < 0) {
      throw lab::os_error("send");
    }
    const ssize_t got = ::recv(socket.get(), reply, sizeof reply, 0);
    if (got < 0) {
      throw lab::os_error("recv (no reply within 2 s?)");
    }
    if (std::string_view(reply, static_cast<std::size_t>(got)) != expected) {
      throw std::runtime_error("a wrong reply");
    }
  }
}

lab::bench::ServerCpu measure(const std::string& program, bool pinned, std::uint64_t messages) {
  auto server = lab::testing::ServerProcess::start(program);
  const lab::bench::Drain drain(server.child().output());
  const lab::Fd socket = lab::udp_socket(AF_INET);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A connected UDP socket: send/recv, and only the server's replies arrive.
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw lab::os_error("connect");
  }
  lab::set_receive_timeout(socket, std::chrono::seconds(2));
  const auto cpu = lab::bench::server_cpu(server, pinned, messages,
                                          [&](std::uint64_t n) { exchange(socket, n); });
  server.stop();
  return cpu;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SERVER PYTHON_SERVER [--messages N]\n", argv[0]);
    return 64;
  }
  try {
    const std::uint64_t messages = lab::bench::number_option(argc, argv, "--messages", 100'000);
    lab::bench::compare_servers(fmt::format("lesson 01: UDP upper-case server, CPU per request "
                                            "(utime+stime from /proc), {} requests",
                                            messages),
                                "lesson 01 server", argv[1], argv[2], "",
                                [messages](const std::string& program, bool pinned) {
                                  return measure(program, pinned, messages);
                                });
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench01_udp_server: %s\n", error.what());
    return 1;
  }
}
