// Lesson 03 — the client that shows sticky packets (粘包), the same way on
// every run:
//   1. a reply bigger than the client's 1024-byte buffer bleeds into the
//      reply to the next command;
//   2. three small writes, each sent at once (TCP_NODELAY), reach the server
//      merged into one read.
// With COMMANDs it is the Python course's naive client instead: send a
// command, one recv(1024), print what came.
//
//   build/default/lessons/03_sticky_packets/client                (the two demos)
//   build/default/lessons/03_sticky_packets/client date big date  (the naive client)
#include <fmt/core.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"

namespace {

constexpr std::size_t kBufferSize = 1024;  // the Python course's recv(1024)

std::string read_or_fail(const lab::Fd& connection) {
  auto reply = lab::read_some(connection, kBufferSize);
  if (!reply) {
    throw lab::ProtocolError("the server closed the connection");
  }
  return *reply;
}

void send_command(const lab::Fd& connection, std::string_view command, int number) {
  const std::string line = std::string(command) + "\n";
  lab::write_all(connection, line);
  lab::say("write {}: sent {} bytes {}", number, line.size(), lab::preview(line));
}

// Waits until the peer's kernel has acknowledged every byte we sent, so we
// know they sit in its receive buffer. SIOCOUTQ (tcp(7)) is the number of
// bytes sent but not yet acknowledged; nothing signals when it reaches 0,
// so we look again every millisecond, for at most 2 s.
void wait_until_acknowledged(const lab::Fd& connection) {
  for (int attempt = 0; attempt < 2000; ++attempt) {
    int unacknowledged = 0;
    if (::ioctl(connection.get(), SIOCOUTQ, &unacknowledged) != 0) {
      throw lab::os_error("ioctl SIOCOUTQ");
    }
    if (unacknowledged == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  throw lab::ProtocolError("the server's kernel did not acknowledge our bytes within 2 s");
}

// Demo 1: the reply to "big" is 14000 bytes; one read of 1024 takes only
// the start of it. The rest stays in the stream, in front of the next reply.
void show_reply_bleeding(const lab::Fd& connection) {
  lab::say("== 1. a reply bigger than our {}-byte buffer ==", kBufferSize);
  send_command(connection, "big", 1);
  const std::string first = read_or_fail(connection);
  lab::say("read 1 returned {} bytes: {}", first.size(), lab::preview(first, 40));
  send_command(connection, "date", 2);
  const std::string second = read_or_fail(connection);
  lab::say("read 2 returned {} bytes: {}", second.size(), lab::preview(second, 40));
  // Lines of "big" read "big line 0074"; the date never contains that.
  const bool bled = second.find("big line") != std::string::npos;
  lab::say("-> the 'reply to date' is {}: TCP is a byte stream, and nothing marks where one reply ends",
           bled ? "more of the output of big" : "the date (this run the bytes lined up)");
}

// Demo 2: while the server is still busy with `busy` (it serves one client
// at a time), we connect again and send three commands as three writes,
// each its own segment thanks to TCP_NODELAY. Once the server's kernel has
// them all, we let the server move on; its first read takes all three.
void show_writes_merging(const lab::Endpoint& server, lab::Fd busy) {
  lab::say("== 2. three small writes, TCP_NODELAY on ==");
  const lab::Fd connection = lab::tcp_connect(server);
  const int on = 1;
  if (::setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) {
    throw lab::os_error("setsockopt TCP_NODELAY");
  }
  send_command(connection, "date", 1);
  send_command(connection, "uname -a", 2);
  send_command(connection, "reads", 3);
  wait_until_acknowledged(connection);

  // Now end the first conversation: the server reads its end of stream,
  // says goodbye to it, and accepts this connection.
  ::shutdown(busy.get(), SHUT_WR);
  const std::string rest = lab::read_to_end(busy, 1 << 20);
  lab::say("(the first connection still held {} unread bytes of replies)", rest.size());
  busy.reset();

  ::shutdown(connection.get(), SHUT_WR);  // no more commands; the server closes when done
  const std::string replies = lab::read_to_end(connection, 1 << 20);
  lab::say("what came back, all three replies in one stream:");
  std::string_view text = replies;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    lab::say("  | {}", text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  lab::say("-> 3 writes, 1 read on the server: TCP_NODELAY decides when bytes leave, not where messages end");
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(3, "sticky-packets client: shows replies bleeding and writes merging");
  spec.positionals = "[COMMAND...]";
  spec.details =
      "Without COMMANDs, runs the two demonstrations. With them, sends each\n"
      "command and prints what one recv(1024) returns, as a naive client does.\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    lab::Fd connection = lab::tcp_connect(args.endpoint());
    if (!args.positionals().empty()) {
      int number = 0;
      for (const std::string& command : args.positionals()) {
        send_command(connection, command, ++number);
        const std::string reply = read_or_fail(connection);
        lab::say("read {} returned {} bytes:", number, reply.size());
        std::fwrite(reply.data(), 1, reply.size(), stdout);
        std::fflush(stdout);
      }
      return 0;
    }
    show_reply_bleeding(connection);
    show_writes_merging(args.endpoint(), std::move(connection));
    return 0;
  });
}
