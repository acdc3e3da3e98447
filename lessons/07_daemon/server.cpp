// Lesson 07 — a daemon: it detaches from the terminal (fork, setsid, fork),
// holds a locked pid file, logs to a file, and answers a tiny status
// protocol. SIGTERM stops it (removing the pid file); SIGHUP reopens its log.
// The log is bounded: past --log-max-bytes it is renamed to LOG.1 (replacing
// the previous one) and a new one is started, so it takes at most twice that.
//
// Protocol: the client sends "status\n"; the daemon answers
// "pid PID uptime SECONDS requests N\n" and closes.
//
//   build/default/lessons/07_daemon/server        (prints its ready line and returns at once)
//   build/default/lessons/07_daemon/client status
//   build/default/lessons/07_daemon/client stop
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>

#include "daemon.hpp"
#include "daemon_log.hpp"  // Log (rotated past --log-max-bytes), watch_sighup
#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/line_reader.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

std::string absolute(const std::string& path) {
  // The daemon runs in "/": a relative path must be resolved before it moves.
  return std::filesystem::absolute(path).lexically_normal().string();
}

// Reads one command line. One read is not one line: the reader gathers it,
// within one deadline for the whole line, not a timeout per read: the daemon
// serves one client at a time, and a client trickling a byte a second must
// not hold it. No command is longer than 64 bytes: a longer line is refused
// before the rest of it is read, and answered as an unknown command.
std::string read_request(const lab::Fd& connection) {
  const std::chrono::milliseconds limit(2000);
  lab::set_io_timeouts(connection, limit);  // bounds the reply's send as well
  lab::LineReader reader(connection, {.max_length = 64, .stop = &lab::process_stop()});
  try {
    return reader.next_line(limit).value_or("");
  } catch (const lab::LineTooLong&) {
    return {};
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(7, "a daemon that answers 'status'; SIGTERM stops it, SIGHUP reopens its log");
  spec.options.push_back({"pid-file", "PATH", "the locked pid file", "/tmp/lab07_daemon.pid"});
  spec.options.push_back({"log-file", "PATH", "where the daemon logs", "/tmp/lab07_daemon.log"});
  spec.options.push_back({"log-max-bytes", "BYTES", "rotate the log (to LOG.1) past this size", "1048576"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const std::string pid_path = absolute(args.get("pid-file"));
    const std::string log_path = absolute(args.get("log-file"));
    const auto log_max = static_cast<std::size_t>(args.get_int("log-max-bytes", 1024, 1LL << 40));
    const lab::Endpoint endpoint = args.endpoint();

    // From here on only the daemon runs this code; the process started from
    // the terminal waits for our report and exits with it. The stop eventfd
    // (SIGINT/SIGTERM) is kept: daemonize closes every other descriptor.
    const std::array keep{lab::process_stop().fd()};
    lab::Fd readiness = lab::daemon::daemonize(keep);
    try {
      const lab::daemon::PidFile pid_file = lab::daemon::PidFile::acquire(pid_path);
      lab::daemon::Log log(log_path, log_max);
      const lab::Fd reopen_event = lab::daemon::watch_sighup();
      const lab::Fd listener = lab::tcp_listen(endpoint);
      const std::string address = lab::SocketAddress::local_of(listener.get()).to_string();
      log.line("started, listening on " + address + ", pid file " + pid_path);
      lab::daemon::report_ready(readiness, "listening on " + address);

      const auto started = std::chrono::steady_clock::now();
      std::size_t requests = 0;
      const lab::StopSignal& stop = lab::process_stop();
      while (!stop.requested()) {
        std::array<pollfd, 3> entries{{{listener.get(), POLLIN, 0},
                                       {reopen_event.get(), POLLIN, 0},
                                       {stop.fd(), POLLIN, 0}}};
        if (::poll(entries.data(), entries.size(), -1) < 0 && errno != EINTR) {
          throw lab::os_error("poll");
        }
        if (entries[1].revents != 0) {
          std::uint64_t count = 0;
          [[maybe_unused]] const ssize_t got = ::read(reopen_event.get(), &count, sizeof count);
          log.reopen();
          log.line("SIGHUP: log reopened");
        }
        if (entries[0].revents == 0) {
          continue;
        }
        auto client = lab::accept_client(listener, stop);
        if (!client) {
          break;
        }
        try {
          const std::string request = read_request(client->socket);
          std::string reply = "error: the only command is 'status'\n";
          if (request == "status") {
            ++requests;
            const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                std::chrono::steady_clock::now() - started);
            reply = "pid " + std::to_string(::getpid()) + " uptime " + std::to_string(uptime.count()) +
                    " requests " + std::to_string(requests) + "\n";
          }
          // Log first, reply second: once a client has its answer, the log has the line.
          log.line((request == "status" ? "status for " : "bad request from ") + client->peer.to_string());
          lab::write_all(client->socket, reply);
        } catch (const std::exception& error) {
          log.line("client " + client->peer.to_string() + ": " + error.what());
        }
      }
      log.line("stop requested: stopping after " + std::to_string(requests) + " request(s)");
    } catch (const std::exception& error) {
      // Before the ready report this reaches the terminal; after it, the
      // report is already sent and this does nothing.
      lab::daemon::report_failure(readiness, error.what());
      return 1;
    }
    return 0;  // ~PidFile removed the pid file and released its lock
  });
}
