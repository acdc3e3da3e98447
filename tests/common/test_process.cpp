#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <system_error>

#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

TEST_CASE("Child runs a program, captures its output and decodes its exit status") {
  const auto result = lab::testing::run({"sh", "-c", "echo out; echo err >&2; exit 7"});
  CHECK(result.out == "out\n");
  CHECK(result.err == "err\n");
  CHECK(result.status == lab::ExitStatus{7, 0});
  CHECK(result.status.to_string() == "exited with status 7");
}

TEST_CASE("Child feeds stdin and reports a program killed by a signal") {
  const auto cat = lab::testing::run({"cat"}, "fed through stdin");
  CHECK(cat.out == "fed through stdin");
  const auto killed = lab::testing::run({"sh", "-c", "kill -SEGV $$"});
  CHECK(killed.status.signal == SIGSEGV);
  CHECK(killed.status.to_string().rfind("killed by SIGSEGV", 0) == 0);
}

TEST_CASE("Child that cannot be started throws, naming the program") {
  try {
    (void)lab::Child::spawn({"/nonexistent/program"});
    FAIL_CHECK("started a program that does not exist");
  } catch (const std::system_error& error) {
    CHECK(std::string(error.what()) == "exec /nonexistent/program: No such file or directory");
  }
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("Child is killed and reaped when destroyed: no zombie, no fd left") {
  const int fds_before = lab::testing::open_fd_count();
  int pid = 0;
  {
    lab::Child child = lab::Child::spawn({"sleep", "60"});
    pid = child.pid();
    CHECK(std::find(lab::testing::child_pids().begin(), lab::testing::child_pids().end(), pid) !=
          lab::testing::child_pids().end());
    CHECK_FALSE(child.wait_for(10ms).has_value());
  }
  CHECK(lab::testing::child_pids().empty());
  CHECK(lab::testing::open_fd_count() == fds_before);
}

TEST_CASE("Child::stop sends SIGTERM and escalates to SIGKILL after the grace period") {
  lab::Child polite = lab::Child::spawn({"sleep", "60"});
  CHECK(polite.stop(2s).signal == SIGTERM);
  // A program that ignores SIGTERM and says when it is ready to be stopped.
  lab::Child stubborn = lab::Child::spawn({"sh", "-c", "trap '' TERM; echo ready; exec sleep 60"});
  lab::LineReader reader(stubborn.output());
  REQUIRE(reader.next_line(5s) == "ready");
  CHECK(stubborn.stop(100ms).signal == SIGKILL);
}

TEST_CASE("a pidfd tells a running process from an ended one, and signals it") {
  lab::Child sleeper = lab::Child::spawn({"sleep", "30"});
  const lab::Fd pidfd = lab::open_pidfd(sleeper.pid());
  REQUIRE(pidfd);
  CHECK_FALSE(lab::pidfd_ended_within(pidfd, std::chrono::milliseconds(20)));
  REQUIRE(lab::signal_pidfd(pidfd, SIGKILL) == 0);
  CHECK(lab::pidfd_ended_within(pidfd, std::chrono::milliseconds(5000)));
  CHECK(sleeper.wait().signal == SIGKILL);
}

TEST_CASE("Child passes extra environment variables and a working directory") {
  lab::SpawnOptions options;
  options.environment = {{"LAB_TEST_VALUE", "42"}};
  options.working_directory = "/";
  const auto result = lab::testing::run({"sh", "-c", "echo $LAB_TEST_VALUE; pwd"}, "", 5s, options);
  CHECK(result.out == "42\n/\n");
}
