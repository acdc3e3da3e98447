// Lesson 06 — the forking server's child: forked with SIGINT and SIGTERM
// blocked, it closes what it inherited and does not use, takes signal state
// of its own, answers its one client and ends with _exit. The parent's side
// (accept, fork, reap) is server.cpp.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <optional>
#include <string>

#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/line_reader.hpp"
#include "lab/program.hpp"
#include "lab/stop.hpp"

namespace lab::fork_join {

inline constexpr std::size_t kMaxLine = 100;

// The child's whole job: read one line, answer it. Returns the exit status.
inline int answer(const Fd& connection, std::chrono::milliseconds idle) {
  // One read is not one line: the name may come in pieces, and the reader
  // gathers them. One deadline for the whole line, not a timeout per read:
  // a client trickling a byte at a time would otherwise keep its child (and
  // one of the --max-children places) for 100 timeouts. A line cut off by
  // the client leaving is no name (ProtocolError).
  LineReader reader(connection,
                    {.max_length = kMaxLine, .stop = &process_stop(), .accept_unterminated = false});
  std::optional<std::string> line;
  try {
    line = reader.next_line(idle);  // TimeoutError once idle has passed
  } catch (const LineTooLong&) {   // thrown before the rest of the line is read
    write_all(connection, "error: expected one line of at most 100 bytes\n");
    return 1;
  }
  if (!line) {
    return 1;  // the client left without a word
  }
  write_all(connection, "hello " + *line + " from pid " + std::to_string(::getpid()) + "\n");
  return 0;
}

[[noreturn]] inline void serve_in_child(Fd& listener, Fd& child_ended, const Fd& connection,
                                        std::chrono::milliseconds idle, const sigset_t& unblocked) {
  // The child inherited everything: close what it does not use. Holding the
  // listener would keep the port open after the parent has closed it.
  listener.reset();
  child_ended.reset();
  // The stop too: the parent's stop eventfd is shared with us after fork, so
  // a SIGTERM to the parent would wake our waits as if it were ours. The
  // child gets an eventfd of its own, for its LineReader, and the default
  // actions: SIGTERM or SIGINT simply ends it.
  give_child_its_own_stop();
  std::signal(SIGCHLD, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  // Only now unblock them: a SIGTERM that came in the meantime was held
  // pending, and takes its default action (ending the child) here.
  ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
  int code = 1;
  try {
    code = answer(connection, idle);
  } catch (const std::exception& error) {
    warn("child {}: {}", ::getpid(), error.what());
  }
  // _exit, not return: returning would run the parent's loop in the child.
  ::_exit(code);
}

// Forks a child that serves `connection` (the parent's `listener` and
// `child_ended` are closed in it). Returns the child's pid to the parent, or
// -1 with errno set if fork failed.
inline pid_t fork_serving_child(Fd& listener, Fd& child_ended, const Fd& connection,
                                std::chrono::milliseconds idle) {
  // Block SIGINT and SIGTERM across fork: one arriving before the child
  // has reset its handlers would run the parent's handler in the child,
  // and the child would go on serving instead of ending.
  sigset_t stop_signals;
  sigset_t previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) {
    serve_in_child(listener, child_ended, connection, idle, previous);
  }
  const int fork_error = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  errno = fork_error;
  return pid;
}

}  // namespace lab::fork_join
