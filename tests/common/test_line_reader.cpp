#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>

#include "lab/line_reader.hpp"
#include "lab/process.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

TEST_CASE("LineReader returns lines, a last partial line, then end, and times out") {
  lab::Child child = lab::Child::spawn({"printf", "one\\ntwo\\nthree"});
  lab::LineReader reader(child.output());
  CHECK(reader.next_line(2s) == "one");
  CHECK(reader.next_line(2s) == "two");
  CHECK(reader.next_line(2s) == "three");
  CHECK_FALSE(reader.next_line(2s).has_value());
  CHECK(child.wait().success());

  lab::Child quiet = lab::Child::spawn({"sleep", "60"});
  lab::LineReader silent(quiet.output());
  CHECK_THROWS_AS(silent.next_line(20ms), lab::TimeoutError);
}

TEST_CASE("LineReader takes \"\\r\\n\" as a line end, keeps any other \"\\r\", splits lines read at once") {
  auto [writer, read_end] = lab::testing::socket_pair();
  lab::write_all(writer, "status\r\nplain\na\rb\n\r\n");
  writer.reset();
  lab::LineReader reader(read_end);
  CHECK(reader.next_line(2s) == "status");
  CHECK(reader.next_line(2s) == "plain");
  CHECK(reader.next_line(2s) == "a\rb");
  CHECK(reader.next_line(2s) == "");
  CHECK_FALSE(reader.next_line(2s).has_value());
}

TEST_CASE("LineReader with a maximum length takes a line of that length and refuses a longer one") {
  auto [writer, read_end] = lab::testing::socket_pair();
  const std::string longest(10, 'x');
  lab::write_all(writer, longest + "\n" + longest + "\r\n" + longest + "y\n");
  lab::LineReader reader(read_end, {.max_length = 10});
  CHECK(reader.next_line(2s) == longest);
  CHECK(reader.next_line(2s) == longest);  // the "\r" is not counted
  CHECK_THROWS_AS(reader.next_line(2s), lab::LineTooLong);
}

TEST_CASE("LineReader refuses an endless line once past the limit, without waiting for its end") {
  auto [writer, read_end] = lab::testing::socket_pair();
  lab::write_all(writer, std::string(1000, 'x'));  // no "\n", and the writer stays open
  lab::LineReader reader(read_end, {.max_length = 100});
  try {
    (void)reader.next_line(10s);
    FAIL_CHECK("an endless line was returned");
  } catch (const lab::LineTooLong& error) {
    CHECK(std::string(error.what()) == "a line longer than 100 bytes");
  }
  // A lone "\r" at the limit could still become "\r\n": it waits for more.
  auto [cr_writer, cr_read_end] = lab::testing::socket_pair();
  lab::write_all(cr_writer, std::string(100, 'x') + "\r");
  lab::LineReader patient(cr_read_end, {.max_length = 100});
  CHECK_THROWS_AS(patient.next_line(20ms), lab::TimeoutError);
}

TEST_CASE("LineReader with a stop throws StopRequested, requested before or during the wait") {
  auto [writer, read_end] = lab::testing::socket_pair();
  lab::StopSignal early;
  early.request();
  lab::LineReader stopped(read_end, {.stop = &early});
  CHECK_THROWS_AS(stopped.next_line(10s), lab::StopRequested);

  // The stop comes once this thread is provably asleep waiting for the line.
  lab::StopSignal later;
  lab::LineReader waiting(read_end, {.stop = &later});
  const pid_t waiter = lab::testing::this_thread_id();
  std::atomic<bool> returned{false};
  std::atomic<bool> was_waiting{false};
  std::jthread requester([&later, &returned, &was_waiting, waiter] {
    was_waiting = lab::testing::asleep_in(waiter, lab::testing::poll_system_calls(), 5000ms, returned);
    later.request();
  });
  CHECK_THROWS_AS(waiting.next_line(10s), lab::StopRequested);
  returned = true;
  requester.join();
  CHECK(was_waiting.load());
}

TEST_CASE("LineReader refuses a line cut off by the end of stream when whole lines are required") {
  auto [writer, read_end] = lab::testing::socket_pair();
  lab::write_all(writer, "whole\nhalf a li");
  writer.reset();
  lab::LineReader reader(read_end, {.accept_unterminated = false});
  CHECK(reader.next_line(2s) == "whole");
  CHECK_THROWS_AS(reader.next_line(2s), lab::ProtocolError);
}
