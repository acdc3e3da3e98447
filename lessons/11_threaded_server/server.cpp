// Lesson 11 — threaded echo-upper server: Python's ThreadingTCPServer and
// ThreadingUDPServer, done in C++. The ThreadedServer class (your exercise)
// owns the connection loop; echo_upper below owns one conversation.
//
//   build/default/lessons/11_threaded_server/server                  (127.0.0.1:9011, a thread per connection)
//   build/default/lessons/11_threaded_server/server --pool 8         (8 worker threads)
//   build/default/lessons/11_threaded_server/server --udp            (one datagram in, one out)
//
// Protocol (TCP): every byte the server receives is sent back, ASCII letters
// upper-cased; nothing added, no framing. Beyond --max-connections a client
// reads "error: too many connections\n" and is closed. --udp: one datagram
// in, one upper-cased datagram out, to its sender (lesson 01's protocol).
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "lab/endpoint.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "threaded_server.hpp"

namespace {

constexpr std::size_t kChunk = 4096;
constexpr std::size_t kMaxDatagram = 65535;

void uppercase(std::string& bytes) {
  for (char& c : bytes) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');  // ASCII only: every other byte passes unchanged
    }
  }
}

// The handler: one conversation, and nothing about any other. A read
// returns whatever has arrived (one recv is not one message; the protocol
// has no messages, only bytes), so the reply is just that chunk upper-cased.
// A silent client makes read_some throw TimeoutError after the idle
// deadline the server set on the socket; a server shutdown makes it return
// end of stream (the socket was shut down).
void echo_upper(const lab::Fd& connection, std::stop_token stop) {
  while (!stop.stop_requested()) {
    auto chunk = lab::read_some(connection, kChunk);
    if (!chunk) {
      return;  // the client closed its side, or the server is shutting down
    }
    uppercase(*chunk);
    lab::write_all(connection, *chunk);  // all of it: send may write less (MSG_NOSIGNAL inside)
  }
}

// ThreadingUDPServer's "request = datagram + socket": there is no
// connection to own, so `threads` threads all wait on the one socket and
// the kernel gives each datagram to one of them. No queue is needed.
void udp_worker(const lab::Fd& socket, std::atomic<std::size_t>& answered) {
  std::string buffer(kMaxDatagram, '\0');
  for (;;) {
    try {
      lab::wait_readable(socket.get(), lab::process_stop());
    } catch (const lab::StopRequested&) {
      return;
    }
    lab::SocketAddress sender;
    sender.reset_for_receive();
    // MSG_DONTWAIT: every thread was woken, one got the datagram, the
    // others find nothing (EAGAIN) and wait again.
    const ssize_t received = ::recvfrom(socket.get(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                        sender.get(), sender.length_ptr());
    if (received < 0) {
      continue;  // EAGAIN, EINTR, or an ICMP error from an earlier reply: none ends the server
    }
    std::string reply = buffer.substr(0, static_cast<std::size_t>(received));
    uppercase(reply);
    // One datagram out, whole or not at all; a lost reply is the client's
    // to retry (lesson 01).
    if (::sendto(socket.get(), reply.data(), reply.size(), MSG_NOSIGNAL, sender.get(), sender.length()) >= 0) {
      ++answered;
    }
  }
}

int serve_udp(const lab::Args& args, std::size_t threads) {
  const lab::Fd socket = lab::udp_bind(args.endpoint());
  lab::announce_listening(socket);
  std::atomic<std::size_t> answered{0};
  {
    std::vector<std::jthread> workers;
    for (std::size_t k = 0; k < threads; ++k) {
      workers.emplace_back([&socket, &answered] { udp_worker(socket, answered); });
    }
    // Each worker returns on the stop (SIGINT/SIGTERM); leaving this block joins them all.
  }
  lab::say("stopped after {} datagram(s)", answered.load());
  return 0;
}

std::chrono::milliseconds seconds_option(const lab::Args& args, std::string_view name) {
  const std::string& text = args.get(name);
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc{} || end != text.data() + text.size() || seconds < 0 || seconds > 86'400) {
    throw lab::UsageError("--" + std::string(name) + " wants seconds from 0 to 86400, not '" + text + "'");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(11, "threaded echo-upper server: a thread per connection, or a pool");
  spec.options.push_back({"pool", "N", "N worker threads take the connections (0: a thread per connection)", "0"});
  spec.options.push_back({"max-connections", "N", "connections at once; one more is refused", "256"});
  spec.options.push_back({"idle-timeout", "S", "seconds a client may stay silent (0: no limit)", "10"});
  spec.options.push_back({"udp", "", "serve UDP datagrams instead (--pool threads, default 4)", ""});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    lab::threaded::ServerOptions options;
    options.pool = static_cast<std::size_t>(args.get_int("pool", 0, 1024));
    options.max_connections = static_cast<std::size_t>(args.get_int("max-connections", 1, 100'000));
    options.idle_timeout = seconds_option(args, "idle-timeout");
    if (args.flag("udp")) {
      return serve_udp(args, options.pool > 0 ? options.pool : 4);
    }

    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    lab::threaded::ThreadedServer server(echo_upper, options);
    const std::size_t served = server.serve_forever(listener, lab::process_stop());
    // Python's server.shutdown() + server_close(), and what daemon_threads
    // skips: every conversation ended and every thread joined before exit.
    server.shutdown();
    lab::say("stopped after {} connection(s), {} refused", served, server.refused());
    return 0;
  });
}
