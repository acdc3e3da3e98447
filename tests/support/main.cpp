// The main() of every doctest executable in the lab.
// No doctest signal handlers: a crash ends the case with its signal, which
// the grader reports ("killed by SIGSEGV"); doctest's handlers are not
// async-signal-safe, which ThreadSanitizer rightly reports.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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
  std::string secret;
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
  char secret[64];
  std::size_t got = 0;
  while (got < 32) {  // 32 hexadecimal digits
    const ssize_t n = ::recv(fd, secret + got, 32 - got, 0);
    if (n <= 0 && !(n < 0 && errno == EINTR)) {
      return;
    }
    got += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  verdict_channel().fd = fd;
  verdict_channel().secret.assign(secret, got);
}

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
  void test_case_start(const doctest::TestCaseData& data) override { current_ = data.m_name; }
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
    outcomes().push_back({current_, stats.testCaseSuccess});
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
  std::string text = "begin " + channel.secret + "\n";
  for (const auto& outcome : VerdictListener::outcomes()) {
    text += (outcome.passed && run_result == 0 ? "passed " : "failed ") + outcome.name + "\n";
  }
  text += "end " + channel.secret + "\n";
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

}  // namespace

int main(int argc, char** argv) {
  // Tests write to sockets whose peer has gone on purpose; the lab's helpers
  // send with MSG_NOSIGNAL, but a student's first send_all may not yet: a
  // failing case should fail with EPIPE, not kill every case with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // Line-buffered even into a pipe: a case killed at its timeout or by a
  // crash must not take the failures it already printed with it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  doctest::Context context(argc, argv);
  const int result = context.run();
  report_verdict(result);
  return result;
}
