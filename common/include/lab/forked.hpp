// Worker processes forked from this one, owned and always reaped.
//
//   lab::ForkedChildren workers;
//   for (int i = 0; i < 8; ++i) {
//     workers.start([i] { return do_work(i); });   // runs in a child process
//   }
//   for (const lab::ExitStatus& status : workers.wait_all()) { ... }
//
// Unlike lab::Child (which execs a program), the child here runs a function
// of this program: fork(2) copies the whole process, so the function sees
// a copy of everything the parent had at the moment of the fork.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include "lab/fd.hpp"
#include "lab/process.hpp"

namespace lab {

// start() refused: as many children as allowed are already running.
class TooManyChildren : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ForkedChildren {
 public:
  static constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

  // At most `max_running` children at once: a server caps what its clients
  // can cost it in processes (and in the pidfd it holds for each).
  explicit ForkedChildren(std::size_t max_running = kNoLimit) : max_running_(max_running) {}
  // Kills (SIGKILL) every child still running and reaps them all, so that a
  // failed test or an exception never leaves a worker or a zombie behind.
  ~ForkedChildren();
  ForkedChildren(const ForkedChildren&) = delete;
  ForkedChildren& operator=(const ForkedChildren&) = delete;

  // Forks a child that runs `body` and ends with _exit(body's return value):
  // _exit, not exit, so the parent's atexit handlers and stdio buffers are
  // not run or flushed a second time by the copy. An exception escaping
  // `body` is printed on stderr and the child exits with 70; a stop request
  // (lab::StopRequested) exits 0. With `die_with_parent` the child gets
  // SIGTERM if this process dies (PR_SET_PDEATHSIG). Call it only while
  // this process has a single thread: after fork(2) in a threaded process
  // the child may only call async-signal-safe functions.
  //
  // Signals are blocked across the fork, and the child gets its own
  // process_stop() before they are unblocked: SIGTERM to a child stops that
  // child (its body sees lab::StopRequested), never this process.
  // Throws TooManyChildren if `max_running` children are still running.
  pid_t start(const std::function<int()>& body, bool die_with_parent = true);

  // Waits until every child has ended; their statuses in start order.
  // Throws lab::TimeoutError if some are still running after `timeout`
  // (they are left running; the destructor kills them).
  std::vector<ExitStatus> wait_all(std::chrono::milliseconds timeout);

  // Reaps the children that have ended, without waiting, and forgets them
  // (a server calls it now and then); returns how many.
  std::size_t reap_finished();

  // The status of child `pid` once it has ended (reaped now, without
  // waiting), nullopt while it runs or if it is not ours. It stays listed:
  // wait_all reports it too. A server that must know how each child ended
  // (a worker killed, not finished) asks this when the child's pidfd fires.
  std::optional<ExitStatus> status_of(pid_t pid);

  // SIGTERM to every child still running, up to `grace` for them to end,
  // then SIGKILL; reaps them all.
  void stop_all(std::chrono::milliseconds grace);

  [[nodiscard]] std::size_t running() const;
  [[nodiscard]] std::size_t max_running() const noexcept { return max_running_; }
  // The pidfds of the children not yet reaped, for poll(2): each becomes
  // readable when its child ends (then call reap_finished). A reaped child
  // holds no descriptor.
  [[nodiscard]] std::vector<int> pidfds() const;
  [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }

 private:
  struct Worker {
    pid_t pid = -1;
    Fd pidfd;  // pidfd_open(2): readable once the child has ended
    std::optional<ExitStatus> status;
  };
  // Waits up to `timeout` for every unreaped child to end; true if all did.
  bool wait_until_all_ended(std::chrono::milliseconds timeout);
  void reap(Worker& worker, bool block);

  std::vector<Worker> children_;
  std::size_t max_running_;
};

}  // namespace lab
