// Tests of the test helpers themselves (tests/support/testing.cpp): a helper
// that misbehaves makes every lesson's tests report someone else's fault.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "lab/testing.hpp"

using namespace std::chrono_literals;

namespace {

// More than a pipe holds (64 KiB by default, 1 MiB at most without
// privileges): the helper cannot write it all before the program runs.
const std::string kLargeInput(8 * 1024 * 1024, 'x');

}  // namespace

TEST_CASE("run: a program that exits without reading its input gives its status, not EPIPE") {
  const int fds_before = lab::testing::open_fd_count();
  const auto quits = lab::testing::run({"sh", "-c", "echo bye; exit 3"}, kLargeInput);
  INFO(quits.describe());
  CHECK_FALSE(quits.timed_out);
  CHECK(quits.status == lab::ExitStatus{3, 0});
  CHECK(quits.out == "bye\n");

  const auto empty_handed = lab::testing::run({"true"}, kLargeInput);
  CHECK(empty_handed.status.success());
  CHECK(lab::testing::open_fd_count() == fds_before);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("run: a program that reads part of its input and exits gives what it printed") {
  const auto head = lab::testing::run({"head", "-c", "5"}, kLargeInput);
  INFO(head.describe());
  CHECK(head.status.success());
  CHECK(head.out == "xxxxx");
}

TEST_CASE("run: feeds a large input while reading the output, so neither pipe can fill up") {
  // cat writes as it reads: feeding all the input before reading any output
  // would leave both sides blocked on a full pipe.
  const auto echoed = lab::testing::run({"cat"}, kLargeInput, 20s);
  CHECK_FALSE(echoed.timed_out);
  CHECK(echoed.status.success());
  CHECK(echoed.out.size() == kLargeInput.size());
  CHECK(echoed.out == kLargeInput);
}

TEST_CASE("run: a program that never reads its input is killed at the deadline") {
  const auto stuck = lab::testing::run({"sleep", "60"}, kLargeInput, 200ms);
  CHECK(stuck.timed_out);
  CHECK(stuck.status.signal == SIGKILL);
  CHECK(lab::testing::child_pids().empty());
}
