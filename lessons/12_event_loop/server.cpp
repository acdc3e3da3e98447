// Lesson 12 — echo-upper server on one thread with epoll: every byte a client
// sends comes back ASCII-uppercased, nothing added (the protocol of lesson
// 11's threaded server, so one client can compare the two).
//
//   build/default/lessons/12_event_loop/server                     (127.0.0.1:9012)
//   build/default/lessons/12_event_loop/server --idle-timeout 5    (close silent clients)
//   build/default/lessons/12_event_loop/server --busy-loop         (the Python course's loop: burns a core)
//
// On stop (Ctrl-C) it prints how much CPU time it used: compare an idle
// epoll server with an idle --busy-loop one.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <string>
#include <vector>

#include "descriptor_limit.hpp"
#include "event_loop.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"

namespace {

using lab::event_loop::ConnectionBuffer;

double seconds_of(const timeval& time) {
  return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
}

// getrusage(2): the CPU time this process has used, user and system, against
// the wall-clock time it ran. An idle event loop sleeps in epoll_wait and
// uses almost none; a busy loop uses a whole core doing nothing.
void report_cpu(std::chrono::steady_clock::time_point started) {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double user = seconds_of(usage.ru_utime);
  const double system = seconds_of(usage.ru_stime);
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
  lab::say("cpu: {:.2f} s user + {:.2f} s system in {:.1f} s: {:.1f}% of one core", user, system,
           wall.count(), wall.count() > 0 ? 100.0 * (user + system) / wall.count() : 0.0);
}

std::chrono::milliseconds parse_seconds(const std::string& text) {
  double seconds = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || seconds < 0 ||
      seconds > 86400) {
    throw lab::UsageError("--idle-timeout must be seconds from 0 to 86400, not '" + text + "'");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// ---- The habit this lesson corrects: do NOT write servers like this ----------
//
// The Python course's non-blocking server: setblocking(False), then a loop
// that tries accept() and recv() on every socket and catches
// BlockingIOError when there is nothing. It works, and it never sleeps: with
// no client sending anything it still spins through the loop millions of
// times a second, one core at 100%, and the more clients, the longer each
// useless round. Kept here only so that you can run it and watch `top`.
std::size_t busy_loop(const lab::Fd& listener, const lab::StopSignal& stop, std::size_t high_water) {
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    throw lab::os_error("fcntl O_NONBLOCK");
  }
  struct Client {
    lab::Fd socket;
    ConnectionBuffer output;
  };
  std::vector<Client> clients;
  std::size_t accepted = 0;
  while (!stop.requested()) {
    const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      clients.push_back({lab::Fd(fd), ConnectionBuffer(high_water)});
      ++accepted;
    }  // else EAGAIN ("BlockingIOError"): nobody is waiting; we try again at once
    for (std::size_t k = 0; k < clients.size();) {
      Client& client = clients[k];
      bool open = true;
      try {
        if (client.output.wants_read()) {
          if (const auto chunk = lab::read_some(client.socket, 4096)) {
            std::string upper = *chunk;
            for (char& c : upper) {
              c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
            }
            client.output.append(upper);
          } else {
            open = false;  // end of stream (its unsent output is dropped: this is the bad example)
          }
        }
      } catch (const lab::TimeoutError&) {
        // EAGAIN: "BlockingIOError", nothing to read yet. Round we go again.
      } catch (const std::system_error&) {
        open = false;
      }
      try {
        if (open) {
          client.output.flush_to(client.socket.get());
        }
      } catch (const std::system_error&) {
        open = false;
      }
      if (open) {
        ++k;
      } else {
        clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
  }
  return accepted;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(12, "echo-upper server: one thread, epoll, thousands of clients");
  spec.options.push_back({"idle-timeout", "S", "close a connection idle this many seconds (decimals allowed; 0: never)", "60"});
  spec.options.push_back({"max-connections", "N", "most connections at once; more wait in the listen backlog", "10000"});
  spec.options.push_back({"high-water", "BYTES", "unsent reply per client before the server stops reading it", "65536"});
  spec.options.push_back({"busy-loop", "", "serve with the Python course's busy loop instead (burns a core)", ""});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    lab::event_loop::ServerOptions options;
    options.idle_timeout = parse_seconds(args.get("idle-timeout"));
    options.max_connections = static_cast<std::size_t>(args.get_int("max-connections", 1, 1'000'000));
    options.high_water = static_cast<std::size_t>(args.get_int("high-water", 1, 64 * 1024 * 1024));

    // Each connection is a descriptor: 10,000 clients need more than the
    // usual soft limit of 1024.
    const auto limit = lab::event_loop::raise_descriptor_limit();
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);  // the first line: tests and `lab run` wait for it
    lab::say("{}", lab::event_loop::describe(limit, options.max_connections + 16));
    const auto started = std::chrono::steady_clock::now();
    if (args.flag("busy-loop")) {
      lab::say("busy loop: polling every socket without ever sleeping (watch top)");
      std::size_t accepted = 0;
      try {
        accepted = busy_loop(listener, lab::process_stop(), options.high_water);
      } catch (const lab::StopRequested&) {
        // a stop that interrupted a recv: the report below still runs
      }
      lab::say("stopped after {} connection(s)", accepted);
      report_cpu(started);
      return 0;
    }
    const auto stats = lab::event_loop::serve(listener, lab::process_stop(), options);
    lab::say("stopped after {} connection(s), {} closed at the idle deadline", stats.accepted,
             stats.idle_closed);
    report_cpu(started);
    return 0;
  });
}
