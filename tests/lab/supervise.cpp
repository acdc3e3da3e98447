#include "supervise.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include <fmt/core.h>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"

namespace lab::tool {

namespace {

// The parent pid field of /proc/PID/stat: after the command, which is in
// parentheses and may itself hold spaces and ')'.
pid_t parent_of(const std::filesystem::path& stat) {
  std::ifstream in(stat);
  std::string text;
  std::getline(in, text);
  const auto close = text.rfind(')');
  if (close == std::string::npos || close + 4 >= text.size()) {
    return -1;
  }
  // ") S 1234 ..." : state, then the parent.
  const std::string rest = text.substr(close + 4);
  pid_t parent = -1;
  std::from_chars(rest.data(), rest.data() + rest.size(), parent);
  return parent;
}

// Sends SIGKILL to every child of this process; returns how many.
int kill_children_of(pid_t self) {
  int killed = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    const auto [end, parse_error] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (parse_error == std::errc{} && end == name.data() + name.size() &&
        parent_of(entry.path() / "stat") == self && ::kill(pid, SIGKILL) == 0) {
      ++killed;
    }
  }
  return killed;
}

}  // namespace

void kill_own_children() {
  const pid_t self = ::getpid();
  // Each round kills every child there is, then reaps as many: a killed
  // child stays ours until it is reaped, and SIGKILL ends it, so each wait
  // returns. The orphans of those children are ours by then, for the next
  // round. Bounded: a fork bomb is held back by RLIMIT_NPROC, and a round
  // scans /proc once, however many children there are.
  for (int round = 0; round < 10000; ++round) {
    const int killed = kill_children_of(self);
    for (int reaped = 0; reaped < killed; ++reaped) {
      if (::waitpid(-1, nullptr, 0) < 0 && errno == ECHILD) {
        return;
      }
    }
    const pid_t more = ::waitpid(-1, nullptr, WNOHANG);
    if (more < 0 && errno == ECHILD) {
      return;
    }
    if (killed == 0 && more == 0) {
      // A child the scan did not see yet (it was being created): look again shortly.
      ::usleep(1000);
    }
  }
}

int supervise_case(const std::vector<std::string>& args) {
  if (args.size() < 3 || args[1] != "--") {
    throw std::invalid_argument("usage: lab _case TIMEOUT_MS -- PROGRAM ARGS...");
  }
  int timeout_ms = 0;
  std::from_chars(args[0].data(), args[0].data() + args[0].size(), timeout_ms);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // The deadline channel (tests/support/main.cpp, LAB_DEADLINE_FD): at the
  // timeout, one byte on it tells the case to print what its programs wrote
  // on stderr before it is killed. A socket, so that a case that closed its
  // end costs us an EPIPE (sent with MSG_NOSIGNAL), not a SIGPIPE.
  std::array<int, 2> ends{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
    throw os_error("socketpair");
  }
  const Fd deadline{ends[0]};
  Fd theirs{ends[1]};
  SpawnOptions options;
  options.capture_stdout = false;  // the case writes straight into the grader's pipe
  options.capture_stderr = false;
  options.new_process_group = true;
  options.environment = {{"LAB_DEADLINE_FD", std::to_string(theirs.get())}};
  options.inherit = {theirs.get()};
  Child program = Child::spawn(std::vector<std::string>(args.begin() + 2, args.end()), options);
  theirs.reset();
  const pid_t group = program.pid();
  auto status = program.wait_for(std::chrono::milliseconds(timeout_ms));
  const bool timed_out = !status;
  if (timed_out) {
    // A moment to report, well inside the grader's backstop (timeout + 5 s).
    // The case's report reads without waiting, so this is only ever the
    // whole wait for a case that ignores the deadline: then it is killed.
    constexpr auto kReportGrace = std::chrono::milliseconds(1500);
    try {
      write_all(deadline, "!", Descriptor::socket);
    } catch (const std::system_error&) {
      // The case closed its end (EPIPE): no report, only the kill.
    }
    status = program.wait_for(kReportGrace);
  }
  ::kill(-group, SIGKILL);
  if (!status) {
    program.send_signal(SIGKILL);
    program.wait();
  }
  kill_own_children();
  if (timed_out) {
    return kCaseTimedOut;
  }
  if (status->signal != 0) {
    // End the way the case ended, so the grader sees "killed by SIGSEGV".
    std::fflush(nullptr);
    ::signal(status->signal, SIG_DFL);
    ::raise(status->signal);
  }
  return status->code;
}

}  // namespace lab::tool
