// Lesson 04 — the remote-command and file server, now with framing: every
// message is an 8-byte header (magic, version, type, length) and a payload.
// A command's reply carries stdout, stderr and the exit status separately;
// "get NAME" sends the file's size and SHA-256, then its data in chunks; the
// digest of a file already served is remembered, so the second download of
// it starts at once.
// Hostile input (a 4 GiB length, garbage, a truncated frame, silence) costs
// that one client its connection, never the server. One client at a time.
// This file is the conversation; "get" is answered by the headers beside
// it, to read in this order: served_file.hpp (open only inside --dir),
// deadline_send.hpp, digest_cache.hpp, send_file.hpp.
//
//   build/default/lessons/04_struct_header/server                 (127.0.0.1:9004, serves .)
//   build/default/lessons/04_struct_header/server --dir ~/public  (serves ~/public)
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

#include "digest_cache.hpp"
#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"
#include "send_file.hpp"
#include "served_file.hpp"
#include "struct_header.hpp"

namespace {

namespace sh = lab::struct_header;
using lab::file_server::Clock;
using lab::file_server::DigestCache;
using lab::file_server::Refusal;

// Requests are a command or a file name: nothing longer is legitimate, so a
// larger length is refused before a byte of it is read.
constexpr std::uint32_t kMaxRequest = 4096;

// ---- commands ----------------------------------------------------------------

void run_command(const lab::Fd& connection, const std::string& name, const std::string& directory) {
  const lab::AllowedCommand* command = lab::find_allowed_command(name);
  if (command == nullptr) {
    throw Refusal(fmt::format("unknown command {}; allowed: {}", lab::preview(name), lab::allowed_command_names()));
  }
  const lab::CommandOutput output = lab::run_command(command->argv, directory);
  // Three frames: the receiver knows exactly where each part ends.
  sh::send_frame(connection, sh::kTypeStdout, output.out);
  sh::send_frame(connection, sh::kTypeStderr, output.err);
  const std::uint8_t status[4] = {
      static_cast<std::uint8_t>(output.status.exited() ? 0 : 1),
      static_cast<std::uint8_t>(output.status.exited() ? output.status.code : output.status.signal),
      static_cast<std::uint8_t>((output.output_capped ? 1 : 0) | (output.timed_out ? 2 : 0)), 0};
  sh::send_frame(connection, sh::kTypeExitStatus,
                 std::string_view(reinterpret_cast<const char*>(status), sizeof status));
}

// ---- one client ----------------------------------------------------------------

// Waits for the client's next request. Returns false if it sends nothing
// for `idle` (zero: no limit). Throws StopRequested on SIGINT/SIGTERM: a
// blocked recv alone could miss a signal that came just before it.
bool wait_for_request(const lab::Fd& connection, std::chrono::seconds idle) {
  if (idle.count() == 0) {
    return lab::wait_readable(connection.get(), lab::process_stop());
  }
  return lab::wait_readable(connection.get(), lab::process_stop(), idle);
}

struct Limits {
  std::chrono::seconds idle{0};
  std::chrono::seconds request{0};
};

void converse(const lab::Fd& connection, const lab::Fd& directory, const std::string& directory_name,
              DigestCache& cache, const Limits& limits) {
  const auto idle = limits.idle;
  for (;;) {
    if (!wait_for_request(connection, idle)) {
      throw lab::TimeoutError(fmt::format("idle timeout: no request for {} s", idle.count()));
    }
    const auto request = sh::recv_frame(connection, kMaxRequest);
    if (!request) {
      return;
    }
    try {
      switch (request->type) {
        case sh::kTypeCommand:
          lab::say("  command {}", lab::preview(request->payload));
          run_command(connection, request->payload, directory_name);
          break;
        case sh::kTypeGet:
          lab::say("  get {}", lab::preview(request->payload));
          lab::file_server::send_file(connection, directory, request->payload, cache, Clock::now() + limits.request);
          break;
        default:
          throw Refusal(fmt::format("unexpected frame type 0x{:02x}", request->type));
      }
    } catch (const Refusal& refusal) {
      // A refused request is an answer, not a broken connection: the client
      // may ask for something else.
      lab::say("  refused: {}", refusal.what());
      sh::send_frame(connection, sh::kTypeError, refusal.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(4, "framed remote-command and file server");
  spec.options.push_back({"dir", "DIR", "the directory whose files 'get' serves", "."});
  spec.options.push_back({"idle-timeout", "SECONDS", "drop a client that sends nothing for this long (0: never)", "30"});
  spec.options.push_back({"request-timeout", "SECONDS", "drop a client whose one request takes longer than this", "600"});
  spec.details = "Commands: " + lab::allowed_command_names() + ". Wire format: lessons/04_struct_header/README.md\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const std::string directory_name = args.get("dir");
    const lab::Fd directory{::open(directory_name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (!directory) {
      throw lab::os_error("open --dir " + directory_name);
    }
    const auto idle = std::chrono::seconds(args.get_int("idle-timeout", 0, 86400));
    const Limits limits{idle, std::chrono::seconds(args.get_int("request-timeout", 1, 86400))};
    DigestCache cache;
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t served = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      ++served;
      const std::string peer = client->peer.to_string();
      lab::say("client {} connected", peer);
      // One client at a time: a silent client, or one that stops reading or
      // sending half way, would hold the server for ever. converse waits for
      // each request at most `idle`; SO_RCVTIMEO and SO_SNDTIMEO limit every
      // single read and write as well.
      lab::set_receive_timeout(client->socket, idle);
      const timeval send_limit{static_cast<time_t>(idle.count()), 0};
      ::setsockopt(client->socket.get(), SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
      try {
        converse(client->socket, directory, directory_name, cache, limits);
        lab::say("client {} left", peer);
      } catch (const lab::ProtocolError& error) {
        lab::say("client {} dropped: {}", peer, error.what());
        try {
          sh::send_frame(client->socket, sh::kTypeError, error.what());
        } catch (const std::system_error&) {
          // The client is gone already; there is nobody to tell.
        }
      } catch (const std::system_error& error) {
        lab::say("client {} lost: {}", peer, error.what());
      }
    }
    lab::say("stopped after {} client(s)", served);
    return 0;
  });
}
