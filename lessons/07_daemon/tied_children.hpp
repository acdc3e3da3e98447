// Lesson 07 — children that die with their parent, shown: a middle process
// starts a tied child (fork_tied_to_parent, PR_SET_PDEATHSIG) and an
// ordinary one, then ends; we watch which of them outlives it. This is
// Python's Process(daemon=True), done by the kernel. The control client runs
// it as its `orphans` command and at the end of `demo`:
//
//   build/default/lessons/07_daemon/client orphans
#pragma once

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/program.hpp"

namespace lab::daemon {

// Waits up to `timeout` for process `pid` (not necessarily our child) to end.
inline bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  // A pidfd names this very process, so a recycled pid cannot fool us.
  const Fd pidfd = open_pidfd(pid);
  if (!pidfd) {
    return errno == ESRCH;  // already gone
  }
  return pidfd_ended_within(pidfd, timeout);
}

// Runs the demonstration and reports what it sees. Returns whether the tied
// child ended with its parent.
inline bool show_tied_children() {
  using namespace std::chrono_literals;
  // We become a "subreaper": orphans among our descendants are handed to us
  // (not to pid 1), so we can watch them and reap them.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    throw os_error("prctl PR_SET_CHILD_SUBREAPER");
  }
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) {
    throw os_error("pipe2");
  }
  Fd read_end{ends[0]};
  Fd write_end{ends[1]};
  std::fflush(stdout);
  const pid_t middle = ::fork();
  if (middle < 0) {
    throw os_error("fork");
  }
  if (middle == 0) {
    auto wait_for_ever = [] {
      for (;;) {
        ::pause();
      }
      return 0;
    };
    std::array<pid_t, 2> children{};
    try {
      children[0] = fork_tied_to_parent(wait_for_ever, SIGKILL);
    } catch (const std::exception& error) {
      warn("{}", error.what());
      ::_exit(3);
    }
    children[1] = ::fork();
    if (children[1] == 0) {
      wait_for_ever();
    }
    [[maybe_unused]] const ssize_t sent = ::write(write_end.get(), children.data(), sizeof children);
    ::_exit(0);  // the parent ends; its children stay behind
  }
  write_end.reset();
  std::array<pid_t, 2> children{};
  const auto got = read_exact(read_end, sizeof children);
  int middle_status = 0;
  while (::waitpid(middle, &middle_status, 0) < 0 && errno == EINTR) {
  }
  if (!got) {
    say("orphans: the middle process {}", ExitStatus::from_wait_status(middle_status).to_string());
    return false;
  }
  std::memcpy(children.data(), got->data(), sizeof children);
  const auto [tied, untied] = children;
  say("orphans: parent {} started tied child {} and ordinary child {}, then exited", middle, tied, untied);

  const bool tied_gone = wait_gone(tied, 1000ms);
  int tied_status = 0;
  if (tied_gone) {
    ::waitpid(tied, &tied_status, 0);  // ours to reap: we are the subreaper
    say("orphans: tied child {} {} when its parent ended", tied,
        ExitStatus::from_wait_status(tied_status).to_string());
  } else {
    say("orphans: tied child {} is still running 1 s after its parent ended", tied);
    ::kill(tied, SIGKILL);
    ::waitpid(tied, nullptr, 0);
  }
  std::ifstream stat("/proc/" + std::to_string(untied) + "/stat");
  std::string text;
  std::getline(stat, text);
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  char state = '?';
  pid_t adopted_by = 0;
  fields >> state >> adopted_by;
  say("orphans: ordinary child {} is still running (state {}), an orphan adopted by {} (us: {})", untied,
      state, adopted_by, ::getpid());
  ::kill(untied, SIGKILL);
  int untied_status = 0;
  ::waitpid(untied, &untied_status, 0);
  say("orphans: so we end it ourselves: {}", ExitStatus::from_wait_status(untied_status).to_string());
  return tied_gone;
}

}  // namespace lab::daemon
