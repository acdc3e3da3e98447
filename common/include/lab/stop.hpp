// Stopping a program cleanly: SIGINT/SIGTERM, or a test's own request.
#pragma once

#include <chrono>
#include <optional>

namespace lab {

// A one-way switch that blocking code can wait on. It owns an eventfd that
// becomes readable, and stays readable, once request() is called, so any
// number of threads polling it all wake up, and a request made before
// anybody waits is not lost (the race a plain flag has).
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Async-signal-safe: a signal handler may call it.
  void request() noexcept;
  [[nodiscard]] bool requested() const noexcept;
  // The eventfd, for poll(2). Readable once stop is requested.
  [[nodiscard]] int fd() const noexcept { return fd_; }

  // In a child just forked: a fresh eventfd under the same descriptor
  // number. After fork(2) both processes share the eventfd (one open file
  // description), so a stop requested in either would stop both.
  void renew_in_child() noexcept;

 private:
  int fd_;
};

// The process-wide stop that SIGINT and SIGTERM trigger once
// install_stop_handlers() has run (run_program does it for every program).
StopSignal& process_stop();

// SIGINT and SIGTERM request process_stop() (the handler only writes to the
// eventfd and sets a flag, saving errno); SIGPIPE is ignored, so a write to a
// closed connection returns EPIPE instead of killing the program. The
// handlers are installed without SA_RESTART: a blocked read returns EINTR,
// and the I/O helpers then throw StopRequested if a stop was requested.
void install_stop_handlers();

// In a child forked from a program with install_stop_handlers(): its own
// process_stop(), not requested, so that SIGINT/SIGTERM to the child stop
// the child only. Call it with SIGINT and SIGTERM blocked (they stay pending
// and reach the fresh stop once unblocked). ForkedChildren does this.
void give_child_its_own_stop() noexcept;

// The signal that triggered process_stop(), or 0.
[[nodiscard]] int stop_signal_number() noexcept;

// Throws StopRequested if process_stop() was requested. What to do on EINTR:
// a signal interrupted the call; if it asked us to stop, unwind, else retry.
// (Python does the same for you: PEP 475 retries EINTR after running the
// signal handlers, which is how Ctrl-C raises KeyboardInterrupt from recv.)
void throw_if_stop_requested();

using Clock = std::chrono::steady_clock;

// Waits until `fd` is readable (or has hung up, or has an error) and returns
// true; returns false if `timeout` passes first (none: wait for ever).
// Throws StopRequested as soon as `stop` is requested.
bool wait_readable(int fd, const StopSignal& stop,
                   std::optional<std::chrono::milliseconds> timeout = std::nullopt);

}  // namespace lab
