// Graded tests of lesson 03 (lessons/03_sticky_packets/line_splitter.hpp),
// and end-to-end tests of its server and client. Built twice: against the
// student's line_splitter.cpp (label "grade") and against
// solutions/03_sticky_packets (label "reference").
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <system_error>
#include <string>
#include <vector>

#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"
#include "line_splitter.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
using lab::sticky::LineSplitter;
using Lines = std::vector<std::string>;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

std::string show(const Lines& lines) {
  std::string text = "{";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    text += (i == 0 ? "" : ", ") + lab::preview(lines[i]);
  }
  return text + "}";
}

// Feeds `chunks` one after another; returns every line, in order.
Lines feed_all(LineSplitter& splitter, const std::vector<std::string>& chunks) {
  Lines lines;
  for (const std::string& chunk : chunks) {
    for (std::string& line : splitter.feed(chunk)) {
      lines.push_back(std::move(line));
    }
  }
  return lines;
}

void check_lines(const Lines& got, const Lines& expected, const std::string& how_fed) {
  CHECK_MESSAGE(got == expected, "fed ", how_fed, ": expected ", show(expected), " but got ", show(got));
}

// A connection to the lesson's server that sends `bytes`, says it is done
// (shutdown SHUT_WR), and returns everything the server sent until it closed.
std::string exchange(std::uint16_t port, const std::string& bytes) {
  const Fd connection = lab::tcp_connect(Endpoint{"127.0.0.1", port});
  lab::set_receive_timeout(connection, 5000ms);
  lab::write_all(connection, bytes);
  ::shutdown(connection.get(), SHUT_WR);
  return lab::read_to_end(connection, 1 << 20);
}

// Like exchange, for a server that hangs up while we are still sending: it
// then resets the connection (close(2) with unread input sends RST), which
// ends the reading after the bytes it sent first.
std::string exchange_until_reset(std::uint16_t port, const std::string& bytes) {
  const Fd connection = lab::tcp_connect(Endpoint{"127.0.0.1", port});
  lab::set_receive_timeout(connection, 5000ms);
  try {
    lab::write_all(connection, bytes);
  } catch (const std::system_error&) {
    // EPIPE or ECONNRESET: the server is gone; read what it said first.
  }
  std::string received;
  try {
    while (auto chunk = lab::read_some(connection, 4096)) {
      received += *chunk;
    }
  } catch (const std::system_error&) {
  }
  return received;
}

}  // namespace

// ---- 03.1 ------------------------------------------------------------------

TEST_CASE("03.1 feed returns each whole line without its \\n or \\r\\n") {
  LineSplitter splitter;
  const Lines got = splitter.feed("date\r\nls -l\n\nbig\n");
  check_lines(got, {"date", "ls -l", "", "big"}, "\"date\\r\\nls -l\\n\\nbig\\n\" in one chunk");
  CHECK(splitter.pending() == 0);
}

TEST_CASE("03.1 feed gives the same lines wherever the stream is split (every position)") {
  const std::string stream = "date\nuname -a\r\n\nls -l\nbig\n";
  const Lines expected = {"date", "uname -a", "", "ls -l", "big"};
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    LineSplitter splitter;
    check_lines(feed_all(splitter, {stream.substr(0, cut), stream.substr(cut)}), expected,
                "split at byte " + std::to_string(cut));
  }
  for (std::size_t first = 0; first <= stream.size(); ++first) {
    for (std::size_t second = first; second <= stream.size(); ++second) {
      LineSplitter splitter;
      const Lines got = feed_all(
          splitter, {stream.substr(0, first), stream.substr(first, second - first), stream.substr(second)});
      if (got != expected) {
        check_lines(got, expected,
                    "in three pieces cut at " + std::to_string(first) + " and " + std::to_string(second));
        return;
      }
    }
  }
}

TEST_CASE("03.1 feed one byte at a time returns each line when its \\n arrives") {
  LineSplitter splitter;
  const std::string stream = "ab\ncd\r\n";
  std::vector<std::size_t> counts;
  Lines all;
  for (const char byte : stream) {
    Lines got = splitter.feed(std::string(1, byte));
    counts.push_back(got.size());
    all.insert(all.end(), got.begin(), got.end());
  }
  CHECK(counts == std::vector<std::size_t>{0, 0, 1, 0, 0, 0, 1});
  check_lines(all, {"ab", "cd"}, "one byte at a time");
}

TEST_CASE("03.1 feed keeps the partial tail pending across calls") {
  LineSplitter splitter;
  check_lines(splitter.feed("da"), {}, "\"da\"");
  CHECK(splitter.pending() == 2);
  check_lines(splitter.feed("te\nls"), {"date"}, "\"da\" then \"te\\nls\"");
  CHECK(splitter.pending() == 2);
  check_lines(splitter.feed(" -l\n"), {"ls -l"}, "then \" -l\\n\"");
  CHECK(splitter.pending() == 0);
  check_lines(splitter.feed(""), {}, "then an empty chunk");
}

TEST_CASE("03.1 feed treats NUL and bytes >= 0x80 as data, and only \\n as the end") {
  LineSplitter splitter;
  const std::string binary("a\0b\xff\r", 5);
  const Lines got = splitter.feed(binary + "\rc\n");
  REQUIRE_MESSAGE(got.size() == 1, "expected 1 line, got ", show(got));
  // Only the one "\r" right before "\n" goes; the others are data.
  CHECK(got[0] == binary + "\rc");
}

// ---- 03.2 ------------------------------------------------------------------

TEST_CASE("03.2 a line of exactly the limit passes, also as \\r\\n, at every split") {
  const std::string line(16, 'x');
  for (const std::string& stream : {line + "\n", line + "\r\n"}) {
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      LineSplitter splitter(16);
      check_lines(feed_all(splitter, {stream.substr(0, cut), stream.substr(cut)}), {line},
                  lab::preview(stream) + " with a limit of 16, split at " + std::to_string(cut));
    }
  }
}

TEST_CASE("03.2 feed refuses a complete line one byte over the limit") {
  LineSplitter splitter(16);
  CHECK_THROWS_WITH_AS(splitter.feed(std::string(17, 'x') + "\n"), doctest::Contains("line longer than 16 bytes"),
                       lab::ProtocolError);
  LineSplitter split_one(16);
  const Lines first = split_one.feed("ok\n" + std::string(10, 'y'));
  check_lines(first, {"ok"}, "\"ok\\n\" and 10 bytes");
  CHECK_THROWS_WITH_AS(split_one.feed(std::string(7, 'y') + "\n"), doctest::Contains("line longer than 16 bytes"),
                       lab::ProtocolError);
}

TEST_CASE("03.2 a peer that never sends \\n is refused before pending() passes the limit + 1") {
  LineSplitter splitter(64);
  std::size_t fed = 0;
  bool refused = false;
  for (; fed < 10000 && !refused; ++fed) {
    try {
      static_cast<void>(splitter.feed("z"));
    } catch (const lab::ProtocolError& error) {
      refused = true;
      CHECK(std::string(error.what()).find("line longer than 64 bytes") != std::string::npos);
    }
    REQUIRE_MESSAGE(splitter.pending() <= 65, "pending() grew to ", splitter.pending(), " bytes with a limit of 64");
  }
  CHECK_MESSAGE(refused, "fed ", fed, " bytes without a \\n and feed never refused them");
}

TEST_CASE("03.2 one chunk of 4 MiB without \\n is refused without being kept") {
  LineSplitter splitter(256);
  const std::string flood(4 << 20, 'A');
  CHECK_THROWS_AS(splitter.feed(flood), lab::ProtocolError);
  CHECK_MESSAGE(splitter.pending() <= 257, "pending() is ", splitter.pending(), " bytes after the refusal");
}

// ---- 03.3 ------------------------------------------------------------------

TEST_CASE("03.3 finish returns nullopt when the stream ends between lines") {
  LineSplitter fresh;
  CHECK_FALSE(fresh.finish().has_value());
  LineSplitter used;
  static_cast<void>(used.feed("date\nls -l\n"));
  CHECK_FALSE(used.finish().has_value());
}

TEST_CASE("03.3 finish refuses a last line cut short, saying how many bytes were left") {
  LineSplitter splitter;
  check_lines(splitter.feed("date\nunam"), {"date"}, "\"date\\nunam\"");
  CHECK_THROWS_WITH_AS(splitter.finish(), doctest::Contains("ended inside a line (4 bytes"), lab::ProtocolError);
}

TEST_CASE("03.3 finish counts a lone \\r as a cut-off line") {
  LineSplitter splitter;
  check_lines(splitter.feed("ls -l\r"), {}, "\"ls -l\\r\"");
  CHECK_THROWS_WITH_AS(splitter.finish(), doctest::Contains("(6 bytes"), lab::ProtocolError);
  LineSplitter only_cr;
  check_lines(only_cr.feed("\r"), {}, "\"\\r\"");
  CHECK_THROWS_WITH_AS(only_cr.finish(), doctest::Contains("(1 bytes"), lab::ProtocolError);
}

// ---- The pair, end to end --------------------------------------------------

TEST_CASE("03.p pair: the client shows a reply bleeding and three writes merged into one read") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto result = lab::testing::run({kClient, "--port", std::to_string(server.port())});
  INFO(result.describe());
  CHECK(result.status.success());
  const std::string& out = result.out;
  // Usually exactly 1024 bytes; TCP promises only "at least 1".
  CHECK(out.find("read 1 returned ") != std::string::npos);
  CHECK(out.find(" bytes: \"big line 0001\\n") != std::string::npos);
  CHECK(out.find("the 'reply to date' is more of the output of big") != std::string::npos);
  CHECK(out.find("write 3: sent 6 bytes \"reads\\n\"") != std::string::npos);
  CHECK(out.find("  | read #1: 20 bytes \"date\\nuname -a\\nreads\\n\"") != std::string::npos);
  CHECK(out.find("  | read #2") == std::string::npos);
}

TEST_CASE("03.p pair: replies are the raw output, and an unknown command gets the allowed list") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  CHECK(exchange(server.port(), "big\n") == lab::big_command_output());
  const std::string unknown = exchange(server.port(), "date; rm -rf ~\n");
  CHECK(unknown == "unknown command \"date; rm -rf ~\"; allowed: " + lab::allowed_command_names() + ", reads\n");
  const std::string failing = exchange(server.port(), "missing\n");
  CHECK(failing.find("/nonexistent/no-such-file") != std::string::npos);
  // Two commands in one write get two replies, back to back.
  CHECK(exchange(server.port(), "big\r\nbig\n") == lab::big_command_output() + lab::big_command_output());
}

TEST_CASE("03.p pair: an endless line, a cut-off line and garbage do not stop the server") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const std::string flood = exchange_until_reset(server.port(), std::string(100000, 'x'));
  CHECK(flood.find("error: line longer than 256 bytes") != std::string::npos);
  CHECK(exchange(server.port(), "big\nbi") == lab::big_command_output());
  const std::string garbage = exchange(server.port(), std::string("\x00\xff\x01\n", 4));
  CHECK(garbage.find("unknown command") != std::string::npos);
  CHECK(exchange(server.port(), "big\n") == lab::big_command_output());
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("ended inside a line (2 bytes") != std::string::npos, log);
  CHECK_MESSAGE(log.find("stopped after 4 client(s)") != std::string::npos, log);
}

TEST_CASE("03.p pair: a silent client is dropped after the idle timeout, and the next one is served") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "1"});
  INFO(server.stop_and_describe());
  const Fd silent = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  CHECK(exchange(server.port(), "big\n") == lab::big_command_output());
  lab::set_receive_timeout(silent, 5000ms);
  CHECK_FALSE(lab::read_some(silent, 100).has_value());  // the server closed it
}

TEST_CASE("03.p pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  // The same client must work once a server is there.
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto works = lab::testing::run({kClient, "--port", std::to_string(server.port()), "big"});
  INFO(works.describe());
  CHECK(works.status.success());
  CHECK(works.out.find("read 1 returned") != std::string::npos);
}
