// Lesson 04 — the remote-command and file server, now with framing: every
// message is an 8-byte header (magic, version, type, length) and a payload.
// A command's reply carries stdout, stderr and the exit status separately;
// "get NAME" sends the file's size and SHA-256, then its data in chunks.
// Hostile input (a 4 GiB length, garbage, a truncated frame, silence) costs
// that one client its connection, never the server. One client at a time.
//
//   build/default/lessons/04_struct_header/server                 (127.0.0.1:9004, serves .)
//   build/default/lessons/04_struct_header/server --dir ~/public  (serves ~/public)
#include <fcntl.h>
#include <fmt/core.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/sha256.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"
#include "struct_header.hpp"

namespace {

namespace sh = lab::struct_header;

// Requests are a command or a file name: nothing longer is legitimate, so a
// larger length is refused before a byte of it is read.
constexpr std::uint32_t kMaxRequest = 4096;

// A request the server refuses; the message goes back in a kTypeError frame.
class Refusal : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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

// ---- files -------------------------------------------------------------------

// Opens `name` inside the served directory, or says why not. The name must
// be one plain component, and openat2(2) with RESOLVE_BENEATH refuses any
// path, including through a symbolic link, that would leave the directory.
lab::Fd open_served_file(const lab::Fd& directory, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Refusal(fmt::format("refused {}: give a plain file name (no '/', not '.' or '..')", lab::preview(name)));
  }
  open_how how{};
  // O_NONBLOCK: opening a FIFO must not wait for a writer; we refuse it below.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  lab::Fd file{static_cast<int>(::syscall(SYS_openat2, directory.get(), name.c_str(), &how, sizeof how))};
  if (!file) {
    switch (errno) {
      case ENOENT: throw Refusal(fmt::format("no such file: {}", lab::preview(name)));
      case EXDEV:
      case ELOOP: throw Refusal(fmt::format("refused {}: it leads outside the served directory", lab::preview(name)));
      default: throw Refusal(fmt::format("cannot open {}: {}", lab::preview(name), std::strerror(errno)));
    }
  }
  struct stat status {};
  if (::fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
    throw Refusal(fmt::format("refused {}: not a regular file", lab::preview(name)));
  }
  return file;
}

// pread(2) of up to buffer.size() bytes at `offset`; 0 at the end of the file.
std::size_t read_at(const lab::Fd& file, std::string& buffer, std::uint64_t offset) {
  for (;;) {
    const ssize_t got = ::pread(file.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (got >= 0) {
      return static_cast<std::size_t>(got);
    }
    if (errno != EINTR) {
      throw lab::os_error("read a served file");
    }
  }
}

// Sends the file in two passes over it, each in chunks, so that neither
// side ever holds more than one chunk: first the SHA-256 (it goes in the
// header, before the data), then the data.
void send_file(const lab::Fd& connection, const lab::Fd& directory, const std::string& name) {
  const lab::Fd file = open_served_file(directory, name);
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw lab::os_error("fstat");
  }
  sh::FileInfo info;
  info.size = static_cast<std::uint64_t>(status.st_size);
  std::string chunk(sh::kFileChunk, '\0');
  lab::Sha256 hasher;
  for (std::uint64_t done = 0; done < info.size;) {
    const std::size_t got = read_at(file, chunk, done);
    if (got == 0) {
      throw Refusal(fmt::format("{} changed while it was being read; try again", lab::preview(name)));
    }
    hasher.update(std::string_view(chunk.data(), got));
    done += got;
  }
  info.sha256 = hasher.finish();
  sh::send_frame(connection, sh::kTypeFileInfo, sh::encode_file_info(info));

  for (std::uint64_t sent = 0; sent < info.size;) {
    const std::size_t got = read_at(file, chunk, sent);
    if (got == 0) {
      // The announced size can no longer be kept: say so in a frame, which
      // the client reads where it expected data.
      sh::send_frame(connection, sh::kTypeError, "the file shrank while it was being sent");
      return;
    }
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(got, info.size - sent));
    sh::send_frame(connection, sh::kTypeFileData, std::string_view(chunk.data(), wanted));
    sent += wanted;
  }
  lab::say("  sent {} ({} bytes, sha256 {})", lab::preview(name), info.size, lab::to_hex(info.sha256));
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

void converse(const lab::Fd& connection, const lab::Fd& directory, const std::string& directory_name,
              std::chrono::seconds idle) {
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
          send_file(connection, directory, request->payload);
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
  spec.details = "Commands: " + lab::allowed_command_names() + ". Wire format: lessons/04_struct_header/README.md\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const std::string directory_name = args.get("dir");
    const lab::Fd directory{::open(directory_name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (!directory) {
      throw lab::os_error("open --dir " + directory_name);
    }
    const auto idle = std::chrono::seconds(args.get_int("idle-timeout", 0, 86400));
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
        converse(client->socket, directory, directory_name, idle);
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
