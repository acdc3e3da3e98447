// Lesson 06 — a forking TCP server: one child process per client. The
// parent only accepts; each child answers one client and exits; the parent
// reaps every child as soon as SIGCHLD says one ended, so no zombie stays.
// At most --max-children clients are served at once; the next ones are told
// to come back later. A child gives its client --idle-ms for the whole line.
//
// Protocol: the client sends one line, "NAME\n" (at most 100 bytes); the
// server's child answers "hello NAME from pid PID\n" and closes.
//
//   build/default/lessons/06_fork_join/server            (listens on 127.0.0.1:9006)
//   ps -o pid,ppid,stat,cmd --ppid "$(pgrep -f 06_fork_join/server)"   (its children)
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>

#include "fork_join.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "serving_child.hpp"  // what each child does

namespace {

// The self-pipe trick: the SIGCHLD handler only writes one byte to a pipe,
// which the main loop polls along with the listener. A handler may call
// only async-signal-safe functions, so it must not reap or print itself.
int g_child_ended = -1;

extern "C" void on_sigchld(int /*signal*/) {
  const int saved_errno = errno;  // write may change errno under the interrupted code
  [[maybe_unused]] const ssize_t written = ::write(g_child_ended, "!", 1);
  errno = saved_errno;
}

lab::Fd watch_children() {
  std::array<int, 2> ends{};
  // Non-blocking: a handler must never block on a full pipe (one byte waiting is enough).
  if (::pipe2(ends.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    throw lab::os_error("pipe2");
  }
  g_child_ended = ends[1];  // kept open for the whole run
  struct sigaction action {};
  action.sa_handler = on_sigchld;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_NOCLDSTOP;  // only ended children, not stopped ones
  if (::sigaction(SIGCHLD, &action, nullptr) != 0) {
    throw lab::os_error("sigaction SIGCHLD");
  }
  return lab::Fd{ends[0]};
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(6, "forking TCP server: one child process per client");
  spec.options.push_back({"idle-ms", "MS", "how long a child waits for its client's whole line", "5000"});
  spec.options.push_back({"max-children", "N", "clients served at once; the next are told to come back later", "64"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const std::chrono::milliseconds idle{args.get_int("idle-ms", 1, 600000)};
    const auto max_children = static_cast<std::size_t>(args.get_int("max-children", 1, 10000));
    lab::Fd child_ended = watch_children();
    lab::Fd listener = lab::tcp_listen(args.endpoint());
    // Non-blocking: if a client gives up between poll and accept, accept
    // fails with EAGAIN instead of blocking the whole server.
    if (::fcntl(listener.get(), F_SETFL, O_NONBLOCK) != 0) {
      throw lab::os_error("fcntl O_NONBLOCK");
    }
    lab::announce_listening(listener);

    std::set<pid_t> serving;  // children still talking to a client
    std::size_t clients = 0;
    const lab::StopSignal& stop = lab::process_stop();
    while (!stop.requested()) {
      std::array<pollfd, 3> entries{{{listener.get(), POLLIN, 0},
                                     {child_ended.get(), POLLIN, 0},
                                     {stop.fd(), POLLIN, 0}}};
      if (::poll(entries.data(), entries.size(), -1) < 0 && errno != EINTR) {
        throw lab::os_error("poll");
      }
      if (entries[1].revents != 0) {
        char drained[64];
        while (::read(child_ended.get(), drained, sizeof drained) > 0) {
        }
        for (const auto& ended : lab::fork_join::reap_exited()) {
          serving.erase(ended.pid);
          lab::say("child {} {}", ended.pid, ended.status.to_string());
        }
      }
      if (entries[0].revents == 0) {
        continue;
      }
      lab::Fd connection{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)};
      if (!connection) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
          continue;
        }
        throw lab::os_error("accept");
      }
      // The cap: every client would otherwise cost a process, and a crowd
      // of silent ones could exhaust the machine's. The refusal is a few
      // bytes into a fresh socket's empty buffer: it cannot block us.
      if (serving.size() >= max_children) {
        try {
          lab::write_all(connection, "error: the server is busy, try again later\n");
        } catch (const std::system_error&) {  // that client is gone already
        }
        continue;
      }
      // The child closes what it inherited, answers, and _exits: it never
      // comes back here. The parent goes on accepting.
      const pid_t pid = lab::fork_join::fork_serving_child(listener, child_ended, connection, idle);
      if (pid < 0) {
        lab::warn("fork: {} (client turned away)", std::strerror(errno));
        continue;
      }
      // The parent closes its copy of the connection (at the end of this
      // iteration): the client's socket must be open only in the child, or
      // the client would never see the connection close.
      serving.insert(pid);
      ++clients;
      lab::say("client {} served by child {}", clients, pid);
    }
    // SIGTERM to every child first, so they all end side by side; then
    // confirm each (terminate sends SIGKILL to one that has not ended).
    for (const pid_t pid : serving) {
      ::kill(pid, SIGTERM);
    }
    for (const pid_t pid : serving) {
      lab::say("child {} {} at shutdown", pid,
               lab::fork_join::terminate(pid, std::chrono::milliseconds(2000)).to_string());
    }
    lab::say("stopped after {} client(s)", clients);
    return 0;
  });
}
