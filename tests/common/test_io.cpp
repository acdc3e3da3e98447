#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <system_error>
#include <thread>

#include "lab/forked.hpp"
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
  REQUIRE(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                       sizeof abort_on_close) == 0);
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

namespace {

// The message of the system_error `write` throws, or "" if it throws none.
template <typename Write>
std::string system_error_of(Write write, std::error_code& code) {
  try {
    write();
  } catch (const std::system_error& error) {
    code = error.code();
    return error.what();
  }
  return "";
}

// A pipe as two Fds: {read end, write end}.
std::pair<lab::Fd, lab::Fd> make_pipe() {
  int ends[2];
  REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
  return {lab::Fd(ends[0]), lab::Fd(ends[1])};
}

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.rfind(prefix, 0) == 0;
}

}  // namespace

TEST_CASE("write_all names the call that failed: write for a pipe, send for a socket") {
  // A pipe is written with write(2): its error must not read "send". (The
  // test's main ignores SIGPIPE, as the lab's programs do; write has no
  // MSG_NOSIGNAL.)
  auto [pipe_read, pipe_write] = make_pipe();
  pipe_read.reset();
  std::error_code code;
  const std::string pipe_error =
      system_error_of([&pipe_write = pipe_write] { lab::write_all(pipe_write, "x"); }, code);
  CHECK(code == std::errc::broken_pipe);
  CHECK_MESSAGE(starts_with(pipe_error, "write"), "the error was: " << pipe_error);

  auto [socket, peer] = lab::testing::socket_pair();
  peer.reset();
  const std::string socket_error =
      system_error_of([&socket = socket] { lab::write_all(socket, "x"); }, code);
  CHECK(code == std::errc::broken_pipe);
  CHECK_MESSAGE(starts_with(socket_error, "send"), "the error was: " << socket_error);
}

TEST_CASE("the read helpers name the call that failed: read for a file, recv for a socket") {
  // Reading a descriptor opened write-only fails with EBADF.
  const lab::testing::TempDir temp("io");
  const lab::Fd write_only(::open(temp.file("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(write_only);
  std::error_code code;
  const std::string file_error =
      system_error_of([&] { (void)lab::read_some(write_only, 10); }, code);
  CHECK(code == std::errc::bad_file_descriptor);
  CHECK_MESSAGE(starts_with(file_error, "read"), "the error was: " << file_error);

  // A TCP socket that was never connected fails with ENOTCONN.
  const lab::Fd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(unconnected);
  const std::string socket_error =
      system_error_of([&] { (void)lab::read_some(unconnected, 10); }, code);
  CHECK(code == std::errc::not_connected);
  CHECK_MESSAGE(starts_with(socket_error, "recv"), "the error was: " << socket_error);
}

TEST_CASE("write_all and read_to_end move data through a file and a pipe intact") {
  const lab::testing::TempDir temp("io");
  const std::string data = pattern(300000);
  {
    const lab::Fd file(::open(temp.file("data").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(file);
    lab::write_all(file, data);
  }
  const lab::Fd file(::open(temp.file("data").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(file);
  CHECK(lab::read_to_end(file, data.size()) == data);

  auto [pipe_read, pipe_write] = make_pipe();
  std::jthread writer([&pipe_write = pipe_write, &data] {
    lab::write_all(pipe_write, data);
    pipe_write.reset();
  });
  CHECK(lab::read_exact(pipe_read, data.size()) == data);
  writer.join();
  CHECK_FALSE(lab::read_some(pipe_read, 1).has_value());
}

TEST_CASE("a descriptor number that was a socket and is now a pipe is written as a pipe") {
  // The helpers remember which numbers were sockets; the number is reused
  // here (dup2 onto it) to check that the memory is only ever a hint.
  auto [socket, peer] = lab::testing::socket_pair();
  lab::write_all(socket, "to the socket");
  CHECK(lab::read_exact(peer, 13) == "to the socket");

  auto [pipe_read, pipe_write] = make_pipe();
  REQUIRE(::dup3(pipe_write.get(), socket.get(), O_CLOEXEC) == socket.get());  // closes the socket
  pipe_write.reset();
  lab::write_all(socket, "to the pipe");
  CHECK(lab::read_exact(pipe_read, 11) == "to the pipe");

  // And the other way round: a pipe number that becomes a socket again.
  auto [second_socket, second_peer] = lab::testing::socket_pair();
  // dup3 closes the pipe end that had the number.
  REQUIRE(::dup3(second_socket.get(), socket.get(), O_CLOEXEC) == socket.get());
  lab::write_all(socket, "socket again");
  CHECK(lab::read_exact(second_peer, 12) == "socket again");
  // Its peer gone, the error is the socket's: EPIPE from send.
  second_peer.reset();
  std::error_code code;
  const std::string error =
      system_error_of([&socket = socket] { lab::write_all(socket, "x"); }, code);
  CHECK(code == std::errc::broken_pipe);
  CHECK_MESSAGE(starts_with(error, "send"), "the error was: " << error);
}

namespace {

// From here on, this process is killed (SIGSYS) if it calls fstat, stat or
// send in any form (seccomp(2), SECCOMP_RET_KILL_PROCESS): a test run in a
// child proves a helper makes none of those calls. No core dump is wanted.
bool forbid_fstat_and_send() {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  std::vector<sock_filter> filter = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr))};
  for (const long call : {
#ifdef __NR_fstat
           static_cast<long>(__NR_fstat),
#endif
#ifdef __NR_newfstatat
           static_cast<long>(__NR_newfstatat),
#endif
           static_cast<long>(__NR_statx), static_cast<long>(__NR_sendto),
           static_cast<long>(__NR_sendmsg)}) {
    filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(call), 0, 1));
    filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  }
  filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  const sock_fprog program{static_cast<unsigned short>(filter.size()), filter.data()};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

}  // namespace

TEST_CASE("write_all told 'not a socket' writes a file or pipe with write(2) alone") {
  const lab::testing::TempDir temp("io");
  const lab::Fd file(::open(temp.file("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(file);
  auto [pipe_read, pipe_write] = make_pipe();
  lab::ForkedChildren child;
  child.start([&file, &pipe_write = pipe_write] {
    if (!forbid_fstat_and_send()) {
      return 2;
    }
    for (int i = 0; i < 3; ++i) {
      lab::write_all(file, "line\n", lab::Descriptor::not_socket);
      lab::write_all(pipe_write, "abc", lab::Descriptor::not_socket);
    }
    return 0;
  });
  const auto statuses = child.wait_all(std::chrono::seconds(10));
  REQUIRE(statuses.size() == 1);
  CHECK_MESSAGE(statuses[0].success(),
                "the child (no fstat, no send allowed) " << statuses[0].to_string());
  pipe_write.reset();
  CHECK(lab::read_to_end(pipe_read, 100) == "abcabcabc");
  const lab::Fd written(::open(temp.file("out").c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(lab::read_to_end(written, 100) == "line\nline\nline\n");

  // A pipe with no reader: the error names write, the call that failed.
  auto [closed_read, closed_write] = make_pipe();
  closed_read.reset();
  std::error_code code;
  const std::string error = system_error_of(
      [&closed_write = closed_write] {
        lab::write_all(closed_write, "x", lab::Descriptor::not_socket);
      },
      code);
  CHECK(code == std::errc::broken_pipe);
  CHECK_MESSAGE(starts_with(error, "write"), "the error was: " << error);
}

TEST_CASE("write_all told 'socket' sends at once, and a wrong hint still falls back to write") {
  auto [socket, peer] = lab::testing::socket_pair();
  lab::write_all(socket, "hello", lab::Descriptor::socket);
  CHECK(lab::read_exact(peer, 5) == "hello");
  auto [pipe_read, pipe_write] = make_pipe();
  lab::write_all(pipe_write, "piped", lab::Descriptor::socket);  // ENOTSOCK, then write
  CHECK(lab::read_exact(pipe_read, 5) == "piped");
}
