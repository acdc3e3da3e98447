// Graded tests of lesson 12 (lessons/12_event_loop/event_loop.hpp), and
// end-to-end tests of its server and client. Built twice: against the
// student's event_loop.cpp (label "grade") and against solutions/12_event_loop
// (label "reference").
//
// 12.2 and 12.3 are tested on their own (the buffer and the timers need no
// loop); the loop's own use of them is tested through serve().
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "event_loop.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
using lab::event_loop::Clock;
using lab::event_loop::ConnectionBuffer;
using lab::event_loop::IdleTimers;
using lab::event_loop::LoopStats;
using lab::event_loop::ServerOptions;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

// The tests' own uppercase, never the student's.
std::string upper(std::string text) {
  for (char& c : text) {
    c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return text;
}

// Bytes of every value, lower-case letters among them.
std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  }
  return data;
}

Fd connect_to(std::uint16_t port) { return lab::tcp_connect(Endpoint{"127.0.0.1", port}); }

// Reads exactly `expected.size()` bytes within 5 s and compares them.
void expect_reply(const Fd& socket, const std::string& expected, const std::string& context = {}) {
  lab::set_receive_timeout(socket, 5000ms);
  std::optional<std::string> got;
  try {
    got = lab::read_exact(socket, expected.size());
  } catch (const std::exception& error) {
    FAIL("expected a reply of ", expected.size(), " bytes (", lab::preview(expected),
         ") but the read failed: ", std::string(error.what()), " ", context);
  }
  REQUIRE_MESSAGE(got, "the connection ended; expected ", lab::preview(expected), " ", context);
  CHECK_MESSAGE(*got == expected, "expected ", lab::preview(expected), ", got ", lab::preview(*got),
                " ", context);
}

// True if the peer closed or reset `socket` within `timeout` (replies still
// arriving are read and dropped).
bool closed_within(const Fd& socket, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  lab::StopSignal never;
  while (Clock::now() < deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (!lab::wait_readable(socket.get(), never, left)) {
      return false;
    }
    try {
      if (!lab::read_some(socket, 1 << 20)) {
        return true;
      }
    } catch (const std::system_error&) {
      return true;  // a reset
    } catch (const lab::TimeoutError&) {
      // spurious readiness
    }
  }
  return false;
}

void reset_connection(Fd& socket) {
  const linger abort_on_close{1, 0};  // close sends RST, not FIN
  REQUIRE(::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  socket.reset();
}

void make_non_blocking(const Fd& socket) {
  const int flags = ::fcntl(socket.get(), F_GETFL);
  REQUIRE(flags >= 0);
  REQUIRE(::fcntl(socket.get(), F_SETFL, flags | O_NONBLOCK) == 0);
}

// A client that sends and never reads: sends up to `limit` bytes until the
// server has stopped taking them for `stall` (its send would block that
// long). Returns how many bytes the server took.
std::size_t flood_without_reading(const Fd& socket, std::size_t limit, std::chrono::milliseconds stall) {
  make_non_blocking(socket);
  const std::string chunk(64 * 1024, 'x');
  std::size_t sent_total = 0;
  const auto give_up = Clock::now() + 20s;
  while (sent_total < limit && Clock::now() < give_up) {
    const ssize_t sent = ::send(socket.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      sent_total += static_cast<std::size_t>(sent);
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd writable{socket.get(), POLLOUT, 0};
      if (::poll(&writable, 1, static_cast<int>(stall.count())) == 0) {
        break;  // the server took nothing for `stall`: it stopped reading us
      }
      continue;
    }
    break;  // EINTR aside, an error: the server closed us
  }
  return sent_total;
}

// Shuts a socket down when the case leaves its scope, early or not: declared
// after a writer thread, it wakes that thread from a blocked send before the
// thread is joined.
struct ShutdownOnExit {
  const Fd& socket;
  ~ShutdownOnExit() { ::shutdown(socket.get(), SHUT_RDWR); }
};

// The student's serve() on its own thread, on a listener of port 0.
class ServeThread {
 public:
  explicit ServeThread(ServerOptions options = {})
      : listener_(lab::tcp_listen(Endpoint{"127.0.0.1", 0})) {
    port_ = lab::SocketAddress::local_of(listener_.get()).port();
    result_ = std::async(std::launch::async, [this, options] {
      try {
        return lab::event_loop::serve(listener_, stop_, options);
      } catch (...) {
        // serve() failed: shut the listener down, so that the case's clients
        // are refused at once (and say why) instead of waiting for a reply.
        ::shutdown(listener_.get(), SHUT_RDWR);
        throw;
      }
    });
  }
  ~ServeThread() {
    stop_.request();
    if (result_.valid()) {
      result_.wait();  // a serve() that ignores the stop ends by the case's timeout
    }
  }
  ServeThread(const ServeThread&) = delete;
  ServeThread& operator=(const ServeThread&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] Fd connect() {
    try {
      return connect_to(port_);
    } catch (const std::system_error& error) {
      FAIL("could not connect: ", std::string(error.what()), "; ", describe());
    }
    return Fd{};
  }
  std::string describe() { return lab::testing::outcome(result_); }
  // Fails the case at once if serve() has already thrown or returned.
  void require_running() {
    if (result_.wait_for(0s) == std::future_status::ready) {
      FAIL("serve() is no longer running: ", describe());
    }
  }
  // Requests stop; returns what serve returned (rethrows what it threw).
  LoopStats stop() {
    stop_.request();
    REQUIRE_MESSAGE(result_.wait_for(5s) == std::future_status::ready,
                    "serve did not return within 5 s of the stop request");
    return result_.get();
  }

 private:
  Fd listener_;
  std::uint16_t port_ = 0;
  lab::StopSignal stop_;
  std::future<LoopStats> result_;
};

// One echo on a fresh connection: the server is up and serving.
void check_echo(ServeThread& server, const std::string& text) {
  INFO(server.describe());
  const Fd client = server.connect();
  lab::write_all(client, text);
  expect_reply(client, upper(text));
}

const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);

// A field of /proc/PID/status ("VmRSS:   1234 kB"), in KiB.
long status_kib(int pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return -1;
}

// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14, 15).
long cpu_ticks(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may contain spaces: count from its ')'.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  for (int k = 3; k <= 15 && rest >> field; ++k) {
    if (k == 14) {
      utime = std::stol(field);
    } else if (k == 15) {
      stime = std::stol(field);
    }
  }
  return utime + stime;
}

}  // namespace

// ---- 12.1 the readiness loop --------------------------------------------------

TEST_CASE("12.1 serve echoes a client's bytes uppercased, nothing added") {
  ServeThread server;
  INFO(server.describe());
  const Fd client = server.connect();
  const std::string text = "Hello, event loop! abc xyz 0123 {|}~ \xe4\xdf\x80\xff\n";
  lab::write_all(client, text);
  expect_reply(client, upper(text));
  lab::write_all(client, std::string("z"));
  expect_reply(client, "Z", "(a one-byte message)");
  // End of our stream: the server sends nothing more and closes its side.
  REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
  lab::set_receive_timeout(client, 5000ms);
  std::string rest;
  try {
    rest = lab::read_to_end(client, 1024);
  } catch (const std::exception& error) {
    FAIL("after our end of stream the server should close; the read failed: ", std::string(error.what()));
  }
  CHECK_MESSAGE(rest.empty(), "the server added bytes: ", lab::preview(rest));
  const LoopStats stats = server.stop();
  CHECK(stats.accepted == 1);
}

TEST_CASE("12.1 serve answers 300 clients connected at once, in any order") {
  ServeThread server;
  INFO(server.describe());
  std::vector<Fd> clients;
  for (int k = 0; k < 300; ++k) {
    clients.push_back(server.connect());
  }
  // Send from the last to the first, then read from the first: one thread
  // must be waiting on all of them at once.
  for (std::size_t k = clients.size(); k-- > 0;) {
    lab::write_all(clients[k], "client " + std::to_string(k) + " says hi\n");
  }
  for (std::size_t k = 0; k < clients.size(); ++k) {
    expect_reply(clients[k], upper("client " + std::to_string(k) + " says hi\n"),
                 "(client " + std::to_string(k) + " of 300)");
  }
  const LoopStats stats = server.stop();
  CHECK(stats.accepted == 300);
}

TEST_CASE("12.1 serve sends a 4 MiB reply whole, in order, through partial writes") {
  ServeThread server;
  INFO(server.describe());
  const Fd client = server.connect();
  lab::testing::set_buffer_sizes(client, 16 * 1024, 256 * 1024);  // short writes on both sides
  const std::string data = pattern(4 * 1024 * 1024);
  std::jthread writer([&client, &data] {
    try {
      lab::write_all(client, data);
    } catch (const std::system_error&) {
      // the server closed us: the reader below reports it
    }
  });
  const ShutdownOnExit unblock_writer{client};
  expect_reply(client, upper(data));
}

TEST_CASE("12.1 a client that shuts its sending side still gets its whole reply") {
  // A high-water mark above what we send: the server reads all of it, and
  // our end of stream, while we read nothing, so its replies are still
  // queued when it sees the end. It must send them all before it closes.
  ServerOptions options;
  options.high_water = 64 * 1024 * 1024;
  ServeThread server(options);
  INFO(server.describe());
  const Fd client = server.connect();
  // A fixed receive buffer (no autotuning to 32 MiB): the kernel cannot hold
  // all the replies, so the server's own buffer must.
  lab::testing::set_buffer_sizes(client, 256 * 1024, 256 * 1024);
  const std::size_t sent_total = flood_without_reading(client, 16u * 1024 * 1024, 5000ms);
  REQUIRE_MESSAGE(sent_total >= 16u * 1024 * 1024, "the server stopped taking bytes after ", sent_total);
  REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
  std::size_t received_total = 0;
  bool all_upper = true;
  std::array<char, 64 * 1024> buffer{};
  for (;;) {
    pollfd readable{client.get(), POLLIN, 0};
    REQUIRE_MESSAGE(::poll(&readable, 1, 5000) == 1, "no reply and no end for 5 s, after ",
                    received_total, " of ", sent_total, " bytes");
    const ssize_t received = ::recv(client.get(), buffer.data(), buffer.size(), 0);
    if (received == 0) {
      break;
    }
    REQUIRE_MESSAGE(received > 0, "the connection was reset after ", received_total, " of ",
                    sent_total, " reply bytes");
    const auto size = static_cast<std::size_t>(received);
    all_upper = all_upper && std::all_of(buffer.begin(), buffer.begin() + received, [](char c) { return c == 'X'; });
    received_total += size;
  }
  CHECK_MESSAGE(received_total == sent_total, "sent ", sent_total, " bytes then end of stream; got ",
                received_total, " back before the server closed");
  CHECK(all_upper);
}

TEST_CASE("12.1 serve goes on serving after clients reset mid-stream") {
  ServeThread server;
  INFO(server.describe());
  for (int k = 0; k < 10; ++k) {
    Fd rude = server.connect();
    lab::write_all(rude, pattern(100'000 + static_cast<std::size_t>(k) * 1000));  // replies never read
    reset_connection(rude);
  }
  Fd half = server.connect();
  lab::write_all(half, std::string("half a mess"));
  expect_reply(half, "HALF A MESS");
  lab::write_all(half, std::string("age that ends in a reset"));
  reset_connection(half);
  server.require_running();
  check_echo(server, "still here?\n");
  const LoopStats stats = server.stop();
  CHECK(stats.accepted == 12);
}

TEST_CASE("12.1 serve returns on a stop request and closes every connection") {
  ServeThread server;
  INFO(server.describe());
  std::vector<Fd> clients;
  for (int k = 0; k < 3; ++k) {
    clients.push_back(server.connect());
    lab::write_all(clients.back(), std::string("ping"));
    expect_reply(clients.back(), "PING");
  }
  const LoopStats stats = server.stop();
  CHECK(stats.accepted == 3);
  for (const Fd& client : clients) {
    CHECK_MESSAGE(closed_within(client, 2000ms), "a client was still connected after serve returned");
  }
}

TEST_CASE("12.1 serve holds at most max_connections and accepts the next when one leaves") {
  ServerOptions options;
  options.max_connections = 2;
  ServeThread server(options);
  INFO(server.describe());
  Fd first = server.connect();
  Fd second = server.connect();
  lab::write_all(first, std::string("one"));
  expect_reply(first, "ONE");
  lab::write_all(second, std::string("two"));
  expect_reply(second, "TWO");
  // The kernel completes the third handshake (the backlog), but the server,
  // full, must not accept it: no reply while two are connected.
  const Fd third = server.connect();
  lab::write_all(third, std::string("three"));
  lab::StopSignal never;
  CHECK_MESSAGE(!lab::wait_readable(third.get(), never, 300ms),
                "a third client was served while max_connections = 2 were connected");
  first.reset();  // one leaves: the third is accepted and served
  expect_reply(third, "THREE", "(after the first client left)");
}

// ---- 12.2 the per-connection buffer -------------------------------------------

TEST_CASE("12.2 append queues bytes and consume removes them from the front") {
  ConnectionBuffer buffer(1000);
  CHECK(buffer.pending() == 0);
  CHECK_FALSE(buffer.wants_write());
  buffer.append("hello ");
  buffer.append("world");
  CHECK(buffer.pending() == 11);
  CHECK(buffer.unsent() == "hello world");
  CHECK(buffer.wants_write());
  buffer.consume(6);
  CHECK(buffer.pending() == 5);
  CHECK(buffer.unsent() == "world");
  buffer.append("!");
  CHECK(buffer.unsent() == "world!");
  buffer.consume(6);
  CHECK(buffer.pending() == 0);
  CHECK(buffer.unsent().empty());
  CHECK_FALSE(buffer.wants_write());
  buffer.append(std::string_view("\0x", 2));  // bytes, not C strings
  CHECK(buffer.unsent() == std::string_view("\0x", 2));
}

TEST_CASE("12.2 consume refuses more than is pending and changes nothing") {
  ConnectionBuffer buffer(1000);
  buffer.append("abc");
  CHECK_THROWS_AS(buffer.consume(4), std::out_of_range);
  CHECK(buffer.pending() == 3);
  CHECK(buffer.unsent() == "abc");
  buffer.append("def");
  buffer.consume(2);  // "cdef" pending: 4 bytes, though 6 were appended
  CHECK_THROWS_AS(buffer.consume(5), std::out_of_range);
  CHECK(buffer.unsent() == "cdef");
  buffer.consume(4);
  CHECK_THROWS_AS(buffer.consume(1), std::out_of_range);
  CHECK(buffer.pending() == 0);
}

TEST_CASE("12.2 wants_read turns off at the high-water mark and on again below it") {
  ConnectionBuffer buffer(10);
  CHECK(buffer.wants_read());
  buffer.append("123456789");
  CHECK_MESSAGE(buffer.wants_read(), "9 bytes pending, high-water mark 10: keep reading");
  buffer.append("0");
  CHECK_MESSAGE(!buffer.wants_read(), "10 bytes pending, high-water mark 10: stop reading (back-pressure)");
  buffer.append("more");
  CHECK_FALSE(buffer.wants_read());
  buffer.consume(5);
  CHECK_MESSAGE(buffer.wants_read(), "9 bytes pending after a drain: read again");
  CHECK(buffer.unsent() == "67890more");
}

TEST_CASE("12.2 flush_to sends what the socket takes and keeps the rest on EAGAIN") {
  auto [ours, theirs] = lab::testing::socket_pair();
  lab::testing::set_buffer_sizes(ours, 8 * 1024, 8 * 1024);
  lab::testing::set_buffer_sizes(theirs, 8 * 1024, 8 * 1024);
  ConnectionBuffer buffer(1 << 30);
  const std::string data = pattern(1024 * 1024);
  buffer.append(data);
  std::size_t sent = 0;
  try {
    sent = buffer.flush_to(ours.get());
  } catch (const std::system_error& error) {
    FAIL("flush_to threw when the socket was full (EAGAIN is not an error): ", std::string(error.what()));
  }
  REQUIRE_MESSAGE(sent > 0, "nothing was sent into an empty socket");
  REQUIRE_MESSAGE(sent < data.size(), "1 MiB cannot fit in these socket buffers; flush_to said ", sent);
  CHECK(buffer.pending() == data.size() - sent);
  CHECK(buffer.unsent() == std::string_view(data).substr(sent));
  CHECK(buffer.wants_write());
  // What was sent is exactly the front of the data.
  lab::set_receive_timeout(theirs, 2000ms);
  const auto received = lab::read_exact(theirs, sent);
  REQUIRE(received);
  CHECK(*received == data.substr(0, sent));
  // What is left goes out once the peer has read: a second flush_to sends more.
  CHECK(buffer.flush_to(ours.get()) > 0);
}

TEST_CASE("12.2 flush_to delivers every byte once, in order, through many partial writes") {
  auto pair = lab::testing::socket_pair();
  const Fd& ours = pair.first;
  const Fd& theirs = pair.second;
  lab::testing::set_buffer_sizes(ours, 4 * 1024, 4 * 1024);
  lab::testing::set_buffer_sizes(theirs, 4 * 1024, 4 * 1024);
  const std::string data = pattern(2 * 1024 * 1024 + 17);
  auto reader = std::async(std::launch::async, [&theirs, size = data.size()] {
    lab::set_receive_timeout(theirs, 5000ms);
    return lab::read_exact(theirs, size);
  });
  ConnectionBuffer buffer(1 << 30);
  buffer.append(data);
  std::size_t total = 0;
  std::size_t calls = 0;
  const auto give_up = Clock::now() + 10s;
  while (buffer.pending() > 0 && Clock::now() < give_up) {
    pollfd writable{ours.get(), POLLOUT, 0};
    ::poll(&writable, 1, 1000);
    total += buffer.flush_to(ours.get());
    ++calls;
  }
  CHECK(buffer.pending() == 0);
  CHECK_MESSAGE(total == data.size(), "flush_to reported ", total, " bytes sent in all, of ", data.size());
  REQUIRE(reader.wait_for(10s) == std::future_status::ready);
  const auto received = reader.get();
  REQUIRE(received);
  CHECK_MESSAGE(*received == data, "the bytes arrived changed, doubled or out of order (", calls,
                " flush_to calls)");
}

TEST_CASE("12.2 flush_to throws a system_error when the peer has gone") {
  auto [ours, theirs] = lab::testing::socket_pair();
  theirs.reset();
  ConnectionBuffer buffer(1000);
  buffer.append("anyone there?");
  // MSG_NOSIGNAL: without it this send kills the whole process with SIGPIPE.
  CHECK_THROWS_AS(buffer.flush_to(ours.get()), std::system_error);
}

TEST_CASE("12.2 serve stops reading a client that does not read its replies, and serves others") {
  ServerOptions options;
  options.high_water = 64 * 1024;
  ServeThread server(options);
  INFO(server.describe());
  const Fd hog = server.connect();
  lab::testing::set_buffer_sizes(hog, 64 * 1024, 64 * 1024);
  constexpr std::size_t kLimit = 128 * 1024 * 1024;
  const std::size_t taken = flood_without_reading(hog, kLimit, 500ms);
  // Without back-pressure the server reads all 128 MiB into memory. With it,
  // it takes only what fits in the socket buffers plus its high-water mark.
  CHECK_MESSAGE(taken < 40u * 1024 * 1024,
                "the server took ", taken / 1024, " KiB from a client that reads nothing: it kept "
                "reading (EPOLLIN on) although the client's replies were not draining");
  server.require_running();
  check_echo(server, "and the others are still served\n");
}

// ---- 12.3 idle deadlines --------------------------------------------------------

TEST_CASE("12.3 a deadline falls due exactly timeout after touch") {
  IdleTimers timers(100ms);
  CHECK(timers.size() == 0);
  CHECK_FALSE(timers.time_to_next(t0).has_value());
  timers.touch(5, t0);
  CHECK(timers.size() == 1);
  CHECK(timers.time_to_next(t0) == 100ms);
  CHECK_MESSAGE(timers.take_expired(t0 + 99ms).empty(), "closed 1 ms before its deadline");
  CHECK(timers.take_expired(t0 + 100ms) == std::vector<int>{5});
  CHECK(timers.size() == 0);
  CHECK_FALSE(timers.time_to_next(t0 + 100ms).has_value());
  CHECK(timers.take_expired(t0 + 1000ms).empty());
}

TEST_CASE("12.3 touch pushes an existing deadline back") {
  IdleTimers timers(100ms);
  timers.touch(5, t0);
  timers.touch(5, t0 + 80ms);  // progress: the deadline is now t0 + 180 ms
  CHECK(timers.size() == 1);
  CHECK_MESSAGE(timers.take_expired(t0 + 150ms).empty(),
                "an active connection was closed at its old deadline");
  CHECK(timers.time_to_next(t0 + 150ms) == 30ms);
  CHECK(timers.take_expired(t0 + 180ms) == std::vector<int>{5});
  CHECK_MESSAGE(timers.take_expired(t0 + 500ms).empty(), "a connection expired twice");
}

TEST_CASE("12.3 remove forgets a connection") {
  IdleTimers timers(100ms);
  timers.touch(5, t0);
  timers.touch(6, t0 + 10ms);
  timers.remove(5);
  CHECK(timers.size() == 1);
  CHECK(timers.time_to_next(t0) == 110ms);
  timers.remove(42);  // never touched: nothing happens
  CHECK(timers.size() == 1);
  CHECK_MESSAGE(timers.take_expired(t0 + 1s) == std::vector<int>{6},
                "a removed connection (its number reused by the next accept) came back as expired");
  timers.remove(6);
  CHECK(timers.size() == 0);
}

TEST_CASE("12.3 time_to_next rounds up to whole milliseconds, and is zero once due") {
  IdleTimers timers(100ms);
  timers.touch(3, t0);
  CHECK_MESSAGE(timers.time_to_next(t0 + std::chrono::microseconds(98'500)) == 2ms,
                "1.5 ms left must be 2 ms: rounding down wakes the loop before the deadline");
  CHECK(timers.time_to_next(t0 + std::chrono::microseconds(99'999)) == 1ms);
  CHECK(timers.time_to_next(t0 + 100ms) == 0ms);
  CHECK_MESSAGE(timers.time_to_next(t0 + 5s) == 0ms, "a deadline long past: wait 0, not a negative time");
}

TEST_CASE("12.3 take_expired returns the due connections, earliest deadline first") {
  IdleTimers timers(100ms);
  timers.touch(7, t0 + 20ms);
  timers.touch(3, t0);
  timers.touch(9, t0 + 10ms);
  timers.touch(4, t0 + 500ms);
  CHECK(timers.take_expired(t0 + 200ms) == std::vector<int>{3, 9, 7});
  CHECK(timers.size() == 1);
  CHECK(timers.time_to_next(t0 + 200ms) == 400ms);
}

TEST_CASE("12.3 serve closes a silent client at the idle deadline and keeps an active one") {
  ServerOptions options;
  options.idle_timeout = 600ms;
  ServeThread server(options);
  INFO(server.describe());
  const Fd silent = server.connect();
  const Fd active = server.connect();
  const auto connected = Clock::now();
  // The active client sends something every 100 ms, six times its deadline.
  for (int k = 0; k < 12; ++k) {
    lab::write_all(active, std::string("tick"));
    expect_reply(active, "TICK", "(the active client, tick " + std::to_string(k) + ")");
    std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(closed_within(silent, 5000ms), "a silent client was still connected after 5 s with a 600 ms idle deadline");
  CHECK_MESSAGE(Clock::now() - connected >= 550ms, "the silent client was closed before its deadline");
  lab::write_all(active, std::string("still here"));
  expect_reply(active, "STILL HERE", "(the active client, after the silent one was closed)");
  const LoopStats stats = server.stop();
  CHECK(stats.idle_closed == 1);
}

TEST_CASE("12.3 a client that stops reading its replies is closed at the idle deadline") {
  ServerOptions options;
  options.idle_timeout = 500ms;
  options.high_water = 64 * 1024;
  ServeThread server(options);
  INFO(server.describe());
  const Fd hog = server.connect();
  flood_without_reading(hog, 64u * 1024 * 1024, 200ms);
  // It sent a lot and reads nothing: no progress either way, so it is idle.
  CHECK_MESSAGE(closed_within(hog, 8000ms), "a client that reads nothing was never closed");
  check_echo(server, "next\n");
  const LoopStats stats = server.stop();
  CHECK(stats.idle_closed >= 1);
}

// ---- 12.p the pair, end to end ----------------------------------------------------

TEST_CASE("12.p the client checks every reply over 200 connections x 3 rounds, and says so when no server runs") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--connections", "200", "--rounds", "3"}, "", 15s);
  INFO(result.describe());
  REQUIRE(result.status.success());
  CHECK(result.out.find("every reply correct") != std::string::npos);
  CHECK(result.out.find("descriptor limit (RLIMIT_NOFILE)") != std::string::npos);
  lab::testing::run_refused_client(kClient);  // exit status 1, one line naming the refusal
}

TEST_CASE("12.p the server survives garbage, resets and a connect storm, and serves the next client") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "10"});
  INFO(server.stop_and_describe());
  // Garbage: every byte value comes back, only a-z changed.
  {
    const Fd client = connect_to(server.port());
    std::string all;
    for (int b = 0; b < 256; ++b) {
      all += static_cast<char>(b);
    }
    lab::write_all(client, all);
    expect_reply(client, upper(all), "(every byte value)");
  }
  // Resets mid-stream.
  for (int k = 0; k < 20; ++k) {
    Fd rude = connect_to(server.port());
    lab::write_all(rude, pattern(50'000));
    reset_connection(rude);
  }
  // A connect storm: 500 connections opened at once, then dropped.
  {
    std::vector<Fd> storm;
    for (int k = 0; k < 500; ++k) {
      storm.push_back(connect_to(server.port()));
    }
  }
  REQUIRE_MESSAGE(!server.child().wait_for(0ms).has_value(), server.stop_and_describe());
  const Fd next = connect_to(server.port());
  lab::write_all(next, std::string("the next client\n"));
  expect_reply(next, "THE NEXT CLIENT\n");
}

TEST_CASE("12.p a client that never reads does not grow the server's memory") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "30"});
  INFO(server.stop_and_describe());
  const int pid = server.child().pid();
  {
    const Fd warm = connect_to(server.port());
    lab::write_all(warm, pattern(256 * 1024));
    expect_reply(warm, upper(pattern(256 * 1024)));
  }
  const long before = status_kib(pid, "VmRSS");
  const Fd hog = connect_to(server.port());
  const std::size_t taken = flood_without_reading(hog, 128u * 1024 * 1024, 500ms);
  const long after = status_kib(pid, "VmRSS");
  // (No MESSAGE here: it would print the INFO above, which stops the server.)
  CHECK_MESSAGE(after - before < 16 * 1024, "the server's memory grew by ", after - before,
                " KiB (VmRSS ", before, " -> ", after, " KiB) for one client that reads nothing; it took ",
                taken / 1024, " KiB from that client");
  const Fd other = connect_to(server.port());
  lab::write_all(other, std::string("me too\n"));
  expect_reply(other, "ME TOO\n");
}

TEST_CASE("12.p an idle server with 100 connections uses almost no CPU") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const int pid = server.child().pid();
  std::vector<Fd> clients;
  for (int k = 0; k < 100; ++k) {
    clients.push_back(connect_to(server.port()));
    lab::write_all(clients.back(), std::string("hi"));
    expect_reply(clients.back(), "HI");
  }
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  const long before = cpu_ticks(pid);
  const auto started = Clock::now();
  std::this_thread::sleep_for(1000ms);  // measuring idleness: nothing happens on purpose
  const long used = cpu_ticks(pid) - before;
  const std::chrono::duration<double> wall = Clock::now() - started;
  const double share = static_cast<double>(used) / static_cast<double>(ticks_per_second) / wall.count();
  CHECK_MESSAGE(share < 0.10, "an idle event loop should sleep in epoll_wait; it used ", share * 100,
                "% of a core (a busy loop uses 100%)");
}

TEST_CASE("12.p the server closes silent clients at its --idle-timeout") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "0.4"});
  INFO(server.stop_and_describe());
  const Fd silent = connect_to(server.port());
  CHECK_MESSAGE(closed_within(silent, 5000ms), "a silent client was still connected after 5 s; "
                "the server runs with --idle-timeout 0.4");
  const Fd next = connect_to(server.port());
  lab::write_all(next, std::string("ok?"));
  expect_reply(next, "OK?");
}
