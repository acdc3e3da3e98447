#include "lab/forked.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/stop.hpp"

namespace lab {

namespace {

[[noreturn]] void run_child(const std::function<int()>& body, pid_t parent, bool die_with_parent) {
  int code = 70;
  try {
    if (die_with_parent) {
      // If the parent has already died before prctl, getppid no longer
      // names it: leave at once instead of running as an orphan.
      if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) {
        ::_exit(70);
      }
    }
    code = body();
  } catch (const StopRequested&) {
    code = 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "worker %d: %s\n", static_cast<int>(::getpid()), error.what());
  } catch (...) {
    std::fprintf(stderr, "worker %d: an unknown exception\n", static_cast<int>(::getpid()));
  }
  std::fflush(stdout);  // only what this child printed: the parent flushed before fork
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace

ForkedChildren::~ForkedChildren() {
  for (Worker& worker : children_) {
    if (!worker.status) {
      ::kill(worker.pid, SIGKILL);
      reap(worker, true);
    }
  }
}

pid_t ForkedChildren::start(const std::function<int()>& body, bool die_with_parent) {
  if (running() >= max_running_) {
    for (Worker& worker : children_) {
      reap(worker, false);  // some may have ended since; kept, so wait_all still reports them
    }
  }
  if (running() >= max_running_) {
    throw TooManyChildren(std::to_string(running()) + " worker processes already running, the most allowed");
  }
  // The child's pidfd needs a descriptor: hold one now, so that a process
  // short of descriptors fails here, before a child exists, and never after
  // the child has started its work (and, for a server, answered its client).
  Fd reserved{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  if (!reserved) {
    throw os_error("open /dev/null (a descriptor for the child's pidfd)");
  }
  const pid_t parent = ::getpid();
  // Whatever sits in our stdio buffers would otherwise be copied into the
  // child and printed twice.
  std::fflush(nullptr);
  children_.reserve(children_.size() + 1);  // no allocation failure after the fork
  // Every signal blocked across fork(2): otherwise a SIGTERM meant for the
  // child could run our handler in the child before it has its own stop,
  // and request the stop that parent and child still share.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) {
    reserved.reset();
    give_child_its_own_stop();
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);  // what came meanwhile reaches the child's stop
    run_child(body, parent, die_with_parent);
  }
  const int fork_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    throw os_error(fork_error, "fork");
  }
  Worker worker;
  worker.pid = pid;
  reserved.reset();  // its number is free again, for the pidfd
  worker.pidfd = open_pidfd(pid);
  if (!worker.pidfd) {
    const std::system_error error = os_error("pidfd_open");
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw error;
  }
  children_.push_back(std::move(worker));
  return pid;
}

void ForkedChildren::reap(Worker& worker, bool block) {
  if (worker.status) {
    return;
  }
  int status = 0;
  pid_t got = 0;
  do {
    got = ::waitpid(worker.pid, &status, block ? 0 : WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got == worker.pid) {
    worker.status = ExitStatus::from_wait_status(status);
    worker.pidfd.reset();
  } else if (got < 0) {
    worker.status = ExitStatus{};  // reaped by somebody else (ECHILD): nothing left to wait for
    worker.pidfd.reset();
  }
}

bool ForkedChildren::wait_until_all_ended(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (Worker& worker : children_) {
    while (!worker.status) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return false;
      }
      pollfd ended{worker.pidfd.get(), POLLIN, 0};
      const int ready = ::poll(&ended, 1, static_cast<int>(left.count()) + 1);
      if (ready < 0 && errno != EINTR) {
        throw os_error("poll pidfd");
      }
      if (ready > 0) {
        reap(worker, true);  // it has ended: waitpid returns at once
      }
    }
  }
  return true;
}

std::vector<ExitStatus> ForkedChildren::wait_all(std::chrono::milliseconds timeout) {
  if (!wait_until_all_ended(timeout)) {
    throw TimeoutError(std::to_string(running()) + " of " + std::to_string(children_.size()) +
                       " worker processes still running after " + std::to_string(timeout.count()) + " ms");
  }
  std::vector<ExitStatus> statuses;
  statuses.reserve(children_.size());
  for (const Worker& worker : children_) {
    statuses.push_back(*worker.status);
  }
  return statuses;
}

std::size_t ForkedChildren::reap_finished() {
  std::size_t reaped = 0;
  for (Worker& worker : children_) {
    if (!worker.status) {
      reap(worker, false);
      reaped += worker.status ? 1 : 0;
    }
  }
  // Forget the reaped ones, so a long-running server's list stays short.
  std::erase_if(children_, [](const Worker& worker) { return worker.status.has_value(); });
  return reaped;
}

std::optional<ExitStatus> ForkedChildren::status_of(pid_t pid) {
  for (Worker& worker : children_) {
    if (worker.pid == pid) {
      reap(worker, false);
      return worker.status;
    }
  }
  return std::nullopt;
}

void ForkedChildren::stop_all(std::chrono::milliseconds grace) {
  for (Worker& worker : children_) {
    if (!worker.status) {
      ::kill(worker.pid, SIGTERM);
    }
  }
  if (!wait_until_all_ended(grace)) {
    for (Worker& worker : children_) {
      if (!worker.status) {
        ::kill(worker.pid, SIGKILL);
        reap(worker, true);
      }
    }
  }
}

std::vector<int> ForkedChildren::pidfds() const {
  std::vector<int> fds;
  for (const Worker& worker : children_) {
    if (!worker.status) {
      fds.push_back(worker.pidfd.get());
    }
  }
  return fds;
}

std::size_t ForkedChildren::running() const {
  std::size_t count = 0;
  for (const Worker& worker : children_) {
    count += worker.status ? 0 : 1;
  }
  return count;
}

}  // namespace lab
