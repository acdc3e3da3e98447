// Lesson 07 — daemon processes. The functions you write in daemon.cpp
// (exercises 07.1–07.3). The reference answers are in
// solutions/07_daemon/daemon.cpp: look only after trying.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "lab/fd.hpp"

namespace lab::daemon {

// ---- Exercise 07.1: the locked pid file ------------------------------------
//
// A pid file says which process is the running daemon, and its lock says
// that this process is still alive: the kernel drops a lock when its owner
// dies, however it dies. So "is a daemon running?" is "is the file locked?",
// never "does the file exist?" (a crash leaves the file behind: stale).

// Another process holds the lock. what() reads
// "already running as pid 1234 (pid file /tmp/x.pid)".
class AlreadyRunning : public std::runtime_error {
 public:
  AlreadyRunning(pid_t pid, const std::string& path);
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_;
};

class PidFile {
 public:
  // Opens (creating, mode 0644) the file at `path` with O_CLOEXEC, takes an
  // exclusive lock on it without waiting, then truncates it and writes
  // "<our pid>\n". If another holder has the lock, reads the pid written in
  // the file and throws AlreadyRunning, leaving the file untouched. A file
  // that exists but is not locked is stale: take it over. Other errors throw
  // std::system_error naming the path ("open /nonexistent/x.pid: ...").
  //
  // Which lock: fcntl(F_OFD_SETLK) or flock(LOCK_EX | LOCK_NB). Explain in
  // a comment why not the classic fcntl(F_SETLK): read fcntl(2), "Open file
  // description locks" (a test checks that a second acquire of the same file
  // refuses even from the same process).
  static PidFile acquire(const std::string& path);

  // Removes the file (only if this object still owns it), then closes the
  // descriptor, which releases the lock. Unlink first: a new instance that
  // locks the old file between the two steps would then lose it.
  ~PidFile();

  PidFile(PidFile&& other) noexcept = default;
  PidFile& operator=(PidFile&&) = delete;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  PidFile(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  Fd fd_;  // open for as long as we run: closing it would drop the lock
};

// The pid written in the file at `path` if some process holds its lock;
// nullopt if there is no file or nobody holds the lock (a stale file).
// Test the lock without taking it for long: try to lock, and release at
// once if that worked (or use F_OFD_GETLK).
std::optional<pid_t> locked_by(const std::string& path);

// ---- Exercise 07.2: daemonize ----------------------------------------------
//
// Turns the calling process into a daemon (守护进程) and returns only in the
// daemon, with the write end of a "readiness" pipe. Step by step:
//   1. pipe2(O_CLOEXEC); fflush stdout and stderr; fork.
//   2. The original process (the one the shell or the control client
//      started) closes the write end, reaps the first child, and reads the
//      pipe to its end. Then it ends with _exit, never returning:
//        "R<text>" → prints <text> and "\n" to stdout, _exit(0)
//        "F<text>" → prints <text> and "\n" to stderr, _exit(1)
//        nothing   → prints "the daemon exited before it was ready" to stderr, _exit(1)
//   3. The first child calls setsid(): a new session with no controlling
//      terminal, so a closing terminal's SIGHUP cannot reach it.
//   4. It forks again and _exit(0)s: the grandchild is not a session leader,
//      so opening a terminal can never make it the session's controlling
//      terminal (the point of the second fork).
//   5. The grandchild — the daemon — does chdir("/") (it must not keep a
//      directory busy, e.g. one you want to unmount or delete), umask(027),
//      opens /dev/null on descriptors 0, 1 and 2, and closes every other
//      descriptor it inherited (close_range(2)) except the pipe's write end
//      and those listed in `keep`.
// Use report_ready / report_failure (below) from the daemon to finish step 2.
// Failures before the fork throw std::system_error.
Fd daemonize(std::span<const int> keep = {});

// Writes "R" + line (or "F" + line) to the readiness pipe and closes it. The
// original process prints the line and exits 0 (or 1). If the daemon dies
// without calling either, the pipe closes by itself and the original
// process says so.
void report_ready(Fd& readiness, std::string_view line);
void report_failure(Fd& readiness, std::string_view line);

// ---- Exercise 07.3: the child that dies with its parent --------------------
//
// The other meaning of "daemon" in the Python course: a
// multiprocessing.Process with daemon=True ends when its parent ends. Linux
// offers this with prctl(PR_SET_PDEATHSIG, death_signal): the kernel sends
// the child `death_signal` when its parent dies.
//
// Forks a child that runs body() and _exits with its value (1 if it throws).
// Returns the child's pid in the parent. In the child, before body():
//  * restore the default action of death_signal (the child inherited the
//    parent's handlers, which may just set a flag and carry on);
//  * call prctl(PR_SET_PDEATHSIG, death_signal);
//  * close the race: if the parent died between fork and prctl, no signal
//    will ever come. Compare getppid() with the parent's pid taken before
//    fork; if they differ, raise(death_signal) at once.
// Note: "parent" means the parent *thread* that forked; the signal comes
// when that thread ends, even if the rest of the process lives on.
pid_t fork_tied_to_parent(const std::function<int()>& body, int death_signal = SIGKILL);

}  // namespace lab::daemon
