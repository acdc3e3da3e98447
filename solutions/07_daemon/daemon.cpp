// Reference solution of exercise 07 (lessons/07_daemon/daemon.hpp).
#include "daemon.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <vector>

#include "lab/error.hpp"
#include "lab/io.hpp"

namespace lab::daemon {

namespace {

// The pid written in an open pid file, or 0 if it holds no number.
pid_t read_pid(const Fd& file) {
  std::array<char, 32> text{};
  ssize_t got = -1;
  do {
    got = ::pread(file.get(), text.data(), text.size(), 0);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    return 0;
  }
  pid_t pid = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + got, pid);
  return error == std::errc{} && pid > 0 ? pid : 0;
}

// An exclusive lock on the whole file, without waiting. Why F_OFD_SETLK and
// not the classic F_SETLK: a classic ("process-associated") lock belongs to
// the process, so (1) closing *any* descriptor of the file in this process —
// say a library that reads the pid file — silently drops it, and (2) a second
// F_SETLK from the same process succeeds, so one process cannot tell it
// already holds the lock. An open-file-description lock belongs to this one
// open(2): it lasts exactly as long as this descriptor and its duplicates,
// and conflicts with every other open, even in the same process. (flock(2)
// has the same ownership and would do as well.)
bool try_lock(const Fd& file) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // the whole file, however long it grows
  if (::fcntl(file.get(), F_OFD_SETLK, &lock) == 0) {
    return true;
  }
  if (errno == EAGAIN || errno == EACCES) {
    return false;
  }
  throw os_error("fcntl F_OFD_SETLK");
}

void write_all_or_exit(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

// The original process: wait for the daemon's report, relay it, exit.
[[noreturn]] void relay_readiness(Fd readiness, pid_t first_child) {
  while (::waitpid(first_child, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::string message;
  std::array<char, 512> chunk{};
  for (;;) {
    const ssize_t got = ::read(readiness.get(), chunk.data(), chunk.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    message.append(chunk.data(), static_cast<std::size_t>(got));
  }
  if (message.empty()) {
    write_all_or_exit(STDERR_FILENO, "the daemon exited before it was ready\n");
    ::_exit(1);
  }
  const bool ready = message.front() == 'R';
  write_all_or_exit(ready ? STDOUT_FILENO : STDERR_FILENO, message.substr(1) + "\n");
  ::_exit(ready ? 0 : 1);
}

void report(Fd& readiness, char kind, std::string_view line) {
  if (readiness) {
    write_all(readiness, std::string(1, kind) + std::string(line));
    readiness.reset();  // end of stream: the original process can exit now
  }
}

}  // namespace

AlreadyRunning::AlreadyRunning(pid_t pid, const std::string& path)
    : std::runtime_error("already running as pid " + std::to_string(pid) + " (pid file " + path + ")"),
      pid_(pid) {}

PidFile PidFile::acquire(const std::string& path) {
  Fd file{::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (!file) {
    throw os_error("open " + path);
  }
  if (!try_lock(file)) {
    throw AlreadyRunning(read_pid(file), path);  // the holder's file stays as it is
  }
  // Ours now; a stale pid from a crashed daemon is simply overwritten.
  if (::ftruncate(file.get(), 0) != 0) {
    throw os_error("ftruncate " + path);
  }
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::pwrite(file.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    throw os_error("write " + path);
  }
  return PidFile(path, std::move(file));
}

PidFile::~PidFile() {
  if (fd_) {
    ::unlink(path_.c_str());  // while we still hold the lock
  }
}  // fd_ closes here, which releases the lock

std::optional<pid_t> locked_by(const std::string& path) {
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!file) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw os_error("open " + path);
  }
  // F_OFD_GETLK asks "would this lock conflict?" without taking it.
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(file.get(), F_OFD_GETLK, &lock) != 0) {
    throw os_error("fcntl F_OFD_GETLK " + path);
  }
  if (lock.l_type == F_UNLCK) {
    return std::nullopt;  // a stale file: nobody holds the lock
  }
  return read_pid(file);
}

Fd daemonize(std::span<const int> keep) {
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) {
    throw os_error("pipe2");
  }
  Fd read_end{ends[0]};
  Fd write_end{ends[1]};
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t first = ::fork();
  if (first < 0) {
    throw os_error("fork");
  }
  if (first > 0) {
    write_end.reset();  // or our read would never see the daemon's end of stream
    relay_readiness(std::move(read_end), first);
  }
  read_end.reset();
  // Keep the pipe off 0, 1 and 2 (the starter may have closed one of them),
  // or the /dev/null redirection below would overwrite it.
  if (write_end.get() <= 2) {
    write_end.reset(::fcntl(write_end.get(), F_DUPFD_CLOEXEC, 3));
  }
  // A new session: no controlling terminal, and no terminal's SIGHUP.
  if (::setsid() < 0) {
    ::_exit(1);
  }
  const pid_t second = ::fork();
  if (second < 0) {
    ::_exit(1);
  }
  if (second > 0) {
    ::_exit(0);  // the session leader leaves; the daemon can never get a terminal
  }
  if (::chdir("/") != 0) {
    report_failure(write_end, "chdir /: " + std::string(std::strerror(errno)));
    ::_exit(1);
  }
  ::umask(027);  // files we create: no write for the group, nothing for others
  Fd null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  for (int target = 0; target < 3; ++target) {
    if (!null || ::dup2(null.get(), target) < 0) {  // dup2 clears CLOEXEC on the copy
      report_failure(write_end, "stdio to /dev/null: " + std::string(std::strerror(errno)));
      ::_exit(1);
    }
  }
  if (null.get() <= 2) {
    (void)null.release();  // it is one of 0, 1, 2 now: keep it open
  }
  // Close every inherited descriptor above 2 except the ones we keep: walk
  // the gaps between them with close_range(2).
  std::vector<unsigned> kept{static_cast<unsigned>(write_end.get())};
  for (const int fd : keep) {
    kept.push_back(static_cast<unsigned>(fd));
  }
  if (null) {
    kept.push_back(static_cast<unsigned>(null.get()));  // closed by its owner on return
  }
  std::sort(kept.begin(), kept.end());
  unsigned from = 3;
  for (const unsigned fd : kept) {
    if (fd > from) {
      ::syscall(SYS_close_range, from, fd - 1, 0U);
    }
    from = std::max(from, fd + 1);
  }
  ::syscall(SYS_close_range, from, ~0U, 0U);
  return write_end;
}

void report_ready(Fd& readiness, std::string_view line) { report(readiness, 'R', line); }

void report_failure(Fd& readiness, std::string_view line) { report(readiness, 'F', line); }

pid_t fork_tied_to_parent(const std::function<int()>& body, int death_signal) {
  const pid_t parent = ::getpid();
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw os_error("fork");
  }
  if (pid > 0) {
    return pid;
  }
  // The child. Inherited handlers might catch the signal and carry on.
  ::signal(death_signal, SIG_DFL);
  if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0) {
    ::_exit(1);
  }
  // If the parent died before prctl, we were already handed to another
  // parent and no signal will come: behave as if it had.
  if (::getppid() != parent) {
    ::raise(death_signal);
  }
  int code = 1;
  try {
    code = body();
  } catch (...) {
    code = 1;
  }
  ::_exit(code);
}

}  // namespace lab::daemon
