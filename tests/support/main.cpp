// The main() of every doctest executable in the lab.
// No doctest signal handlers: a crash ends the case with its signal, which
// the grader reports ("killed by SIGSEGV"); doctest's handlers are not
// async-signal-safe, which ThreadSanitizer rightly reports.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>

int main(int argc, char** argv) {
  // Tests write to sockets whose peer has gone on purpose; the lab's helpers
  // send with MSG_NOSIGNAL, but a student's first send_all may not yet: a
  // failing case should fail with EPIPE, not kill every case with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // Line-buffered even into a pipe: a case killed at its timeout or by a
  // crash must not take the failures it already printed with it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  doctest::Context context(argc, argv);
  return context.run();
}
