// Hostile clients against the reference servers: every server must outlast
// them and then serve a normal client correctly.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/testing.hpp"
#include "hostile.hpp"
#include "struct_header.hpp"

using namespace std::chrono_literals;
using lab::testing::ServerProcess;
using namespace hostile;

namespace {

// The normal client of lesson 02, with how long it had to wait.
std::chrono::milliseconds greet_02(const ServerProcess& server) {
  const auto started = std::chrono::steady_clock::now();
  const lab::Fd socket = connect_to(server);
  REQUIRE(read_until(socket, "Welcome!", 8s) == "Welcome!");
  lab::write_all(socket, "Ann");
  CHECK(read_until(socket, "Hello, Ann!", 3s) == "Hello, Ann!");
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

// The normal client of lesson 10: two items, one with a CRLF ending.
void produce_10(const ServerProcess& server) {
  const lab::Fd socket = connect_to(server);
  lab::write_all(socket, "40\r\n2\n");
  ::shutdown(socket.get(), SHUT_WR);
  const std::string report = read_until(socket, "times\n", 8s);
  CHECK(report.find("total: 2 items, sum 42,") != std::string::npos);
}

}  // namespace

TEST_CASE("02: a silent client is dropped after --idle-timeout and the next client is served") {
  auto server = ServerProcess::start(program("02_tcp"), {"--idle-timeout", "1"});
  const lab::Fd silent = connect_to(server);
  REQUIRE(read_until(silent, "Welcome!", 3s) == "Welcome!");
  const auto waited = greet_02(server);  // queued behind the silent one
  CHECK(waited >= 500ms);
  CHECK(waited < 3s);
  CHECK(closed_by_server(silent, 1s));
  stop_cleanly(server);
}

TEST_CASE("02: a storm of 1000 connections at once is served in full, in bounded time, then a normal client") {
  auto server = ServerProcess::start(program("02_tcp"), {"--idle-timeout", "2"});
  const OutputDrain drain(server);
  const DescriptorLimit limit(1100);
  const auto began = std::chrono::steady_clock::now();
  std::vector<lab::Fd> storm;
  for (int i = 0; i < 1000; ++i) {
    storm.push_back(connect_to(server));
  }
  std::size_t welcomed = 0;
  for (lab::Fd& client : storm) {  // the server takes them one at a time, in order
    welcomed += read_until(client, "Welcome!", 3s) == "Welcome!" ? 1 : 0;
    client.reset();
  }
  CHECK(welcomed == storm.size());
  CHECK(std::chrono::steady_clock::now() - began < 20s);
  greet_02(server);
  stop_cleanly(server);
}

TEST_CASE("03: a client trickling one byte at a time is dropped by the request deadline") {
  auto server = ServerProcess::start(program("03_sticky_packets"), {"--idle-timeout", "1", "--request-timeout", "1.5"});
  const lab::Fd trickler = connect_to(server);
  const auto started = std::chrono::steady_clock::now();
  bool dropped = false;
  for (int i = 0; i < 40 && !dropped; ++i) {  // 40 x 100 ms: far beyond the deadline
    try {
      lab::write_all(trickler, "d");
    } catch (const std::system_error&) {
      dropped = true;  // the server has closed it: the write failed
      break;
    }
    lab::StopSignal never;
    if (lab::wait_readable(trickler.get(), never, 100ms)) {
      dropped = closed_by_server(trickler, 100ms);
    }
  }
  CHECK(dropped);
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  const lab::Fd normal = connect_to(server);
  lab::write_all(normal, "reads\n");
  CHECK(read_until(normal, "read #1", 3s).find("read #1: 6 bytes") != std::string::npos);
  stop_cleanly(server);
}

TEST_CASE("03: a client that never reads its replies is dropped, and a normal client is served") {
  auto server = ServerProcess::start(program("03_sticky_packets"), {"--idle-timeout", "1", "--request-timeout", "5"});
  const lab::Fd deaf = connect_to(server);
  lab::testing::set_buffer_sizes(deaf, 4096, 4096);
  // Forty "big" commands: 560 kB of replies that nobody reads, far beyond
  // what the kernel buffers between us.
  std::string requests;
  for (int i = 0; i < 40; ++i) {
    requests += "big\n";
  }
  lab::write_all(deaf, requests);
  const auto started = std::chrono::steady_clock::now();
  const lab::Fd normal = connect_to(server);
  lab::write_all(normal, "reads\n");
  CHECK(read_until(normal, "read #1", 8s).find("read #1: 6 bytes") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  stop_cleanly(server);
}

TEST_CASE("10: garbage, a wrapping sum and a silent client are refused, and CRLF lines are accepted") {
  auto server = ServerProcess::start(program("10_producer_consumer"), {"--idle-timeout", "1", "--request-timeout", "3"});
  {
    const lab::Fd garbage = connect_to(server);
    lab::write_all(garbage, std::string("12\n\x01\xff garbage\n", 14));
    CHECK(read_until(garbage, "\n", 3s).rfind("error: not a number", 0) == 0);
  }
  {
    const lab::Fd wrapping = connect_to(server);
    lab::write_all(wrapping, "18446744073709551615\n1\n");
    ::shutdown(wrapping.get(), SHUT_WR);
    CHECK(read_until(wrapping, "\n", 3s) == "error: the sum does not fit in 64 bits\n");
  }
  {
    const lab::Fd long_line = connect_to(server);
    lab::write_all(long_line, std::string(100, '7'));
    CHECK(read_until(long_line, "\n", 3s).rfind("error: a line longer than", 0) == 0);
  }
  const lab::Fd silent = connect_to(server);
  const auto started = std::chrono::steady_clock::now();
  produce_10(server);  // waits behind the silent one for its idle deadline
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  CHECK(closed_by_server(silent, 1s));
  stop_cleanly(server);
}

TEST_CASE("10: a producer trickling items, never silent for long, is dropped by the request deadline") {
  auto server = ServerProcess::start(program("10_producer_consumer"), {"--idle-timeout", "1", "--request-timeout", "1"});
  const lab::Fd trickler = connect_to(server);
  bool dropped = false;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 40 && !dropped; ++i) {
    try {
      lab::write_all(trickler, "1\n");
    } catch (const std::system_error&) {
      dropped = true;
      break;
    }
    lab::StopSignal never;
    if (lab::wait_readable(trickler.get(), never, 100ms)) {
      dropped = read_until(trickler, "\n", 1s).rfind("error: request timeout", 0) == 0;
    }
  }
  CHECK(dropped);
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  produce_10(server);
  stop_cleanly(server);
}

TEST_CASE("08: SIGTERM to one buyer process ends that buyer only, and ended buyers are reaped at once") {
  auto server = ServerProcess::start(program("08_locks"), {"--tickets", "5", "--race-us", "0"});
  const lab::Fd buyer = connect_to(server);
  lab::write_all(buyer, "check\n");
  REQUIRE(read_until(buyer, "\n", 3s) == "left 5\n");
  const std::vector<int> children = lab::testing::child_pids();  // ours: none but the server
  REQUIRE(children.size() == 1);
  // The buyer process is the server's only child.
  const auto server_children = [&] {
    const lab::testing::ProgramResult listing = lab::testing::run(
        {"cat", "/proc/" + std::to_string(server.child().pid()) + "/task/" +
                    std::to_string(server.child().pid()) + "/children"});
    return listing.out;
  };
  const std::string buyer_pid = server_children();
  REQUIRE_FALSE(buyer_pid.empty());
  REQUIRE(::kill(std::stoi(buyer_pid), SIGTERM) == 0);
  CHECK(closed_by_server(buyer, 2s));
  // Reaped without another client coming: no zombie left.
  const auto started = std::chrono::steady_clock::now();
  while (!server_children().empty() && std::chrono::steady_clock::now() - started < 2s) {
    std::this_thread::sleep_for(20ms);  // polling /proc for a state, not waiting for one to come
  }
  CHECK(server_children().empty());
  const lab::Fd normal = connect_to(server);
  lab::write_all(normal, "buy\n");
  CHECK(read_until(normal, "\n", 3s) == "bought, 4 left\n");
  stop_cleanly(server);
}

TEST_CASE("08: with few descriptors, a crowd of idle clients neither ends the server nor is lost") {
  // The server's descriptor limit is lowered for it alone: set here, inherited across fork and exec.
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 24;
  std::optional<ServerProcess> started;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  try {
    started.emplace(ServerProcess::start(program("08_locks"), {"--tickets", "100", "--idle-timeout", "1"}));
  } catch (...) {
    ::setrlimit(RLIMIT_NOFILE, &saved);
    throw;
  }
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  ServerProcess& server = *started;
  std::vector<lab::Fd> crowd;
  for (int i = 0; i < 40; ++i) {
    crowd.push_back(connect_to(server));  // more than the server has descriptors for
  }
  // Each gets an answer: served, or turned away with a reason when the
  // server has no descriptor left for it (never a silent reset).
  std::size_t answered = 0;
  for (lab::Fd& client : crowd) {
    lab::write_all(client, "check\n");
  }
  for (lab::Fd& client : crowd) {
    const std::string reply = read_until(client, "\n", 10s);
    const bool expected = reply == "left 100\n" || reply == "error: the office is full, try again later\n";
    CHECK_MESSAGE(expected, "reply: '", reply, "'");
    answered += expected ? 1 : 0;
    client.reset();
  }
  CHECK(answered == crowd.size());
  // The crowd has hung up; its buyer processes end and are reaped, giving
  // their descriptors back. Wait for that state, or the normal client may
  // still find the office full.
  CHECK(wait_for_children(server, 0, 3s));
  const lab::Fd normal = connect_to(server);
  lab::write_all(normal, "buy\n");
  CHECK(read_until(normal, "\n", 5s) == "bought, 99 left\n");
  stop_cleanly(server);
}

namespace {

namespace sh = lab::struct_header;

// A file of `size` bytes that neither repeats nor compresses.
void write_file(const std::string& path, std::size_t size) {
  std::string bytes(size, '\0');
  std::uint32_t state = 0x2545F491;
  for (char& byte : bytes) {
    state = state * 1664525 + 1013904223;
    byte = static_cast<char>(state >> 24);
  }
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The first `size` bytes of a file (all of it if it is shorter).
std::string read_file(const std::string& path, std::size_t size = std::string::npos) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  std::copy_n(std::istreambuf_iterator<char>(in),
              std::min(size, static_cast<std::size_t>(std::filesystem::file_size(path))), std::back_inserter(bytes));
  return bytes;
}

// The process state letter in /proc/PID/stat: 'R' running, 'S' asleep.
char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto after_name = line.rfind(") ");
  return after_name == std::string::npos ? '?' : line[after_name + 2];
}

}  // namespace

TEST_CASE("04: a file that grows while it is served arrives as the bytes that were announced and hashed") {
  lab::testing::TempDir temp("hostile04");
  std::filesystem::create_directory(temp.path() / "served");
  std::filesystem::create_directory(temp.path() / "saved");
  const std::string served = (temp.path() / "served" / "growing.log").string();
  // Not a whole number of 64 KiB chunks: the last chunk read is a short one,
  // which is where a server that hashes "whatever the read returned" takes
  // in bytes it is not going to send.
  write_file(served, 8 * 1024 * 1024 + 1000);
  auto server = ServerProcess::start(program("04_struct_header"), {"--dir", (temp.path() / "served").string()});

  // A writer appends to the file all the time the downloads run, like a
  // log; it stops when `writer` goes (std::jthread requests the stop and
  // joins), also when a check below throws.
  const lab::Fd log{::open(served.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)};
  REQUIRE(log);
  std::jthread writer([&log](const std::stop_token& stop) {
    // Bounded: at most 1 MiB more, however long the downloads take.
    for (int line = 0; line < 100'000 && !stop.stop_requested(); ++line) {
      lab::write_all(log, "grown\n");
    }
  });
  const lab::Fd connection = connect_to(server);
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    const sh::Download saved = sh::download_file(connection, "growing.log", temp.path() / "saved");
    const std::string got = read_file(saved.path.string());
    REQUIRE(got.size() == saved.size);
    CHECK(read_file(served, got.size()) == got);
  }
  writer.request_stop();
  writer.join();
  stop_cleanly(server);
}

TEST_CASE("04: SIGTERM ends the server within 1 s in the middle of a download to a client that stopped reading") {
  lab::testing::TempDir temp("hostile04");
  write_file(temp.file("big.bin"), 64 * 1024 * 1024);
  auto server = ServerProcess::start(program("04_struct_header"), {"--dir", temp.str()});
  const lab::Fd connection = connect_to(server);
  sh::send_frame(connection, sh::kTypeGet, "big.bin");
  const auto info = sh::recv_frame(connection);
  REQUIRE(info);
  REQUIRE(info->type == sh::kTypeFileInfo);
  REQUIRE(sh::recv_frame(connection));  // the data has started; now we stop reading
  // Wait (bounded) until the server sleeps: our receive buffer and its send
  // buffer are full, so it is blocked sending to us.
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (process_state(server.child().pid()) != 'S' && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  REQUIRE(process_state(server.child().pid()) == 'S');
  stop_cleanly(server);
}
