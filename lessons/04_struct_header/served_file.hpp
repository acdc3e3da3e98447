// Lesson 04 — the server's side of "get NAME": opening a file only inside the
// served directory, and reading it. Given code, not an exercise: read it.
#pragma once

#include <fcntl.h>
#include <fmt/core.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"

namespace lab::file_server {

// A request the server refuses; the message goes back in a kTypeError frame,
// and the client may go on asking for something else.
class Refusal : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Opens `name` inside the served directory, or says why not. The name must
// be one plain component, and openat2(2) with RESOLVE_BENEATH refuses any
// path, including through a symbolic link, that would leave the directory.
inline Fd open_served_file(const Fd& directory, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Refusal(fmt::format("refused {}: give a plain file name (no '/', not '.' or '..')", preview(name)));
  }
  open_how how{};
  // O_NONBLOCK: opening a FIFO must not wait for a writer; we refuse it below.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  Fd file{static_cast<int>(::syscall(SYS_openat2, directory.get(), name.c_str(), &how, sizeof how))};
  if (!file) {
    switch (errno) {
      case ENOENT: throw Refusal(fmt::format("no such file: {}", preview(name)));
      case EXDEV:
      case ELOOP: throw Refusal(fmt::format("refused {}: it leads outside the served directory", preview(name)));
      default: throw Refusal(fmt::format("cannot open {}: {}", preview(name), std::strerror(errno)));
    }
  }
  struct stat status {};
  if (::fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
    throw Refusal(fmt::format("refused {}: not a regular file", preview(name)));
  }
  return file;
}

// pread(2) of up to `size` bytes at `offset` into `into`; 0 at the end of
// the file. pread, not read: each caller says where it reads, so hashing
// and sending never share (or have to rewind) a file position.
inline std::size_t read_at(const Fd& file, char* into, std::size_t size, std::uint64_t offset) {
  for (;;) {
    const ssize_t got = ::pread(file.get(), into, size, static_cast<off_t>(offset));
    if (got >= 0) {
      return static_cast<std::size_t>(got);
    }
    if (errno != EINTR) {
      throw os_error("read a served file");
    }
    throw_if_stop_requested();
  }
}

}  // namespace lab::file_server
