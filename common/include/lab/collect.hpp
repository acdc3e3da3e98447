// Collecting what a child prints, against a deadline: the one loop behind
// the remote-command service (lab::run_command), the tests' run() and the
// grader. It feeds the child's stdin and reads its stdout and stderr in one
// poll(2) loop, so no pipe can fill up and block both sides.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "lab/process.hpp"
#include "lab/stop.hpp"

namespace lab {

struct CollectOptions {
  // Written to the child's stdin pipe (spawned with pipe_stdin) as room
  // frees up; the pipe is then closed, so the child sees end of input (at
  // once when `input` is empty). A child that exits, or closes its stdin,
  // before reading it all is a normal outcome, not an error: the rest is
  // dropped. Needs SIGPIPE ignored (install_stop_handlers() and the tests'
  // main do it), or that write would kill us instead of failing with EPIPE.
  std::string_view input;
  std::chrono::milliseconds time_limit{5000};
  // Bytes kept of each stream (stdout, stderr).
  std::size_t max_output = std::numeric_limits<std::size_t>::max();
  // Once a stream has more than max_output: true, return at once (the
  // caller then kills the child); false, keep reading and drop the excess,
  // so that a child that floods its output still runs to its end.
  bool stop_when_capped = true;
  // Returns at once when this stop is requested; nullptr: no stop.
  const StopSignal* stop = nullptr;
};

struct CollectedOutput {
  std::string out;             // stdout (with stderr, if spawned with merge_stderr)
  std::string err;             // stderr, if captured on its own
  bool timed_out = false;      // time_limit passed first
  bool output_capped = false;  // a stream had more than max_output bytes
  bool stopped = false;        // options.stop was requested first
};

// Collects until the child has closed stdout and stderr (and its stdin is
// fed or refused), or the time limit passes, or a capped stream or the
// stop ends it early (see the flags). The pipes it is done with are closed.
// The child is neither signalled nor reaped: after an early end the caller
// kills it (a process group, perhaps), and waits for it in any case.
CollectedOutput collect_output(Child& child, const CollectOptions& options);

}  // namespace lab
