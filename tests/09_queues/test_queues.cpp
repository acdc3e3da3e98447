// Graded tests of lesson 09 (lessons/09_queues/process_queue.hpp), and
// end-to-end tests of its job server and client. Built twice: against the
// student's process_queue.cpp (label "grade") and against solutions/09_queues
// (label "reference").
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/testing.hpp"
#include "process_queue.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::testing::asleep_in;
using lab::testing::Task;
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

// True if `fd` reports end of stream at once: no write end is open anywhere.
bool at_end_of_stream(const Fd& fd) {
  pollfd entry{fd.get(), POLLIN, 0};
  return ::poll(&entry, 1, 0) == 1 && (entry.revents & POLLHUP) != 0;
}

// read_frame on `reader` while `writing` writes a frame too big for the
// pipe. Neither side may be left waiting: once the read returns (or fails)
// the read end is closed, so a writer still blocked (the frame was not read
// whole) fails with EPIPE, reported here, instead of hanging the case.
std::optional<std::string> read_whole_or_fail_the_writer(Fd& reader, std::future<void>& writing) {
  std::optional<std::string> got;
  try {
    got = read_frame(reader);
  } catch (...) {
    reader.reset();
    (void)writing.wait_for(5s);
    throw;
  }
  reader.reset();
  try {
    writing.get();
  } catch (const std::system_error& error) {
    FAIL("read_frame returned before the whole frame was read (", got ? got->size() : 0,
         " bytes), and the writer then failed: ", error.what());
  }
  return got;
}

// The tests' own hands on a queue's pipe, so that a case of 09.2 does not
// depend on 09.3's close/producer_only/consumer_only, nor a case of 09.3 on
// 09.2's put and get.
//
// The write end: the other descriptor of this process on the same pipe as
// read_end(), open for writing (/proc/self/fd).
int write_end_of(const ProcessQueue& queue) {
  const int read_fd = queue.read_end().get();
  const fs::path pipe = fs::read_symlink("/proc/self/fd/" + std::to_string(read_fd));
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    std::error_code error;
    if (fd != read_fd && fs::read_symlink(entry.path(), error) == pipe && !error &&
        (::fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY) {
      return fd;
    }
  }
  FAIL("the queue's write end is not among this process's descriptors");
  return -1;
}

// Gives up descriptor `fd` of the queue: it now names /dev/null (dup3 closes
// the pipe's end), and the queue's Fd closes that in its own time.
void give_up(int fd) {
  const Fd null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  REQUIRE(null);
  REQUIRE(::dup3(null.get(), fd, O_CLOEXEC) == fd);
}

// One frame written with the test's own code: 4-byte big-endian length,
// then the payload, in one write. Throws std::system_error (EPIPE, ...).
void put_frame(int fd, std::string_view message) {
  const auto length = static_cast<std::uint32_t>(message.size());
  std::string frame{static_cast<char>(length >> 24), static_cast<char>((length >> 16) & 0xff),
                    static_cast<char>((length >> 8) & 0xff), static_cast<char>(length & 0xff)};
  frame.append(message);
  std::string_view rest = frame;
  while (!rest.empty()) {
    const ssize_t written = ::write(fd, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written < 0) {
      throw std::system_error(errno, std::generic_category(), "write");
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
}

// One frame read with the test's own code; nullopt at a clean end.
std::optional<std::string> get_frame(const Fd& read_end) {
  const auto header = lab::read_exact(read_end, 4);
  if (!header) {
    return std::nullopt;
  }
  const auto byte = [&header](std::size_t i) { return std::uint32_t{static_cast<unsigned char>((*header)[i])}; };
  const std::uint32_t length = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  REQUIRE(length <= lab::queues::kMaxMessage);
  if (length == 0) {
    return std::string();
  }
  auto payload = lab::read_exact(read_end, length);
  REQUIRE(payload);
  return payload;
}

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
  const IgnoreSigpipe ignore;
  auto writing = std::async(std::launch::async, [&writer = writer, &big] { write_frame(writer, big); });
  const auto got = read_whole_or_fail_the_writer(reader, writing);
  REQUIRE(got.has_value());
  CHECK(got->size() == big.size());
  CHECK_MESSAGE(*got == big, "the 300 KiB message came out changed");
}

TEST_CASE("09.1 write_frame puts a frame up to PIPE_BUF into the pipe in one write") {
  // A "packet mode" pipe (pipe(2), O_DIRECT) keeps each write(2) a packet of
  // its own, and a read returns one packet: a header written apart from its
  // payload comes out as 4 bytes alone.
  int ends[2];
  REQUIRE(::pipe2(ends, O_CLOEXEC | O_DIRECT) == 0);
  const Fd reader{ends[0]};
  const Fd writer{ends[1]};
  for (const std::size_t size : {std::size_t{100}, std::size_t{4092}}) {
    CAPTURE(size);
    write_frame(writer, std::string(size, 'p'));
    std::string packet(8192, '\0');
    const ssize_t got = ::read(reader.get(), packet.data(), packet.size());
    CHECK_MESSAGE(got == static_cast<ssize_t>(size + 4), "the first write(2) of the frame carried ", got,
                  " bytes: build header + payload in one buffer and write it once");
    while (got >= 0 && static_cast<std::size_t>(got) < size + 4) {  // drain the rest of a split frame
      pollfd entry{reader.get(), POLLIN, 0};
      if (::poll(&entry, 1, 0) != 1 || ::read(reader.get(), packet.data(), packet.size()) <= 0) {
        break;
      }
    }
  }
}

TEST_CASE("09.1 a message of exactly kMaxMessage bytes is allowed both ways") {
  auto [reader, writer] = make_pipe();
  const IgnoreSigpipe ignore;
  const std::string largest(lab::queues::kMaxMessage, 'm');
  auto writing = std::async(std::launch::async, [&writer = writer, &largest] {
    try {
      write_frame(writer, largest);
    } catch (...) {
      writer.reset();  // the reader sees the end instead of waiting for ever
      throw;
    }
  });
  const auto got = read_whole_or_fail_the_writer(reader, writing);
  REQUIRE(got.has_value());
  CHECK(got->size() == lab::queues::kMaxMessage);
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
  {
    auto [reader, writer] = make_pipe();
    lab::write_all(writer, std::string("\x00\x00\x00\x05", 4));  // a header, and no payload at all
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
  const int read_fd = queue.read_end().get();
  const int write_fd = write_end_of(queue);
  lab::ForkedChildren producer;
  producer.start([&queue, read_fd] {
    give_up(read_fd);  // a producer only
    for (int seq = 1; seq <= 2000; ++seq) {
      queue.put(message_for(0, seq));
    }
    return 0;  // its write end closes as it exits
  });
  give_up(write_fd);  // this process only reads
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
  const int read_fd = queue.read_end().get();
  const int write_fd = write_end_of(queue);
  TempDir dir;
  lab::ForkedChildren processes;
  // Each consumer writes the (producer, seq) of every message it got to its
  // own file; exit status 0 = every message intact, 1 = a damaged one.
  for (int c = 0; c < kConsumers; ++c) {
    processes.start([&queue, &dir, c, write_fd] {
      give_up(write_fd);  // a consumer only
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
    processes.start([&queue, p, read_fd] {
      give_up(read_fd);  // a producer only
      for (int seq = 0; seq < kMessagesEach; ++seq) {
        queue.put(message_for(p, seq));
      }
      return 0;  // its write end closes as it exits
    });
  }
  // This process neither puts nor gets: the end of stream can come, and if
  // every consumer stops early the producers get EPIPE instead of waiting.
  give_up(write_fd);
  give_up(read_fd);
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
  const int write_fd = write_end_of(queue);
  put_frame(write_fd, "a");
  put_frame(write_fd, "b");
  queue.close();
  CHECK(get_frame(queue.read_end()) == std::optional<std::string>("a"));
  CHECK(get_frame(queue.read_end()) == std::optional<std::string>("b"));
  // A write end still open here would make the next read wait for ever.
  REQUIRE_MESSAGE(at_end_of_stream(queue.read_end()), "after close and drain the pipe shows no end of stream");
  CHECK_FALSE_MESSAGE(get_frame(queue.read_end()).has_value(), "after close and drain, the stream must end");
  CHECK_NOTHROW(queue.close());  // twice: harmless
  CHECK_THROWS_AS(queue.put("late"), std::logic_error);
}

TEST_CASE("09.3 consumer_only and close give up this process's write end, producer_only its read end") {
  {
    ProcessQueue queue;
    const int before = lab::testing::open_fd_count();
    queue.consumer_only();
    CHECK_MESSAGE(lab::testing::open_fd_count() == before - 1, "consumer_only must close one descriptor");
    CHECK_MESSAGE(at_end_of_stream(queue.read_end()),
                  "after consumer_only the write end is still open here: get would never see the end");
  }
  {
    ProcessQueue queue;
    const int before = lab::testing::open_fd_count();
    queue.producer_only();
    CHECK_MESSAGE(lab::testing::open_fd_count() == before - 1, "producer_only must close one descriptor");
    CHECK_MESSAGE(!queue.read_end(), "after producer_only this process must hold no read end");
  }
  {
    ProcessQueue queue;
    const int before = lab::testing::open_fd_count();
    queue.close();
    CHECK_MESSAGE(lab::testing::open_fd_count() == before - 1, "close must close one descriptor");
    CHECK_MESSAGE(at_end_of_stream(queue.read_end()),
                  "after close the write end is still open here: get would never see the end");
    queue.close();
    CHECK(lab::testing::open_fd_count() == before - 1);
  }
}

TEST_CASE("09.3 end of stream comes only when every producer process has closed") {
  ProcessQueue warm_up;
  warm_up.close();  // so that a stub fails here, in this process
  ProcessQueue queue;
  const int write_fd = write_end_of(queue);
  // The consumer runs in a child, so that a missing close (get waiting for
  // ever) becomes a clear timeout instead of a hung test.
  lab::ForkedChildren processes;
  for (int p = 0; p < 3; ++p) {
    processes.start([&queue, p, write_fd] {
      queue.producer_only();
      put_frame(write_fd, "from " + std::to_string(p));
      queue.close();
      return 0;
    });
  }
  processes.start([&queue] {
    queue.consumer_only();
    int got = 0;
    while (get_frame(queue.read_end())) {
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
  ProcessQueue warm_up;
  warm_up.close();  // so that a stub fails here, in this process
  ProcessQueue queue;
  const int write_fd = write_end_of(queue);
  lab::ForkedChildren consumer;
  consumer.start([&queue] {
    queue.consumer_only();
    return get_frame(queue.read_end()) ? 0 : 1;  // takes one message and leaves
  });
  queue.producer_only();  // the parent's read end goes: only the child reads
  // A read end still open here would make the writes below fill the pipe and wait for ever.
  REQUIRE_MESSAGE(!queue.read_end(), "producer_only left this process a read end");
  put_frame(write_fd, "for the consumer");
  REQUIRE(consumer.wait_all(5s).at(0).success());
  try {
    for (int i = 0; i < 100; ++i) {
      put_frame(write_fd, std::string(1000, 'z'));
    }
    FAIL("a write succeeded with no reader left anywhere");
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

namespace {

// Reads the server's frames until its last one ("done N" or "error: ...");
// each frame read within 5 s, or the case fails instead of hanging.
std::vector<std::string> frames_until_the_end(const Fd& connection) {
  lab::set_receive_timeout(connection, 5000ms);
  std::vector<std::string> frames;
  while (const auto frame = read_frame(connection)) {
    frames.push_back(*frame);
    if (frame->rfind("done ", 0) == 0 || frame->rfind("error: ", 0) == 0) {
      break;
    }
  }
  return frames;
}

// The worker pid in a result "ID PID TEXT".
int worker_of(const std::string& result) {
  const auto first = result.find(' ');
  REQUIRE(first != std::string::npos);
  return std::atoi(result.c_str() + first + 1);
}

// A stand-in for the server, listening on 127.0.0.1 (port 0), that the
// client under test connects to.
struct FakeServer {
  Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  [[nodiscard]] std::string port() const {
    return std::to_string(lab::SocketAddress::local_of(listener.get()).port());
  }
  // The client's connection, within 5 s.
  [[nodiscard]] Fd accept() const {
    lab::StopSignal never;
    REQUIRE(lab::wait_readable(listener.get(), never, 5000ms));
    auto client = lab::accept_client(listener, never);
    REQUIRE(client.has_value());
    return std::move(client->socket);
  }
};

// A client sending far more than the socket buffers hold: its sender thread
// is soon blocked in send(2), as a client is when a server stops reading.
lab::Child start_busy_client(const FakeServer& fake) {
  return lab::Child::spawn({kClient, "--port", fake.port(), "--jobs", "100000", "--max-size", "20000"});
}

}  // namespace

TEST_CASE("09.p pair: a result too long for a frame comes back as an error for its job, and the server goes on") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "2"});
  INFO(server.stop_and_describe());
  {
    const Fd client = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
    // The job fills a frame; its result adds the worker's pid and a space.
    write_frame(client, "1 " + std::string(lab::queues::kMaxMessage - 2, 'x'));
    write_frame(client, "2 small");
    ::shutdown(client.get(), SHUT_WR);
    const auto frames = frames_until_the_end(client);
    INFO("frames: ", frames.size(), ", the last: ", frames.empty() ? "" : frames.back().substr(0, 80));
    const auto error_for_1 =
        std::find_if(frames.begin(), frames.end(), [](const std::string& f) { return f.rfind("1 error: ", 0) == 0; });
    CHECK_MESSAGE(error_for_1 != frames.end(), "no '1 error: ...' frame for the job whose result is too long");
    CHECK(std::count_if(frames.begin(), frames.end(),
                        [](const std::string& f) { return f.rfind("2 ", 0) == 0 && f.ends_with(" SMALL"); }) == 1);
    CHECK(!frames.empty());
    CHECK(frames.back() == "done 2");
  }
  const auto result = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--jobs", "50"}, "", 8s);
  INFO(result.describe());
  CHECK(result.status.success());
}

TEST_CASE("09.p pair: a worker killed while it waits for work is replaced, and the client's jobs are all done") {
  // One worker: it is the one waiting in get, holding the readers' lock.
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "1"});
  INFO(server.stop_and_describe());
  const Fd client = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(client, 5000ms);
  write_frame(client, "1 first");
  const auto first = read_frame(client);
  REQUIRE(first.has_value());
  const int killed = worker_of(*first);
  REQUIRE(killed > 0);
  // Killed once it waits for the next job: just after its put it has not
  // yet written on the board that it is waiting, and the server would take
  // it for a worker killed in the middle of a frame.
  REQUIRE_MESSAGE(asleep_in({Task::process(killed)}, {SYS_read}, 3s),
                  "the worker never went to sleep waiting for a job");
  REQUIRE(::kill(killed, SIGKILL) == 0);
  // A killed reader still takes what reaches the pipe before it is gone
  // (pipe_read finds data before it looks at the signal): send job 2 only
  // once the server has reaped it. Polling /proc for a state, bounded.
  const auto give_up = std::chrono::steady_clock::now() + 3s;
  while (fs::exists("/proc/" + std::to_string(killed)) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(2ms);
  }
  REQUIRE_FALSE_MESSAGE(fs::exists("/proc/" + std::to_string(killed)), "the killed worker was not reaped within 3 s");
  write_frame(client, "2 second");
  ::shutdown(client.get(), SHUT_WR);
  const auto frames = frames_until_the_end(client);
  REQUIRE_MESSAGE(frames.size() == 2, "expected the result of job 2 and 'done 2', got ", frames.size(), " frame(s)",
                  frames.empty() ? "" : ", the last: " + frames.back());
  CHECK(frames[0].rfind("2 ", 0) == 0);
  CHECK(frames[0].ends_with(" SECOND"));
  CHECK(worker_of(frames[0]) != killed);
  CHECK(frames[1] == "done 2");
}

// The first child of process `parent` found asleep in system call `number`
// (as asleep_in sees it), from /proc/PARENT/task/PARENT/children; 0 if
// none is within 3 s.
int child_asleep_in(int parent, long number) {
  const std::string task = "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent);
  const auto give_up = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::ifstream children(task + "/children");
    for (int child = 0; children >> child;) {
      if (Task::process(child).asleep_in({number}) && asleep_in({Task::process(child)}, {number}, 3s)) {
        return child;
      }
    }
    std::this_thread::sleep_for(2ms);
  }
  return 0;
}

TEST_CASE("09.p pair: a worker killed while it holds a job is reported with that job's ID, and replaced") {
  // --work-ms: the worker sleeps 2 s between taking a job and putting its
  // result (in clock_nanosleep, where /proc shows it), holding the job: the
  // window to kill it in, which is microseconds long without it.
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "1", "--work-ms", "2000"});
  INFO(server.stop_and_describe());
  const Fd client = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(client, 5000ms);
  write_frame(client, "7 held");
  const int holder = child_asleep_in(server.child().pid(), SYS_clock_nanosleep);
  REQUIRE_MESSAGE(holder > 0, "no worker went to sleep over the job");
  REQUIRE(::kill(holder, SIGKILL) == 0);
  const auto report = read_frame(client);
  REQUIRE_MESSAGE(report.has_value(), "the server closed instead of reporting job 7");
  CHECK_MESSAGE(report->rfind("7 error: worker " + std::to_string(holder) + " killed by SIGKILL", 0) == 0,
                "the report: ", *report);
  CHECK(report->ends_with(" while it held this job"));
  // The next job is done, by the worker that took the dead one's place.
  write_frame(client, "8 next");
  ::shutdown(client.get(), SHUT_WR);
  const auto frames = frames_until_the_end(client);
  REQUIRE_MESSAGE(frames.size() == 2, "expected the result of job 8 and 'done 2', got ", frames.size(), " frame(s)",
                  frames.empty() ? "" : ", the last: " + frames.back());
  CHECK(frames[0].rfind("8 ", 0) == 0);
  CHECK(frames[0].ends_with(" NEXT"));
  CHECK(worker_of(frames[0]) != holder);
  CHECK(frames[1] == "done 2");
}

TEST_CASE("09.p pair: a worker killed in the middle of putting a result ends the request with 'error:', and the server goes on") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--workers", "1", "--capacity", "4096"});
  INFO(server.stop_and_describe());
  {
    const Fd client = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
    // 40 MB of results, far more than the socket buffers and the pipes hold,
    // each under PIPE_BUF (never half written): with nobody reading them,
    // the worker ends up asleep in the write of its put.
    std::jthread sender([&client] {
      try {
        for (int i = 1; i <= 20'000; ++i) {
          write_frame(client, std::to_string(i) + " " + std::string(2000, 'r'));
        }
      } catch (const std::exception&) {  // shut down below: the rest is not sent
      }
    });
    lab::set_receive_timeout(client, 5000ms);
    const auto first = read_frame(client);
    REQUIRE(first.has_value());
    const int killed = worker_of(*first);
    REQUIRE_MESSAGE(asleep_in({Task::process(killed)}, {SYS_write}, 3s),
                    "the worker never filled the results pipe");
    REQUIRE(::kill(killed, SIGKILL) == 0);
    // No more jobs: shutdown wakes the sender from its send. (Jobs left
    // unread would make the server's close a reset, and our frames lost.)
    ::shutdown(client.get(), SHUT_WR);
    sender.join();
    const auto frames = frames_until_the_end(client);
    REQUIRE(!frames.empty());
    CHECK_MESSAGE(frames.back().rfind("error: worker " + std::to_string(killed) + " killed by SIGKILL", 0) == 0,
                  "the last frame: ", frames.back().substr(0, 80));
  }
  const auto result = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--jobs", "50"}, "", 8s);
  INFO(result.describe());
  CHECK(result.status.success());
}

TEST_CASE("09.p pair: the client ends at once when the server answers 'error:' and stops reading") {
  const FakeServer fake;
  lab::Child client = start_busy_client(fake);
  const Fd connection = fake.accept();
  lab::set_receive_timeout(connection, 5000ms);
  REQUIRE(read_frame(connection).has_value());  // the client is sending
  write_frame(connection, "error: the test server refuses");
  // The connection stays open and unread: the client's sender stays blocked
  // in send unless the client shuts the connection down itself.
  const auto status = client.wait_for(3000ms);
  REQUIRE_MESSAGE(status.has_value(), "the client still runs 3 s after the server's 'error:'");
  CHECK(*status == lab::ExitStatus{1, 0});
}

TEST_CASE("09.p pair: the client ends at once when the server closes the connection") {
  const FakeServer fake;
  lab::Child client = start_busy_client(fake);
  {
    const Fd connection = fake.accept();
    lab::set_receive_timeout(connection, 5000ms);
    REQUIRE(read_frame(connection).has_value());  // the client is sending; now we close
  }
  const auto status = client.wait_for(3000ms);
  REQUIRE_MESSAGE(status.has_value(), "the client still runs 3 s after the server closed the connection");
  CHECK(*status == lab::ExitStatus{1, 0});
}

TEST_CASE("09.p pair: SIGTERM stops a client whose server neither reads nor answers") {
  const FakeServer fake;
  lab::Child client = start_busy_client(fake);
  const Fd connection = fake.accept();
  lab::set_receive_timeout(connection, 5000ms);
  REQUIRE(read_frame(connection).has_value());  // the client is sending
  client.send_signal(SIGTERM);
  const auto status = client.wait_for(1000ms);
  REQUIRE_MESSAGE(status.has_value(), "the client still runs 1 s after SIGTERM");
  CHECK(*status == lab::ExitStatus{130, 0});
}
