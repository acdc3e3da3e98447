// Lesson 13 — from a request's target to a file's bytes: percent-decoding
// the path, opening the file it names only if it lies under the served root
// (whatever "..", "%2e%2e" or a symlink say), its content type, and sending
// it a piece at a time.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab::http {

// The folder to serve as the kernel names it (symlinks and ".." resolved):
// the prefix every file we open must have. "/" becomes "", so that
// root + "/" is "/".
inline std::string served_root(const std::string& folder) {
  char* resolved = ::realpath(folder.c_str(), nullptr);
  if (resolved == nullptr) {
    throw os_error("realpath " + folder);
  }
  std::string root(resolved);
  std::free(resolved);  // NOLINT: realpath(3) allocates with malloc
  return root == "/" ? "" : root;
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path part of a target, percent-decoded: "/a%20b?x" -> "/a b".
// Returns nullopt for what no file can be named: no leading '/', a broken
// %-escape, or a NUL byte (which would end the path early in open(2)).
inline std::optional<std::string> decoded_path(const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    return std::nullopt;
  }
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    if (i + 2 >= path.size() || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
    i += 2;
  }
  if (out.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return out;
}

inline std::string content_type(const std::string& path) {
  const std::size_t dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".txt" || ext == ".md") return "text/plain; charset=utf-8";
  if (ext == ".css") return "text/css";
  if (ext == ".js") return "text/javascript";
  if (ext == ".json") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  return "application/octet-stream";
}

// The file a path names under `root` (a realpath, without a trailing '/'),
// opened; or the status to answer instead (403, 404).
//
// A path is text from the network: "/../../etc/passwd", "/%2e%2e/x" (which
// decodes to "/../x"), or a symlink inside the root that points outside it.
// Checking the text for ".." misses the symlink, and checking realpath(3)
// of the name before open leaves a gap in which the name can change. So we
// open first, then ask the kernel what we actually opened: the link
// /proc/self/fd/N names the opened file's real path, symlinks and ".."
// resolved. Outside the root: close it and answer 403.
struct Opened {
  Fd file;
  std::uint64_t size = 0;
  std::string path;
  int status = 200;
};

inline Opened open_under_root(const std::string& root, const std::string& path) {
  std::string name = root + path;
  if (!name.empty() && name.back() == '/') {
    name += "index.html";
  }
  Opened opened;
  // O_NONBLOCK: opening a FIFO someone left in the root must not block us.
  opened.file = Fd{::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (!opened.file) {
    opened.status = (errno == EACCES || errno == EPERM) ? 403 : 404;
    return opened;
  }
  std::array<char, PATH_MAX> real{};
  const std::string link = "/proc/self/fd/" + std::to_string(opened.file.get());
  const ssize_t length = ::readlink(link.c_str(), real.data(), real.size() - 1);
  const std::string real_path = length > 0 ? std::string(real.data(), static_cast<std::size_t>(length)) : "";
  if (real_path.rfind(root + "/", 0) != 0) {
    opened.status = 403;  // outside the root (or unknown): never served
    opened.file.reset();
    return opened;
  }
  struct stat info {};
  if (::fstat(opened.file.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    opened.status = S_ISDIR(info.st_mode) ? 403 : 404;  // no directory listings
    opened.file.reset();
    return opened;
  }
  opened.size = static_cast<std::uint64_t>(info.st_size);
  opened.path = real_path;
  return opened;
}

// The body, a piece at a time: a large file is never held in memory. Each
// write_all gives up after the send deadline (SO_SNDTIMEO, set by the
// ClientClock) if the client stops reading; clock.check() ends a download
// that takes longer than the request deadline altogether.
inline void send_file(const Fd& connection, const Opened& file, const ClientClock& clock) {
  constexpr std::size_t kFileReadSize = 64 * 1024;
  std::string buffer(kFileReadSize, '\0');
  std::uint64_t left = file.size;
  while (left > 0) {
    const ssize_t got = ::read(file.file.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) {
      throw_if_stop_requested();
      continue;
    }
    if (got <= 0) {
      // The file shrank under us: we promised Content-Length bytes and
      // cannot keep the promise, so the only honest move is to close.
      throw ProtocolError("the file changed while it was being sent");
    }
    const std::size_t used = static_cast<std::size_t>(std::min<std::uint64_t>(left, static_cast<std::uint64_t>(got)));
    clock.check();
    write_all(connection, std::string_view(buffer.data(), used));
    left -= used;
  }
}

}  // namespace lab::http
