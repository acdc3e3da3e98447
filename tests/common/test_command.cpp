#include <doctest/doctest.h>

#include <chrono>
#include <csignal>

#include "lab/command.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

TEST_CASE("run_command collects stdout and stderr separately, with the exit status") {
  const auto result = lab::run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(result.out == "out\n");
  CHECK(result.err == "err\n");
  CHECK(result.status == lab::ExitStatus{3, 0});
  CHECK_FALSE(result.timed_out);
  CHECK_FALSE(result.output_capped);
}

TEST_CASE("run_command caps the output and kills a command that prints too much") {
  lab::CommandLimits limits;
  limits.max_output = 1000;
  const auto result = lab::run_command({"yes"}, "", limits);
  CHECK(result.out.size() == 1000);
  CHECK(result.output_capped);
  CHECK(result.status.signal == SIGKILL);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("run_command kills a command that outlives its time limit") {
  lab::CommandLimits limits;
  limits.time_limit = 200ms;
  const auto result = lab::run_command({"sleep", "30"}, "", limits);
  CHECK(result.timed_out);
  CHECK(result.status.signal == SIGKILL);
  CHECK(lab::testing::child_pids().empty());
}

TEST_CASE("run_command runs in the working directory it is given") {
  const auto result = lab::run_command({"pwd"}, "/");
  CHECK(result.out == "/\n");
}

TEST_CASE("the allow-list: exact names only, and 'big' prints the known text") {
  CHECK(lab::find_allowed_command("date") != nullptr);
  CHECK(lab::find_allowed_command("uname -a") != nullptr);
  CHECK(lab::find_allowed_command("date; rm -rf ~") == nullptr);
  CHECK(lab::find_allowed_command("DATE") == nullptr);
  CHECK(lab::find_allowed_command("") == nullptr);
  CHECK(lab::allowed_command_names() == "date, uname -a, ls -l, big, missing");
  const auto* big = lab::find_allowed_command("big");
  REQUIRE(big != nullptr);
  const auto result = lab::run_command(big->argv);
  CHECK(result.out == lab::big_command_output());
  CHECK(result.out.size() == lab::kBigOutputBytes);
  const auto missing = lab::run_command(lab::find_allowed_command("missing")->argv);
  CHECK(missing.status.code == 2);
  CHECK(missing.out.empty());
  CHECK_FALSE(missing.err.empty());
}
