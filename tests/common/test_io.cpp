#include <doctest/doctest.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <system_error>
#include <thread>

#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;

namespace {

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  }
  return data;
}

extern "C" void on_usr1(int) {}

// A no-op SIGUSR1 handler without SA_RESTART, installed once for the whole
// process and never removed: restoring the default action while a signal is
// still on its way (or while another storm runs) would kill the test.
void install_usr1_handler() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_usr1;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGUSR1, &action, nullptr) == 0;
  }();
  REQUIRE(installed);
}

// While alive, interrupts `target` with SIGUSR1 every millisecond, so a
// blocked send or recv fails with EINTR.
class Interrupter {
 public:
  explicit Interrupter(pthread_t target) {
    install_usr1_handler();
    thread_ = std::jthread([target](std::stop_token stop) {
      while (!stop.stop_requested()) {
        ::pthread_kill(target, SIGUSR1);
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  ~Interrupter() {
    thread_.request_stop();
    thread_.join();
  }
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;

 private:
  std::jthread thread_;
};

}  // namespace

TEST_CASE("write_all and read_exact move 4 MiB through tiny socket buffers intact") {
  auto [writer, reader] = lab::testing::socket_pair();
  lab::testing::set_buffer_sizes(writer, 4096, 4096);
  lab::testing::set_buffer_sizes(reader, 4096, 4096);
  const std::string data = pattern(4 << 20);
  std::jthread sender([&writer = writer, &data] { lab::write_all(writer, data); });
  // Read in odd sizes: every read returns part of what was written.
  std::string got;
  while (got.size() < data.size()) {
    const auto piece = lab::read_some(reader, 7777);
    REQUIRE(piece);
    got += *piece;
  }
  sender.join();
  CHECK(got.size() == data.size());
  CHECK(got == data);
}

TEST_CASE("write_all and read_exact survive EINTR from a signal storm") {
  auto [writer, reader] = lab::testing::socket_pair();
  lab::testing::set_buffer_sizes(writer, 4096, 4096);
  const std::string data = pattern(1 << 20);
  std::string got;
  std::jthread receiver([&reader = reader, &got] {
    Interrupter storm(::pthread_self());
    got = lab::read_exact(reader, 1 << 20).value_or("");
  });
  {
    Interrupter storm(::pthread_self());
    lab::write_all(writer, data);
  }
  receiver.join();
  CHECK(got == data);
}

TEST_CASE("read_exact: nullopt at a clean end, ProtocolError part way") {
  auto [a, b] = lab::testing::socket_pair();
  lab::write_all(a, "abc");
  a.reset();
  CHECK_THROWS_WITH_AS(lab::read_exact(b, 8), "connection closed after 3 of 8 bytes",
                       lab::ProtocolError);
  auto [c, d] = lab::testing::socket_pair();
  c.reset();
  CHECK_FALSE(lab::read_exact(d, 8).has_value());
}

TEST_CASE("read_exact into a buffer fills it across many small writes") {
  auto [a, b] = lab::testing::socket_pair();
  std::jthread dribble([&a = a] {
    for (char c : std::string("12345678")) {
      lab::write_all(a, std::string(1, c));
      std::this_thread::sleep_for(1ms);
    }
  });
  std::array<std::uint8_t, 8> buffer{};
  CHECK(lab::read_exact(b, buffer));
  CHECK(std::string(buffer.begin(), buffer.end()) == "12345678");
}

TEST_CASE("read_some returns what is there, and nullopt at end of stream") {
  auto [a, b] = lab::testing::socket_pair();
  lab::write_all(a, "hello");
  CHECK(lab::read_some(b, 3) == "hel");
  CHECK(lab::read_some(b, 100) == "lo");
  a.reset();
  CHECK_FALSE(lab::read_some(b, 100).has_value());
}

TEST_CASE("write_all to a closed peer throws EPIPE instead of killing the process") {
  auto [a, b] = lab::testing::socket_pair();
  b.reset();
  try {
    lab::write_all(a, pattern(100000));
    FAIL_CHECK("wrote to a closed peer");
  } catch (const std::system_error& error) {
    CHECK(error.code() == std::errc::broken_pipe);
    CHECK(std::string(error.what()).rfind("send", 0) == 0);
  }
}

TEST_CASE("a reset connection is an error, not an end of stream") {
  const lab::Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  lab::Fd client = lab::tcp_connect(
      lab::Endpoint{"127.0.0.1", lab::SocketAddress::local_of(listener.get()).port()});
  lab::StopSignal stop;
  auto server = lab::accept_client(listener, stop);
  REQUIRE(server);
  const linger abort_on_close{1, 0};  // close sends RST instead of FIN
  REQUIRE(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  client.reset();
  try {
    (void)lab::read_some(server->socket, 10);
    FAIL_CHECK("a reset looked like data or a clean end");
  } catch (const std::system_error& error) {
    CHECK(error.code() == std::errc::connection_reset);
  }
}

TEST_CASE("a receive timeout becomes TimeoutError") {
  const lab::Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  const lab::Fd client = lab::tcp_connect(
      lab::Endpoint{"127.0.0.1", lab::SocketAddress::local_of(listener.get()).port()});
  lab::set_receive_timeout(client, 30ms);
  CHECK_THROWS_AS(lab::read_some(client, 10), lab::TimeoutError);
}

TEST_CASE("read_to_end refuses more than its limit") {
  auto [a, b] = lab::testing::socket_pair();
  lab::write_all(a, std::string(100, 'x'));
  a.reset();
  CHECK_THROWS_AS(lab::read_to_end(b, 99), lab::ProtocolError);
  auto [c, d] = lab::testing::socket_pair();
  lab::write_all(c, std::string(100, 'x'));
  c.reset();
  CHECK(lab::read_to_end(d, 100).size() == 100);
}
