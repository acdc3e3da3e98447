// lab::collect_output: one loop that feeds a child's stdin and reads its
// stdout and stderr against a deadline, a cap and a stop.
#include <doctest/doctest.h>
#include <sys/syscall.h>

#include <atomic>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "lab/collect.hpp"
#include "lab/process.hpp"
#include "lab/stop.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

namespace {

// More than a pipe holds (64 KiB by default, 1 MiB at most without
// privileges): it cannot all be written before the child reads.
const std::string kLargeInput(8 * 1024 * 1024, 'x');

lab::Child spawn_with_stdin(const std::vector<std::string>& argv) {
  lab::SpawnOptions options;
  options.pipe_stdin = true;
  return lab::Child::spawn(argv, options);
}

}  // namespace

TEST_CASE("collect_output reads stdout and stderr apart, and ends when the child closes them") {
  const int fds_before = lab::testing::open_fd_count();
  {
    lab::Child child = lab::Child::spawn({"sh", "-c", "echo out; echo err >&2; exit 4"});
    const lab::CollectedOutput got = lab::collect_output(child, {});
    CHECK(got.out == "out\n");
    CHECK(got.err == "err\n");
    CHECK_FALSE(got.timed_out);
    CHECK_FALSE(got.output_capped);
    CHECK_FALSE(got.stopped);
    CHECK(child.wait() == lab::ExitStatus{4, 0});
  }
  CHECK(lab::testing::open_fd_count() == fds_before);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("collect_output reads stderr merged into stdout in the order written") {
  lab::SpawnOptions options;
  options.merge_stderr = true;
  lab::Child child = lab::Child::spawn({"sh", "-c", "echo one; echo two >&2; echo three"}, options);
  const lab::CollectedOutput got = lab::collect_output(child, {});
  CHECK(got.out == "one\ntwo\nthree\n");
  CHECK(got.err.empty());
  CHECK(child.wait().success());
}

TEST_CASE("collect_output reads large output on both streams without deadlock") {
  // stderr first: a reader that read stdout to its end before stderr would
  // wait for ever, the child blocked on a full stderr pipe.
  lab::Child child = lab::Child::spawn(
      {"sh", "-c",
       "head -c 1000000 /dev/zero | tr '\\0' e >&2; head -c 1000000 /dev/zero | tr '\\0' o"});
  lab::CollectOptions options;
  options.time_limit = 20s;
  const lab::CollectedOutput got = lab::collect_output(child, options);
  CHECK_FALSE(got.timed_out);
  CHECK(got.out == std::string(1000000, 'o'));
  CHECK(got.err == std::string(1000000, 'e'));
  CHECK(child.wait().success());
}

TEST_CASE("collect_output feeds a large input while reading both streams") {
  // tee writes what it reads to stdout and stderr as it goes: feeding all
  // the input before reading would leave both sides blocked on full pipes.
  lab::Child child = spawn_with_stdin({"tee", "/dev/stderr"});
  lab::CollectOptions options;
  options.input = kLargeInput;
  options.time_limit = 20s;
  const lab::CollectedOutput got = lab::collect_output(child, options);
  CHECK_FALSE(got.timed_out);
  CHECK(got.out.size() == kLargeInput.size());
  CHECK(got.out == kLargeInput);
  CHECK(got.err == kLargeInput);
  CHECK(child.wait().success());
}

TEST_CASE("collect_output: a child that leaves its input unread is no error") {
  const int fds_before = lab::testing::open_fd_count();
  {
    lab::Child quits = spawn_with_stdin({"sh", "-c", "echo bye; exit 3"});
    lab::CollectOptions options;
    options.input = kLargeInput;
    const lab::CollectedOutput got = lab::collect_output(quits, options);
    CHECK_FALSE(got.timed_out);
    CHECK(got.out == "bye\n");
    CHECK(quits.wait() == lab::ExitStatus{3, 0});

    lab::Child closes = spawn_with_stdin({"sh", "-c", "exec <&-; echo closed"});
    const lab::CollectedOutput closed = lab::collect_output(closes, options);
    CHECK_FALSE(closed.timed_out);
    CHECK(closed.out == "closed\n");
    CHECK(closes.wait().success());
  }
  CHECK(lab::testing::open_fd_count() == fds_before);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("collect_output closes stdin at once when there is no input") {
  lab::Child child = spawn_with_stdin({"cat"});
  lab::CollectOptions options;
  options.time_limit = 20s;
  const lab::CollectedOutput got = lab::collect_output(child, options);
  CHECK_FALSE(got.timed_out);
  CHECK(got.out.empty());
  CHECK(child.wait().success());
}

TEST_CASE("collect_output stops at the deadline, keeping what was printed so far") {
  lab::Child child = lab::Child::spawn({"sh", "-c", "echo early; exec sleep 60"});
  lab::CollectOptions options;
  options.time_limit = 2s;  // room for a loaded machine to start sh and run its echo
  const lab::CollectedOutput got = lab::collect_output(child, options);
  CHECK(got.timed_out);
  CHECK(got.out == "early\n");
  CHECK_FALSE(child.status().has_value());  // neither killed nor reaped
  child.send_signal(SIGKILL);
  CHECK(child.wait().signal == SIGKILL);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("collect_output at the cap: stops at once, or keeps reading and drops the rest") {
  lab::CollectOptions options;
  options.max_output = 1000;
  options.time_limit = 20s;
  SUBCASE("stop when capped: the caller kills the flood") {
    lab::Child child = lab::Child::spawn({"yes"});
    const lab::CollectedOutput got = lab::collect_output(child, options);
    CHECK(got.output_capped);
    CHECK_FALSE(got.timed_out);
    CHECK(got.out.size() == 1000);
    child.send_signal(SIGKILL);
    CHECK(child.wait().signal == SIGKILL);
  }
  SUBCASE("drop the rest: the child runs to its end, unblocked") {
    options.stop_when_capped = false;
    lab::Child child = lab::Child::spawn({"sh", "-c", "head -c 500000 /dev/zero; echo done >&2"});
    const lab::CollectedOutput got = lab::collect_output(child, options);
    CHECK(got.output_capped);
    CHECK_FALSE(got.timed_out);
    CHECK(got.out == std::string(1000, '\0'));
    CHECK(got.err == "done\n");
    CHECK(child.wait().success());
  }
  SUBCASE("exactly the cap is not over it") {
    lab::Child child = lab::Child::spawn({"head", "-c", "1000", "/dev/zero"});
    const lab::CollectedOutput got = lab::collect_output(child, options);
    CHECK_FALSE(got.output_capped);
    CHECK(got.out.size() == 1000);
    CHECK(child.wait().success());
  }
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("collect_output returns when its stop descriptor fires") {
  lab::StopSignal stop;
  lab::Child child = lab::Child::spawn({"sleep", "60"});
  lab::CollectOptions options;
  options.time_limit = 60s;
  options.stop = &stop;
  // The stop is requested once this thread is provably waiting in poll(2)
  // (or after 5 s, so that a failure cannot hang the case).
  const pid_t collector = lab::testing::this_thread_id();
  std::atomic<bool> returned{false};
  std::atomic<bool> was_waiting{false};
  std::jthread requester([&] {
    was_waiting = lab::testing::asleep_in(collector, lab::testing::poll_system_calls(), 5000ms, returned);
    stop.request();
  });
  const lab::CollectedOutput got = lab::collect_output(child, options);
  returned = true;
  requester.join();
  CHECK(was_waiting.load());
  CHECK(got.stopped);
  CHECK_FALSE(got.timed_out);
  child.send_signal(SIGKILL);
  CHECK(child.wait().signal == SIGKILL);
}
