// Lesson 01 — UDP server: replies to every datagram with its payload in
// upper case, sent back to whoever sent it. One datagram in, one out, and
// per datagram two system calls: recvfrom(2) and sendto(2), plus a small
// share of one write(2) of the log (`strace -c build/release/lessons/01_udp/server`).
//
//   build/default/lessons/01_udp/server            (listens on 127.0.0.1:9001)
//   build/default/lessons/01_udp/server --port 0   (any free port)
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"
#include "udp.hpp"

namespace {

// The largest UDP payload over IPv4 is 65,507 bytes; one more byte of room
// costs nothing and a datagram can never be cut short unnoticed.
constexpr std::size_t kBufferSize = 65536;

// How long one recvfrom may sleep before the loop looks at the stop again.
// SIGINT/SIGTERM interrupt a blocked recvfrom with EINTR (the handlers are
// installed without SA_RESTART); this only covers a signal that lands just
// before recvfrom starts, which would otherwise wait for the next datagram.
// The same wake-up writes out a log line that is still waiting.
constexpr std::chrono::milliseconds kStopCheck{250};

// The log: one line per datagram, but not one write(2) per line. Lines
// collect in a buffer that goes out in one write when it is large, when
// kStopCheck has passed since the last write, or when the server goes idle.
// On a terminal every line goes out at once: a person is watching.
class DatagramLog {
 public:
  DatagramLog() : to_terminal_(::isatty(STDOUT_FILENO) == 1) {}
  DatagramLog(const DatagramLog&) = delete;
  DatagramLog& operator=(const DatagramLog&) = delete;
  ~DatagramLog() { flush(); }

  void line(const lab::SocketAddress& sender, std::string_view payload) {
    fmt::format_to(std::back_inserter(pending_), "{} sent {} bytes: {}\n", lab::udp::format_address(sender),
                   payload.size(), lab::preview(payload));
    if (to_terminal_ || pending_.size() >= kLargeLog || lab::Clock::now() - flushed_ >= kStopCheck) {
      flush();
    }
  }
  void flush() {
    if (!pending_.empty()) {
      std::fwrite(pending_.data(), 1, pending_.size(), stdout);
      std::fflush(stdout);
      pending_.clear();  // keeps its capacity: no allocation next time
    }
    flushed_ = lab::Clock::now();
  }

 private:
  static constexpr std::size_t kLargeLog = 64 * 1024;
  const bool to_terminal_;
  std::string pending_;
  lab::Clock::time_point flushed_ = lab::Clock::now();
};

}  // namespace

int main(int argc, char** argv) {
  const lab::ProgramSpec spec = lab::server_spec(1, "UDP server: replies to each datagram in upper case");
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) -> int {
    // No listen, no accept: a UDP socket is bound and then simply receives.
    const lab::Fd socket = lab::udp_bind(args.endpoint());
    lab::set_receive_timeout(socket, kStopCheck);
    lab::announce_listening(socket);

    // One buffer for the life of the server. Allocating (and zero-filling)
    // 64 KiB per datagram would cost more than the reply does.
    std::vector<char> buffer(kBufferSize);
    lab::SocketAddress sender;
    DatagramLog log;
    std::uint64_t served = 0;
    // lab::stop_signal_number() reads the flag the SIGINT/SIGTERM handler
    // sets: no system call, unlike polling the stop's eventfd each time.
    while (lab::stop_signal_number() == 0) {
      // No poll(2) first: recvfrom itself blocks until a datagram comes,
      // and one datagram is one whole message (no framing, unlike TCP).
      sender.reset_for_receive();
      const ssize_t received =
          ::recvfrom(socket.get(), buffer.data(), buffer.size(), 0, sender.get(), sender.length_ptr());
      if (received < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
          log.flush();
          if (lab::process_stop().requested()) {
            break;
          }
          continue;  // a signal, or kStopCheck passed: look at the stop, then wait again
        }
        throw lab::os_error("recvfrom");
      }
      const std::string_view payload(buffer.data(), static_cast<std::size_t>(received));
      const std::string reply = lab::udp::uppercase(payload);
      // One datagram out: sendto sends it whole or fails. A failure (the
      // sender's buffer is full, say) loses this reply only: UDP promises no
      // delivery, and the client retries.
      if (::sendto(socket.get(), reply.data(), reply.size(), 0, sender.get(), sender.length()) < 0 &&
          errno != EINTR) {
        lab::say("reply to {} not sent: {}", sender.to_string(), lab::errno_name(errno));
      }
      ++served;
      log.line(sender, payload);
    }
    log.flush();
    // The lab's servers all end with this line ("stopped by SIGTERM").
    const char* name = sigabbrev_np(lab::stop_signal_number());
    lab::say("stopped by SIG{} after {} datagram(s)", name != nullptr ? name : "?", served);
    return 0;
  });
}
