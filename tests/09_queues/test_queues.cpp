// Graded tests of lesson 09 (lessons/09_queues/process_queue.hpp), and
// end-to-end tests of its job server and client. Built twice: against the
// student's process_queue.cpp (label "grade") and against solutions/09_queues
// (label "reference").
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "process_queue.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::queues::ProcessQueue;
using lab::queues::read_frame;
using lab::queues::write_frame;
namespace fs = std::filesystem;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

// The load: 4 producer processes x 10,000 messages to 4 consumers.
constexpr int kProducers = 4;
constexpr int kConsumers = 4;
constexpr int kMessagesEach = 10'000;

// A plain pipe, both ends owned: {read end, write end}.
std::pair<Fd, Fd> make_pipe() {
  int ends[2];
  REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
  return {Fd{ends[0]}, Fd{ends[1]}};
}

// While alive, SIGPIPE is ignored, so a write to a pipe without readers
// fails with EPIPE instead of killing the test program.
class IgnoreSigpipe {
 public:
  IgnoreSigpipe() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous_);
  }
  ~IgnoreSigpipe() { ::sigaction(SIGPIPE, &previous_, nullptr); }
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;

 private:
  struct sigaction previous_ {};
};

// Message `seq` of producer `producer`: "P:SEQ:" and then filler bytes that
// depend on both, of a size from 0 to about 3 x PIPE_BUF. Every tenth
// message is longer than PIPE_BUF (4096).
std::string message_for(int producer, int seq) {
  // The filler is a slice of one fixed pattern: cheap to make and to check.
  static const std::string pattern = [] {
    std::string bytes(256 + 16384, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>(i & 0xff);
    }
    return bytes;
  }();
  const std::size_t size = seq % 10 == 0 ? 4097 + static_cast<std::size_t>(seq * 37 % 8192)
                                         : static_cast<std::size_t>((seq * 13 + producer * 7) % 600);
  const auto offset = static_cast<std::size_t>((producer * 31 + seq * 7) & 0xff);
  return std::to_string(producer) + ":" + std::to_string(seq) + ":" + pattern.substr(offset, size);
}

// The (producer, seq) of a message, or {-1, -1} if it is not exactly what
// that producer put (truncated, mixed with another message, corrupted).
std::pair<int, int> identify(const std::string& message) {
  const auto colon1 = message.find(':');
  const auto colon2 = colon1 == std::string::npos ? colon1 : message.find(':', colon1 + 1);
  if (colon2 == std::string::npos || colon1 == 0 || colon1 > 3 || colon2 - colon1 > 7) {
    return {-1, -1};
  }
  const int producer = std::atoi(message.substr(0, colon1).c_str());
  const int seq = std::atoi(message.substr(colon1 + 1, colon2 - colon1 - 1).c_str());
  if (producer < 0 || producer >= 100 || seq < 0 || message != message_for(producer, seq)) {
    return {-1, -1};
  }
  return {producer, seq};
}

// A temporary directory for this test, removed with its contents.
class TempDir : public lab::testing::TempDir {
 public:
  TempDir() : lab::testing::TempDir("lab09-test") {}
};

}  // namespace

// ---- 09.1 frames over a pipe ---------------------------------------------------

TEST_CASE("09.1 frames round-trip through a pipe, an empty message included") {
  auto [reader, writer] = make_pipe();
  write_frame(writer, "hello");
  write_frame(writer, "");
  write_frame(writer, std::string("\0binary\xff", 8));
  CHECK(read_frame(reader) == std::optional<std::string>("hello"));
  CHECK(read_frame(reader) == std::optional<std::string>(""));
  CHECK(read_frame(reader) == std::optional<std::string>(std::string("\0binary\xff", 8)));
  writer.reset();
  CHECK_FALSE_MESSAGE(read_frame(reader).has_value(), "after the last frame and a closed writer, expected nullopt");
}

TEST_CASE("09.1 the header is 4 bytes, big-endian, then the payload") {
  auto [reader, writer] = make_pipe();
  write_frame(writer, std::string(258, 'x'));
  const auto raw = lab::read_exact(reader, 4 + 258);
  REQUIRE(raw);
  CHECK_MESSAGE(raw->substr(0, 4) == std::string("\x00\x00\x01\x02", 4),
                "a 258-byte message needs the header 00 00 01 02");
  CHECK(raw->substr(4) == std::string(258, 'x'));
}

TEST_CASE("09.1 a 300 KiB message, far above PIPE_BUF, arrives intact") {
  auto [reader, writer] = make_pipe();
  std::string big(300 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
  }
  // The pipe holds 64 KiB: the write must wait for the reader.
  auto writing = std::async(std::launch::async, [&writer = writer, &big] { write_frame(writer, big); });
  const auto got = read_frame(reader);
  writing.get();
  REQUIRE(got.has_value());
  CHECK(got->size() == big.size());
  CHECK_MESSAGE(*got == big, "the 300 KiB message came out changed");
}

TEST_CASE("09.1 read_frame refuses a hostile length without allocating it, and a truncated frame") {
  {
    auto [reader, writer] = make_pipe();
    write_frame(writer, "ok");  // so that a stub cannot pass this case
    REQUIRE(read_frame(reader) == std::optional<std::string>("ok"));
    lab::write_all(writer, std::string("\xff\xff\xff\xff", 4));  // "4 GiB follow"
    CHECK_THROWS_AS(read_frame(reader), lab::ProtocolError);
  }
  {
    auto [reader, writer] = make_pipe();
    lab::write_all(writer, std::string("\x00\x00\x00\x10" "only 9 b", 12));
    writer.reset();
    CHECK_THROWS_AS(read_frame(reader), lab::ProtocolError);
  }
  {
    auto [reader, writer] = make_pipe();
    lab::write_all(writer, std::string("\x00\x00", 2));  // half a header
    writer.reset();
    CHECK_THROWS_AS(read_frame(reader), lab::ProtocolError);
  }
}

TEST_CASE("09.1 write_frame refuses a message above kMaxMessage and writes nothing") {
  auto [reader, writer] = make_pipe();
  write_frame(writer, "first");
  const std::string huge(lab::queues::kMaxMessage + 1, 'h');
  CHECK_THROWS_AS(write_frame(writer, huge), std::length_error);
  write_frame(writer, "second");
  CHECK(read_frame(reader) == std::optional<std::string>("first"));
  CHECK_MESSAGE(read_frame(reader) == std::optional<std::string>("second"),
                "a refused message must leave no bytes in the pipe");
}

// ---- 09.2 exactly once, with many producers and consumers -------------------

TEST_CASE("09.2 put and get pass messages in order within one process") {
  ProcessQueue queue;
  CHECK(queue.capacity() >= 64 * 1024);
  queue.put("one");
  queue.put(std::string(5000, 'L'));
  queue.put("");
  CHECK(queue.get() == std::optional<std::string>("one"));
  CHECK(queue.get() == std::optional<std::string>(std::string(5000, 'L')));
  CHECK(queue.get() == std::optional<std::string>(""));
}

TEST_CASE("09.2 one producer process's messages reach one consumer in order, intact") {
  ProcessQueue queue;
  queue.put(message_for(0, 0));  // so that a stub fails here, in this process
  REQUIRE(identify(*queue.get()) == std::make_pair(0, 0));
  lab::ForkedChildren producer;
  producer.start([&queue] {
    queue.producer_only();
    for (int seq = 1; seq <= 2000; ++seq) {
      queue.put(message_for(0, seq));
    }
    queue.close();
    return 0;
  });
  queue.consumer_only();
  for (int seq = 1; seq <= 2000; ++seq) {
    const auto message = queue.get();
    REQUIRE_MESSAGE(message.has_value(), "the stream ended after ", seq - 1, " of 2000 messages");
    REQUIRE_MESSAGE(identify(*message) == std::make_pair(0, seq), "message ", seq, " came out wrong");
  }
  CHECK_FALSE(queue.get().has_value());
  CHECK(producer.wait_all(5s).at(0).success());
}

TEST_CASE("09.2 4 producer processes x 10,000 messages to 4 consumer processes: each delivered once, intact") {
  ProcessQueue queue;
  queue.put(message_for(0, 0));  // so that a stub fails here, in this process
  REQUIRE(queue.get().has_value());
  TempDir dir;
  lab::ForkedChildren processes;
  // Each consumer writes the (producer, seq) of every message it got to its
  // own file; exit status 0 = every message intact, 1 = a damaged one.
  for (int c = 0; c < kConsumers; ++c) {
    processes.start([&queue, &dir, c] {
      queue.consumer_only();
      std::ofstream out(dir.path() / ("consumer" + std::to_string(c)));
      while (const auto message = queue.get()) {
        const auto [producer, seq] = identify(*message);
        if (producer < 0) {
          return 1;
        }
        out << producer << ' ' << seq << '\n';
      }
      return out.good() ? 0 : 2;
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    processes.start([&queue, p] {
      queue.producer_only();
      for (int seq = 0; seq < kMessagesEach; ++seq) {
        queue.put(message_for(p, seq));
      }
      queue.close();
      return 0;
    });
  }
  queue.close();  // this process puts nothing more: end of stream can come
  queue.consumer_only();
  const auto statuses = processes.wait_all(8s);
  for (int c = 0; c < kConsumers; ++c) {
    CHECK_MESSAGE(statuses[static_cast<std::size_t>(c)].success(), "consumer ", c, " ",
                  statuses[static_cast<std::size_t>(c)].to_string(), " (1: a message came out damaged or mixed)");
  }
  std::vector<int> times(kProducers * kMessagesEach, 0);
  for (int c = 0; c < kConsumers; ++c) {
    std::ifstream in(dir.path() / ("consumer" + std::to_string(c)));
    int producer = 0;
    int seq = 0;
    while (in >> producer >> seq) {
      ++times[static_cast<std::size_t>(producer * kMessagesEach + seq)];
    }
  }
  const auto lost = std::count(times.begin(), times.end(), 0);
  const auto twice = std::count_if(times.begin(), times.end(), [](int n) { return n > 1; });
  CHECK_MESSAGE(lost == 0, lost, " of ", times.size(), " messages never arrived");
  CHECK_MESSAGE(twice == 0, twice, " messages arrived more than once");
  CHECK(lab::testing::child_pids().empty());
}

// ---- 09.3 a clear end of stream --------------------------------------------------

TEST_CASE("09.3 get drains what is queued, then returns nullopt once the only producer closes") {
  ProcessQueue queue;
  queue.put("a");
  queue.put("b");
  queue.close();
  CHECK(queue.get() == std::optional<std::string>("a"));
  CHECK(queue.get() == std::optional<std::string>("b"));
  CHECK_FALSE_MESSAGE(queue.get().has_value(), "after close and drain, get must return nullopt");
  CHECK_NOTHROW(queue.close());  // twice: harmless
  CHECK_THROWS_AS(queue.put("late"), std::logic_error);
}

TEST_CASE("09.3 end of stream comes only when every producer process has closed") {
  ProcessQueue queue;
  queue.put("warm-up");  // so that a stub fails here, in this process
  REQUIRE(queue.get().has_value());
  // The consumer runs in a child, so that a missing close (get waiting for
  // ever) becomes a clear timeout instead of a hung test.
  lab::ForkedChildren processes;
  for (int p = 0; p < 3; ++p) {
    processes.start([&queue, p] {
      queue.producer_only();
      queue.put("from " + std::to_string(p));
      queue.close();
      return 0;
    });
  }
  processes.start([&queue] {
    queue.consumer_only();
    int got = 0;
    while (queue.get()) {
      ++got;
    }
    return got;
  });
  queue.close();          // the parent's write end: without this, no end of stream
  queue.producer_only();  // and the parent reads nothing either
  std::vector<lab::ExitStatus> statuses;
  try {
    statuses = processes.wait_all(5s);
  } catch (const lab::TimeoutError&) {
    FAIL("the consumer never saw the end of stream: some process still holds a write end");
  }
  CHECK_MESSAGE((statuses.back() == lab::ExitStatus{3, 0}), "the consumer ", statuses.back().to_string(),
                " (its exit code is the number of messages it got; expected 3)");
}

TEST_CASE("09.3 a producer whose consumers are all gone gets EPIPE, not a hang") {
  const IgnoreSigpipe ignore;
  ProcessQueue queue;
  queue.put("x");
  REQUIRE(queue.get().has_value());
  lab::ForkedChildren consumer;
  consumer.start([&queue] {
    queue.consumer_only();
    return queue.get() ? 0 : 1;  // takes one message and leaves
  });
  queue.producer_only();  // the parent's read end goes: only the child reads
  queue.put("for the consumer");
  REQUIRE(consumer.wait_all(5s).at(0).success());
  try {
    for (int i = 0; i < 100; ++i) {
      queue.put(std::string(1000, 'z'));
    }
    FAIL("put succeeded with no reader left anywhere");
  } catch (const std::system_error& error) {
    CHECK_MESSAGE(error.code() == std::errc::broken_pipe, "expected EPIPE, got ", error.what());
  }
}

// ---- The pair, end to end --------------------------------------------------------

TEST_CASE("09.p pair: 500 jobs of varied sizes come back exactly once and correct") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "4"});
  INFO(server.stop_and_describe());
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--jobs", "500", "--max-size", "20000"}, "", 9s);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("500 jobs sent, 500 results, each exactly once and correct") != std::string::npos);
  CHECK(result.out.find("worker process(es) shared the work") != std::string::npos);
}

TEST_CASE("09.p pair: a malformed job and a hostile length get an error, and the server goes on") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const lab::Endpoint endpoint{"127.0.0.1", server.port()};
  {
    const Fd rude = lab::tcp_connect(endpoint);
    write_frame(rude, "no-id-here");
    ::shutdown(rude.get(), SHUT_WR);
    lab::set_receive_timeout(rude, 5000ms);
    const auto reply = read_frame(rude);
    REQUIRE(reply.has_value());
    CHECK_MESSAGE(reply->rfind("error: ", 0) == 0, "reply to a malformed job: ", *reply);
  }
  {
    const Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, std::string("\x7f\xff\xff\xff", 4));
    ::shutdown(rude.get(), SHUT_WR);
    lab::set_receive_timeout(rude, 5000ms);
    const auto reply = read_frame(rude);
    REQUIRE(reply.has_value());
    CHECK_MESSAGE(reply->rfind("error: ", 0) == 0, "reply to a 2 GiB length: ", *reply);
  }
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--jobs", "50"}, "", 8s);
  INFO(result.describe());
  CHECK(result.status.success());
}

TEST_CASE("09.p pair: SIGTERM stops the server with status 0, and its workers with it") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "3"});
  INFO(server.stop_and_describe());
  const auto result = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--jobs", "100"});
  INFO(result.describe());
  REQUIRE(result.status.success());
  // A client that connects and stays: the server now has workers waiting.
  const Fd waiting = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  write_frame(waiting, "1 started");
  lab::set_receive_timeout(waiting, 5000ms);
  const auto first = read_frame(waiting);
  REQUIRE(first.has_value());
  CHECK(first->find(" STARTED") != std::string::npos);
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  CHECK(lab::testing::child_pids().empty());
  // Every process that held the connection has ended: the client sees the end.
  CHECK_FALSE_MESSAGE(read_frame(waiting).has_value(), "a worker or the feeder still holds the connection");
}

TEST_CASE("09.p pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto works = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--jobs", "10"});
  INFO(works.describe());
  CHECK(works.out.find("10 jobs sent, 10 results") != std::string::npos);
}
