// Lesson 07 — the daemon's log: one line per event, appended, rotated past a
// size limit, and reopened by name when SIGHUP says an outside tool (mv,
// logrotate) has moved it. A daemon has no terminal: this file is its voice.
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"

namespace lab::daemon {

// SIGHUP → the handler adds 1 to an eventfd that the main loop polls; the
// loop then reopens the log. (The handler itself may only call
// async-signal-safe functions: no open, no fmt.)
inline int g_reopen_event = -1;

extern "C" inline void on_sighup(int /*signal*/) {
  const int saved_errno = errno;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(g_reopen_event, &one, sizeof one);
  errno = saved_errno;
}

// The eventfd that becomes readable after a SIGHUP.
inline Fd watch_sighup() {
  Fd event{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  if (!event) {
    throw os_error("eventfd");
  }
  g_reopen_event = event.get();
  struct sigaction action {};
  action.sa_handler = on_sighup;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(SIGHUP, &action, nullptr) != 0) {
    throw os_error("sigaction SIGHUP");
  }
  return event;
}

// O_APPEND makes each write go to the current end, even if another process
// (or logrotate) touches the file. Each client can add a line, so without a
// bound a crowd of clients (or one sending garbage in a loop) would fill the
// disk: past `max_bytes` the file is rotated (LOG -> LOG.1) and a new one
// started.
class Log {
 public:
  Log(std::string path, std::size_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) { reopen(); }
  // After `mv daemon.log daemon.log.1` we still write to the renamed file
  // (same inode); reopening by name starts a new one.
  void reopen() {
    Fd file{::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)};
    if (!file) {
      throw os_error("open " + path_);
    }
    struct stat status {};
    if (::fstat(file.get(), &status) != 0) {
      throw os_error("fstat " + path_);
    }
    file_ = std::move(file);
    size_ = static_cast<std::size_t>(status.st_size);
  }
  void line(const std::string& text) {
    const std::string entry = "[" + std::to_string(::getpid()) + "] " + text + "\n";
    if (size_ + entry.size() > max_bytes_ && size_ > 0) {
      // rename(2) replaces LOG.1 atomically; we then reopen by name.
      if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0) {
        throw os_error("rename " + path_);
      }
      reopen();
    }
    write_all(file_, entry, lab::Descriptor::not_socket);  // a file: one write(2), no fstat
    size_ += entry.size();
  }

 private:
  std::string path_;
  std::size_t max_bytes_;
  std::size_t size_ = 0;
  Fd file_;
};

}  // namespace lab::daemon
