// Lesson 03 — remote-command server with NO framing. Each line a client
// sends names a command from a fixed allow-list; the server runs it (no
// shell) and sends back its raw output, with nothing to mark where the
// output ends. It prints every read it makes, so you can see how the bytes
// really arrived. One client at a time.
//
//   build/default/lessons/03_sticky_packets/server            (127.0.0.1:9003)
//   build/default/lessons/03_sticky_packets/server --port 0   (any free port)
//   printf 'date\nls -l\n' | nc 127.0.0.1 9003                (a manual client)
#include <fmt/core.h>

#include <string>
#include <system_error>
#include <vector>

#include "lab/command.hpp"
#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"
#include "line_splitter.hpp"

namespace {

// What the Python course's server did: recv(1024).
constexpr std::size_t kReadSize = 1024;
constexpr std::size_t kMaxRememberedReads = 100;

// The reply to one command line: the command's stdout and stderr, raw.
// "reads" is answered by the server itself: the list of reads it made on
// this connection, which is how the client learns how its bytes arrived.
std::string reply_to(const std::string& line, const std::vector<std::string>& reads) {
  if (line == "reads") {
    std::string text;
    for (const std::string& read : reads) {
      text += read + "\n";
    }
    return text;
  }
  const lab::AllowedCommand* command = lab::find_allowed_command(line);
  if (command == nullptr) {
    return fmt::format("unknown command {}; allowed: {}, reads\n", lab::preview(line),
                       lab::allowed_command_names());
  }
  const lab::CommandOutput output = lab::run_command(command->argv);
  std::string text = output.out + output.err;
  if (output.output_capped) {
    text += "[output cut: too long]\n";
  }
  if (output.timed_out) {
    text += "[killed: took too long]\n";
  }
  return text;
}

// One conversation: read, split into lines, answer each line.
void converse(const lab::Fd& connection, lab::ClientClock& clock) {
  lab::sticky::LineSplitter splitter(lab::sticky::kMaxCommandLine);
  std::vector<std::string> reads;  // for the "reads" command
  std::size_t read_count = 0;
  for (;;) {
    // Wait for bytes, or a stop (SIGINT/SIGTERM), or a deadline. A blocked
    // recv alone could miss a signal that came just before it. The idle
    // deadline alone would restart with every byte: a client sending one
    // byte every second would hold us for ever, so the request has one too.
    clock.wait_readable();
    const std::optional<std::string> chunk = lab::read_some(connection, kReadSize);
    if (!chunk) {
      splitter.finish();  // throws if the client left in the middle of a line
      return;
    }
    clock.request_started();
    ++read_count;
    const std::string read = fmt::format("read #{}: {} bytes {}", read_count, chunk->size(), lab::preview(*chunk));
    lab::say("  {}", read);
    if (reads.size() < kMaxRememberedReads) {  // a client sending byte by byte must not grow it for ever
      reads.push_back(read);
    }
    std::vector<std::string> lines;
    try {
      lines = splitter.feed(*chunk);
    } catch (const lab::ProtocolError& error) {
      // Tell the client why before hanging up; it may be a person with nc.
      lab::write_all(connection, fmt::format("error: {}\n", error.what()));
      throw;
    }
    bool answered = false;
    for (const std::string& line : lines) {
      if (!line.empty()) {
        lab::say("  command {}", lab::preview(line));
        // The socket's send timeout (ClientClock) bounds this write: a
        // client that never reads cannot hold us here either.
        lab::write_all(connection, reply_to(line, reads));
        answered = true;
      }
    }
    if (answered && chunk->back() == '\n') {
      clock.request_done();  // nothing left half-sent: the next request gets its own time
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(3, "remote-command server: one command per line, raw output back (no framing)");
  lab::add_deadline_options(spec, {std::chrono::seconds(10), std::chrono::seconds(30)});
  spec.details = "Commands: " + lab::allowed_command_names() + ", reads (this connection's reads).\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const lab::ClientDeadlines deadlines = lab::deadline_options(args);
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t served = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      ++served;
      lab::say("client {} connected", client->peer.to_string());
      // One client at a time: a client that says nothing, trickles, or
      // never reads its replies would hold the server for ever, and every
      // other client with it. The deadlines (README, "Deadlines") drop it.
      try {
        lab::ClientClock clock(client->socket, deadlines);
        converse(client->socket, clock);
        lab::say("client {} left", client->peer.to_string());
      } catch (const lab::ProtocolError& error) {
        lab::say("client {} dropped: {}", client->peer.to_string(), error.what());
      } catch (const std::system_error& error) {
        lab::say("client {} lost: {}", client->peer.to_string(), error.what());
      }
    }
    lab::say("stopped after {} client(s)", served);
    return 0;
  });
}
