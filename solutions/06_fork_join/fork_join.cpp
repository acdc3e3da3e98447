// Reference solution of exercise 06 (lessons/06_fork_join/fork_join.hpp).
#include "fork_join.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <stdexcept>

#include "lab/error.hpp"
#include "lab/fd.hpp"

namespace lab::fork_join {

namespace {

ExitStatus decode(int wait_status) {
  ExitStatus status;
  if (WIFEXITED(wait_status)) {
    status.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    status.signal = WTERMSIG(wait_status);
    status.code = 128 + status.signal;
  }
  return status;
}

// waitpid(pid, ..., 0), retrying EINTR: blocks until that child ends.
ExitStatus join(pid_t pid) {
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) {
      throw os_error("waitpid " + std::to_string(pid));
    }
  }
  return decode(wait_status);
}

}  // namespace

std::vector<ChildExit> spawn_and_join(int count, const std::function<int(int index)>& work) {
  if (count < 0) {
    throw std::invalid_argument("spawn_and_join: count must not be negative, got " +
                                std::to_string(count));
  }
  // Anything still buffered would be copied into every child and printed by
  // each of them.
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<ChildExit> workers;
  workers.reserve(static_cast<std::size_t>(count));  // no allocation between fork and push_back
  for (int index = 0; index < count; ++index) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      for (const ChildExit& started : workers) {  // no half-started group left behind
        ::kill(started.pid, SIGKILL);
        (void)join(started.pid);
      }
      throw os_error(error, "fork");
    }
    if (pid == 0) {
      // The child. It must never return into the caller's code: one process
      // would become two running the same loop.
      int code = 1;
      try {
        code = work(index);
      } catch (...) {
        code = 1;
      }
      ::_exit(code);  // not exit(): that would flush the parent's stdio buffers again
    }
    workers.push_back({pid, {}});
  }
  // Join in index order. Waiting for worker 0 first does not slow the others:
  // they are already running; a worker that ends early waits as a zombie.
  for (ChildExit& worker : workers) {
    worker.status = join(worker.pid);
  }
  return workers;
}

std::vector<ChildExit> reap_exited() {
  std::vector<ChildExit> reaped;
  for (;;) {
    int wait_status = 0;
    const pid_t pid = ::waitpid(-1, &wait_status, WNOHANG);
    if (pid > 0) {
      reaped.push_back({pid, decode(wait_status)});
      continue;  // one SIGCHLD may stand for many ended children
    }
    if (pid == 0) {
      return reaped;  // the remaining children are still running
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == ECHILD) {
      return reaped;  // no children at all
    }
    throw os_error("waitpid");
  }
}

bool is_alive(pid_t child) {
  siginfo_t info{};
  // WNOWAIT: look at the child's state but leave it to be reaped later.
  while (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) {
      continue;
    }
    if (errno == ECHILD) {
      return false;  // not our child, or already reaped
    }
    throw os_error("waitid " + std::to_string(child));
  }
  return info.si_pid == 0;  // 0: no state change to report, it still runs
}

ExitStatus terminate(pid_t child, std::chrono::milliseconds grace) {
  if (!is_alive(child)) {
    return join(child);  // already ended: signalling it would be pointless
  }
  // A pidfd names this very process: unlike a pid it cannot come to mean
  // another process, and poll(2) reports it readable once the process ends.
  const Fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, child, 0))};
  if (!pidfd) {
    throw os_error("pidfd_open " + std::to_string(child));
  }
  if (::kill(child, SIGTERM) != 0) {
    throw os_error("kill " + std::to_string(child) + " SIGTERM");
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      break;
    }
    pollfd entry{pidfd.get(), POLLIN, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
    if (ready > 0) {
      return join(child);
    }
    if (ready < 0 && errno != EINTR) {
      throw os_error("poll pidfd");
    }
  }
  // Still running after the grace: SIGKILL cannot be caught, blocked or ignored.
  ::kill(child, SIGKILL);
  return join(child);
}

Isolation change_in_child(int& variable, int new_value) {
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) {
    throw os_error("pipe2");
  }
  Fd read_end{ends[0]};
  Fd write_end{ends[1]};
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw os_error("fork");
  }
  if (pid == 0) {
    // The child writes to its own copy of `variable`. Only async-signal-safe
    // calls from here on: the parent may have had other threads.
    variable = new_value;
    const std::array<int, 3> report{variable, static_cast<int>(::getpid()),
                                    static_cast<int>(::getppid())};
    // 12 bytes, less than PIPE_BUF: one write, all or nothing.
    ssize_t written = -1;
    do {
      written = ::write(write_end.get(), report.data(), sizeof report);
    } while (written < 0 && errno == EINTR);
    ::_exit(written == static_cast<ssize_t>(sizeof report) ? 0 : 1);
  }
  // The parent closes its copy of the write end, or its read would never
  // see end of stream.
  write_end.reset();
  std::array<int, 3> report{};
  std::size_t got = 0;
  while (got < sizeof report) {
    const ssize_t n =
        ::read(read_end.get(), reinterpret_cast<char*>(report.data()) + got, sizeof report - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  const ExitStatus status = join(pid);
  if (got != sizeof report || !status.success()) {
    throw std::runtime_error("the child sent " + std::to_string(got) + " of " +
                             std::to_string(sizeof report) + " bytes and " + status.to_string());
  }
  return Isolation{report[1], report[2], report[0], variable};
}

}  // namespace lab::fork_join
