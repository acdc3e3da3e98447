// The main() of every doctest executable in the lab.
// No doctest signal handlers: a crash ends the case with its signal, which
// the grader reports ("killed by SIGSEGV"); doctest's handlers are not
// async-signal-safe, which ThreadSanitizer rightly reports.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lab/sanitizers.hpp"

// From tests/support/testing.cpp (lab/testing.hpp): the list of programs a
// case started and what they wrote on stderr. Declared weak here because
// not every test program links the helpers (the grader's fixtures do not):
// without them, these are null and the report is skipped.
namespace lab::testing {
__attribute__((weak)) void forget_programs();
__attribute__((weak)) std::string programs_report();
__attribute__((weak)) std::string programs_report_at_deadline();
}  // namespace lab::testing

namespace {

// The verdict channel of `lab grade` (tests/lab/grader.cpp; docs/instructors.md,
// "What the grader defends"). The grader hands each case a socket whose
// number is in LAB_VERDICT_FD and whose first bytes are a secret made for
// that one run. The case passes only if this main() writes the secret back
// with the result, after doctest has run it: a case that exits early
// (exit(0) in an exercise), prints doctest-looking text or dies reports
// nothing, and fails.
struct VerdictChannel {
  int fd = -1;
  // In static storage, never on the heap, where a replaced allocator (which
  // the grader refuses anyway) would see it.
  char secret[32] = {};
};

VerdictChannel& verdict_channel() {
  static VerdictChannel channel;
  return channel;
}

// Priority 101 runs before every constructor without a priority, so before
// any static initialiser of a student's file: the secret is read, and gone
// from the environment and the socket, before student code can run.
__attribute__((constructor(101))) void take_verdict_channel() {
  const char* text = std::getenv("LAB_VERDICT_FD");
  if (text == nullptr) {
    return;  // not run by the grader: a rerun by hand, ctest, the self-checks
  }
  int fd = -1;
  const auto [end, error] = std::from_chars(text, text + std::strlen(text), fd);
  ::unsetenv("LAB_VERDICT_FD");
  if (error != std::errc{} || *end != '\0' || fd < 3) {
    return;
  }
  // Programs the case starts must not inherit the channel.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  VerdictChannel& channel = verdict_channel();
  std::size_t got = 0;
  while (got < sizeof channel.secret) {  // 32 hexadecimal digits
    const ssize_t n = ::recv(fd, channel.secret + got, sizeof channel.secret - got, 0);
    if (n <= 0 && !(n < 0 && errno == EINTR)) {
      return;
    }
    got += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  channel.fd = fd;
}

// The deadline channel of `lab _case` (tests/lab/supervise.cpp): a socket
// whose number is in LAB_DEADLINE_FD. When the case runs out of time the
// supervisor writes one byte on it, gives the case a moment, then kills it.
// Without this, a case killed at its timeout takes what its programs wrote
// on stderr with it, and that is where they say why it hung ("connect:
// Connection refused", "not implemented").
int& deadline_channel() {
  static int fd = -1;
  return fd;
}

__attribute__((constructor(101))) void take_deadline_channel() {
  const char* text = std::getenv("LAB_DEADLINE_FD");
  if (text == nullptr) {
    return;  // not run by the grader
  }
  int fd = -1;
  const auto [end, error] = std::from_chars(text, text + std::strlen(text), fd);
  ::unsetenv("LAB_DEADLINE_FD");
  if (error != std::errc{} || *end != '\0' || fd < 3) {
    return;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // not for the programs the case starts
  deadline_channel() = fd;
}

// Waits, on a thread of its own, for the deadline, then prints the
// programs' report (lab::testing::programs_report_at_deadline) and ends the
// process. A thread waiting on a descriptor, not a signal handler: the tests
// and the students' code use signals of their own (SIGUSR1 in lesson 02's
// tests, SIGUSR2 in 06's and 08's) and may block them, and a report cannot
// be put together in a handler. Nothing the case does can hold it up for
// long either: the report reads the programs' pipes without waiting, and is
// written with write(2), not stdio, whose lock the case's thread may hold.
// If it still does not finish, the supervisor's kill ends it all the same.
class DeadlineWatch {
 public:
  DeadlineWatch() {
    const int deadline = deadline_channel();
    // Under ThreadSanitizer a second thread would make every fork of a case
    // the fork of a threaded process, whose child TSan kills if it starts a
    // thread: there the report is left out.
    if (deadline < 0 || lab::testing::kThreadSanitizer) {
      return;
    }
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    if (stop_ < 0) {
      return;
    }
    // Every signal blocked on the watch's thread: a signal the case blocks on
    // its own thread to wait for it (sigwaitinfo, signalfd: SIGCHLD, say)
    // must still find that thread, not this one.
    sigset_t all{};
    sigset_t before{};
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    thread_ = std::thread([this, deadline] { watch(deadline); });
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;
  ~DeadlineWatch() {
    if (::getpid() != owner_) {
      return;  // a forked child of the case, returning through main: the watch is its parent's
    }
    if (thread_.joinable()) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t written = ::write(stop_, &one, sizeof one);
      thread_.join();
    }
    if (stop_ >= 0) {
      ::close(stop_);
    }
  }

 private:
  void watch(int deadline) const {
    pollfd entries[2] = {{deadline, POLLIN, 0}, {stop_, POLLIN, 0}};
    while (::poll(entries, 2, -1) < 0) {
      if (errno != EINTR) {
        return;
      }
    }
    char byte = 0;
    if (entries[1].revents != 0 || ::recv(deadline, &byte, 1, 0) != 1) {
      return;  // the case ended in time, or the supervisor is gone
    }
    std::string report;
    if (lab::testing::programs_report_at_deadline != nullptr) {
      try {
        report = lab::testing::programs_report_at_deadline();
      } catch (const std::exception& error) {
        report = std::string("(no report of the programs: ") + error.what() + ")\n";
      }
      std::size_t written = 0;
      while (written < report.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, report.data() + written, report.size() - written);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          break;
        }
        written += static_cast<std::size_t>(n);
      }
    }
    ::_exit(1);  // the supervisor reports the timeout, whatever the status
  }

  pid_t owner_ = ::getpid();
  int stop_ = -1;
  std::thread thread_;
};

struct CaseOutcome {
  std::string name;
  bool passed = false;
};

// Records every case doctest ran and whether it passed: doctest's own view,
// not the process's exit status or what it printed.
class VerdictListener : public doctest::IReporter {
 public:
  explicit VerdictListener(const doctest::ContextOptions& /*options*/) {}
  static std::vector<CaseOutcome>& outcomes() {
    static std::vector<CaseOutcome> list;
    return list;
  }
  void report_query(const doctest::QueryData& /*data*/) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& /*stats*/) override {}
  void test_case_start(const doctest::TestCaseData& data) override {
    current_ = data.m_name;
    if (lab::testing::forget_programs != nullptr) {
      lab::testing::forget_programs();
    }
  }
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
    outcomes().push_back({current_, stats.testCaseSuccess});
    // The programs' stderr holds the reason a two-program case failed (the
    // server's "bind: Address already in use", the client's "not
    // implemented"): shown after the case's failures, where `lab grade` finds it.
    if (!stats.testCaseSuccess && lab::testing::programs_report != nullptr) {
      const std::string report = lab::testing::programs_report();
      std::fputs(report.c_str(), stdout);
      std::fflush(stdout);
    }
  }
  void test_case_exception(const doctest::TestCaseException& /*data*/) override {}
  void subcase_start(const doctest::SubcaseSignature& /*signature*/) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& /*data*/) override {}
  void log_message(const doctest::MessageData& /*data*/) override {}
  void test_case_skipped(const doctest::TestCaseData& /*data*/) override {}

 private:
  std::string current_;
};

REGISTER_LISTENER("lab-verdict", 1, VerdictListener);

// "begin SECRET", one "passed NAME" or "failed NAME" per case, "end SECRET",
// in one write: the grader reads nothing it cannot check.
void report_verdict(int run_result) {
  const VerdictChannel& channel = verdict_channel();
  if (channel.fd < 0) {
    return;
  }
  const std::string secret(channel.secret, sizeof channel.secret);
  std::string text = "begin " + secret + "\n";
  for (const auto& outcome : VerdictListener::outcomes()) {
    text += (outcome.passed && run_result == 0 ? "passed " : "failed ") + outcome.name + "\n";
  }
  text += "end " + secret + "\n";
  std::size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = ::send(channel.fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

// Where a crash happened. A case killed by a signal says only "killed by
// SIGSEGV"; this handler first writes the crashing thread's return
// addresses, as offsets into the test program, on one line:
//   lab-crash-frames: 0x1a2b 0x3c4d ...
// and `lab grade` turns them into functions and file:line with addr2line.
// The sanitizer builds have reports of their own and keep their handlers.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LAB_OWN_CRASH_REPORT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LAB_OWN_CRASH_REPORT 0
#endif
#endif
#ifndef LAB_OWN_CRASH_REPORT
#define LAB_OWN_CRASH_REPORT 1
#endif

std::uintptr_t program_base = 0;  // where the test program is loaded (it is position-independent)

// Only async-signal-safe calls from here: write(2), no allocation, no stdio.
void write_hex(std::uintptr_t value) {
  char text[2 + 2 * sizeof value];
  std::size_t length = 0;
  char digits[2 * sizeof value];
  do {
    digits[length++] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  std::size_t at = 0;
  text[at++] = '0';
  text[at++] = 'x';
  while (length > 0) {
    text[at++] = digits[--length];
  }
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, text, at);
}

void report_crash(int signal_number) {
  void* frames[48];
  const int count = ::backtrace(frames, 48);
  constexpr char kStart[] = "\nlab-crash-frames:";
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, kStart, sizeof kStart - 1);
  for (int i = 0; i < count; ++i) {
    written = ::write(STDERR_FILENO, " ", 1);
    // A return address points after its call: one byte back is the call.
    write_hex(reinterpret_cast<std::uintptr_t>(frames[i]) - program_base - (i > 0 ? 1 : 0));
  }
  written = ::write(STDERR_FILENO, "\n", 1);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void install_crash_report() {
  if constexpr (LAB_OWN_CRASH_REPORT == 1) {
    // The first backtrace() loads the unwinder, which allocates: never in the handler.
    void* warm_up[1];
    ::backtrace(warm_up, 1);
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t /*size*/, void* /*data*/) {
          program_base = info->dlpi_addr;  // the first entry is the program itself
          return 1;
        },
        nullptr);
    // Its own stack, so that a stack overflow (endless recursion) is reported too.
    static char alternate[1 << 16];
    stack_t stack{};
    stack.ss_sp = alternate;
    stack.ss_size = sizeof alternate;
    ::sigaltstack(&stack, nullptr);
    struct sigaction action {};
    action.sa_handler = report_crash;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_ONSTACK;
    for (int signal_number : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
      ::sigaction(signal_number, &action, nullptr);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  install_crash_report();
  // Tests write to sockets whose peer has gone on purpose; the lab's helpers
  // send with MSG_NOSIGNAL, but a student's first send_all may not yet: a
  // failing case should fail with EPIPE, not kill every case with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // Line-buffered even into a pipe: a case killed at its timeout or by a
  // crash must not take the failures it already printed with it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const DeadlineWatch deadline_watch;
  doctest::Context context(argc, argv);
  const int result = context.run();
  report_verdict(result);
  return result;
}
