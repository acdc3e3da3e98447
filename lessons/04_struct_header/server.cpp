// Lesson 04 — the remote-command and file server, now with framing: every
// message is an 8-byte header (magic, version, type, length) and a payload.
// A command's reply carries stdout, stderr and the exit status separately;
// "get NAME" sends the file's size and SHA-256, then its data in chunks; the
// digest of a file already served is remembered, so the second download of
// it starts at once.
// Hostile input (a 4 GiB length, garbage, a truncated frame, silence) costs
// that one client its connection, never the server. One client at a time.
//
//   build/default/lessons/04_struct_header/server                 (127.0.0.1:9004, serves .)
//   build/default/lessons/04_struct_header/server --dir ~/public  (serves ~/public)
#include <fcntl.h>
#include <fmt/core.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <compare>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
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

// pread(2) of up to `size` bytes at `offset` into `into`; 0 at the end of
// the file.
std::size_t read_at(const lab::Fd& file, char* into, std::size_t size, std::uint64_t offset) {
  for (;;) {
    const ssize_t got = ::pread(file.get(), into, size, static_cast<off_t>(offset));
    if (got >= 0) {
      return static_cast<std::size_t>(got);
    }
    if (errno != EINTR) {
      throw lab::os_error("read a served file");
    }
    lab::throw_if_stop_requested();
  }
}

using Clock = std::chrono::steady_clock;

// Every step of a download checks both: a stop (SIGINT/SIGTERM) ends the
// server within moments even half way through 1 GiB, and a request that
// takes longer than --request-timeout (a client reading very slowly) is
// dropped so that the next client gets its turn.
void check_stop_and_deadline(Clock::time_point deadline) {
  lab::throw_if_stop_requested();
  if (Clock::now() >= deadline) {
    throw lab::TimeoutError("the request took longer than --request-timeout");
  }
}

// Sends all of `bytes` before `deadline`. A plain blocking send(2) is not
// enough here: a signal that arrives while send has already queued part of
// the data makes it return that short count, not EINTR, and the next
// blocking send would sleep through the stop. So send(2) never blocks
// (MSG_DONTWAIT), and only when the socket buffer is full do we poll(2),
// on the socket and on the stop's eventfd together, until the deadline.
void send_before(const lab::Fd& socket, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a client that has gone is an EPIPE error, not a SIGPIPE.
    const ssize_t sent = ::send(socket.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));  // a short write: send the rest
      continue;
    }
    if (errno == EINTR) {
      lab::throw_if_stop_requested();
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      throw lab::os_error("send");
    }
    check_stop_and_deadline(deadline);
    pollfd waits[2] = {{socket.get(), POLLOUT, 0}, {lab::process_stop().fd(), POLLIN, 0}};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(waits, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0))) < 0 && errno != EINTR) {
      throw lab::os_error("poll");
    }
  }
}

// What identifies one version of a file: the same device, inode, size and
// modification and change times. A write to the file changes mtime and
// ctime, so a cached digest is only ever used for the bytes it was made of.
// (A write within the same clock tick that keeps the size could slip
// through; the client's own check of the digest then refuses the download,
// so the worst case is a failed download, never a wrong file kept.)
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t modified_s = 0;
  std::int64_t modified_ns = 0;
  std::int64_t changed_s = 0;
  std::int64_t changed_ns = 0;
  auto operator<=>(const FileIdentity&) const = default;
};

FileIdentity identity_of(const lab::Fd& file) {
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw lab::os_error("fstat");
  }
  return {static_cast<std::uint64_t>(status.st_dev), static_cast<std::uint64_t>(status.st_ino),
          static_cast<std::uint64_t>(status.st_size), status.st_mtim.tv_sec, status.st_mtim.tv_nsec,
          status.st_ctim.tv_sec, status.st_ctim.tv_nsec};
}

// The digests of files served before, so that asking for the same file again
// starts sending at once instead of after a hashing pass over all of it.
// Bounded: a client asking for many files cannot make it grow for ever.
class DigestCache {
 public:
  [[nodiscard]] std::optional<lab::Sha256::Digest> find(const FileIdentity& file) const {
    const auto found = digests_.find(file);
    return found == digests_.end() ? std::nullopt : std::optional(found->second);
  }
  void remember(const FileIdentity& file, const lab::Sha256::Digest& digest) {
    if (digests_.size() >= kMaxEntries) {
      digests_.erase(digests_.begin());
    }
    digests_[file] = digest;
  }

 private:
  static constexpr std::size_t kMaxEntries = 1024;
  std::map<FileIdentity, lab::Sha256::Digest> digests_;
};

// The SHA-256 of exactly the first `size` bytes. If the file grew since
// fstat, the last read returns more than that: those bytes are not hashed,
// because they are not going to be sent.
lab::Sha256::Digest hash_prefix(const lab::Fd& file, std::uint64_t size, const std::string& name,
                                Clock::time_point deadline) {
  std::vector<char> buffer(1024 * 1024);  // large reads: few system calls
  lab::Sha256 hasher;
  for (std::uint64_t done = 0; done < size;) {
    check_stop_and_deadline(deadline);
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - done));
    const std::size_t got = read_at(file, buffer.data(), wanted, done);
    if (got == 0) {
      throw Refusal(fmt::format("{} shrank while it was being read; try again", lab::preview(name)));
    }
    hasher.update(std::string_view(buffer.data(), got));
    done += got;
  }
  return hasher.finish();
}

// Sends the size and SHA-256 (they go in the header, before the data), then
// the data in kFileChunk frames: exactly `size` bytes, the same ones that
// were hashed, whatever happens to the file meanwhile. Neither side ever
// holds more than one chunk of it.
void send_file(const lab::Fd& connection, const lab::Fd& directory, const std::string& name, DigestCache& cache,
               Clock::time_point deadline) {
  const lab::Fd file = open_served_file(directory, name);
  const FileIdentity before = identity_of(file);
  sh::FileInfo info;
  info.size = before.size;
  if (const auto known = cache.find(before)) {
    info.sha256 = *known;
  } else {
    info.sha256 = hash_prefix(file, info.size, name, deadline);
    // Remembered only if the file did not change while it was hashed.
    if (identity_of(file) == before) {
      cache.remember(before, info.sha256);
    }
  }
  sh::send_frame(connection, sh::kTypeFileInfo, sh::encode_file_info(info));

  // One buffer: the frame header, then the chunk read straight after it, so
  // each frame leaves in one send(2) and nothing is copied in between.
  std::vector<char> frame(sh::kHeaderSize + sh::kFileChunk);
  for (std::uint64_t sent = 0; sent < info.size;) {
    check_stop_and_deadline(deadline);
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(sh::kFileChunk, info.size - sent));
    const std::size_t got = read_at(file, frame.data() + sh::kHeaderSize, wanted, sent);
    if (got == 0) {
      // The announced size can no longer be kept: say so in a frame, which
      // the client reads where it expected data.
      sh::send_frame(connection, sh::kTypeError, "the file shrank while it was being sent; try again");
      return;
    }
    const sh::HeaderBytes header = sh::encode_header({sh::kTypeFileData, static_cast<std::uint32_t>(got)});
    std::copy(header.begin(), header.end(), frame.begin());
    send_before(connection, std::string_view(frame.data(), sh::kHeaderSize + got), deadline);
    sent += got;
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
          send_file(connection, directory, request->payload, cache, Clock::now() + limits.request);
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
