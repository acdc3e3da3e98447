// Graded tests of lesson 06 (lessons/06_fork_join/fork_join.hpp), and
// end-to-end tests of its forking server and its client. Built twice:
// against the student's fork_join.cpp (label "grade") and against
// solutions/06_fork_join (label "reference").
//
// Every child a test forks runs only async-signal-safe calls and ends with
// _exit, and is owned by a Forked object that kills and reaps it if the case
// ends early. The facts are read from the kernel: /proc/self/task/*/children
// for our children, /proc/PID/stat for their states.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <system_error>
#include <set>
#include <sstream>
#include <thread>

#include "fork_join.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::fork_join::ChildExit;
using lab::testing::child_pids;

namespace {

// Under ThreadSanitizer every fork costs tens of milliseconds (it stops and
// copies its own state), so the cases that fork hundreds of processes use
// fewer there. This code has no threads: TSan adds nothing but that cost.
#if defined(__SANITIZE_THREAD__)
constexpr bool kSlowFork = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kSlowFork = true;
#else
constexpr bool kSlowFork = false;
#endif
#else
constexpr bool kSlowFork = false;
#endif
constexpr int kManyChildren = kSlowFork ? 20 : 50;
constexpr int kClientBatches = kSlowFork ? 2 : 8;  // of 25 clients each

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

struct Pipe {
  Fd read_end;
  Fd write_end;
};

Pipe make_pipe() {
  std::array<int, 2> ends{};
  REQUIRE(::pipe2(ends.data(), O_CLOEXEC) == 0);
  return {Fd{ends[0]}, Fd{ends[1]}};
}

// Async-signal-safe pieces for the children's bodies.
void child_sleep_ms(long ms) {
  timespec time{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&time, &time) != 0 && errno == EINTR) {
  }
}

void child_wait_for_eof(int fd) {
  char byte = 0;
  for (;;) {
    const ssize_t got = ::read(fd, &byte, 1);
    if (got == 0 || (got < 0 && errno != EINTR)) {
      return;
    }
  }
}

void child_say_ready(int fd) { [[maybe_unused]] const ssize_t n = ::write(fd, "r", 1); }

// The child's own SIGTERM/SIGUSR1 disposition: the test process (doctest)
// may have handlers installed, which the child inherits.
void child_default(int signal_number) { ::signal(signal_number, SIG_DFL); }

// A child process forked by a test, running `body` and then _exit(0).
// The destructor kills it (through a pidfd, which cannot name a recycled
// pid) and reaps it unless somebody already did: no case leaves a process.
class Forked {
 public:
  explicit Forked(const std::function<void()>& body) {
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = ::fork();
    REQUIRE_MESSAGE(pid_ >= 0, "fork failed");
    if (pid_ == 0) {
      body();
      ::_exit(0);
    }
    pidfd_ = lab::open_pidfd(pid_);
  }
  ~Forked() {
    if (pidfd_) {
      lab::signal_pidfd(pidfd_, SIGKILL);
    }
    // ECHILD: the code under test has reaped it already, as it should.
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  Forked(const Forked&) = delete;
  Forked& operator=(const Forked&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Blocks until the child has ended, leaving it unreaped (a zombie).
  void wait_until_ended() const {
    siginfo_t info{};
    int result = 0;
    do {
      result = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
    } while (result != 0 && errno == EINTR);
    REQUIRE_MESSAGE(result == 0, "waitid WNOWAIT on child ", pid_, " failed");
  }

 private:
  pid_t pid_ = -1;
  Fd pidfd_;
};

std::string pids_text(const std::vector<int>& pids) {
  std::string text;
  for (int pid : pids) {
    text += (text.empty() ? "" : " ") + std::to_string(pid);
  }
  return "[" + text + "]";
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or '?' if gone.
char process_state(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const auto close_paren = text.rfind(')');  // the command name may contain spaces
  if (close_paren == std::string::npos || close_paren + 2 >= text.size()) {
    return '?';
  }
  return text[close_paren + 2];
}

// Children of process `pid` (any of its threads), from /proc.
std::vector<int> children_of(int pid) {
  std::vector<int> pids;
  std::error_code error;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    std::ifstream children(task.path() / "children");
    int child = 0;
    while (children >> child) {
      pids.push_back(child);
    }
  }
  return pids;
}

// Sends stdout to a pipe while alive, and restores it on destruction (even
// when the case ends by an exception). captured() reads what was written.
class CapturedStdout {
 public:
  CapturedStdout() : pipe_(make_pipe()), saved_(::dup(STDOUT_FILENO)) {
    std::fflush(stdout);
    REQUIRE(::dup2(pipe_.write_end.get(), STDOUT_FILENO) >= 0);
  }
  ~CapturedStdout() { restore(); }
  CapturedStdout(const CapturedStdout&) = delete;
  CapturedStdout& operator=(const CapturedStdout&) = delete;

  std::string captured() {
    restore();
    pipe_.write_end.reset();
    return lab::read_to_end(pipe_.read_end, 1 << 16);
  }

 private:
  void restore() {
    if (saved_) {
      std::fflush(stdout);
      ::dup2(saved_.get(), STDOUT_FILENO);
      saved_.reset();
    }
  }
  Pipe pipe_;
  Fd saved_;
};

// Fd of the write end to close when SIGALRM fires: a watchdog that releases
// children blocked on a pipe, so a blocking waitpid in the code under test
// returns (and the case fails with a message) instead of hanging.
volatile std::sig_atomic_t g_release_fd = -1;
extern "C" void on_alarm(int) {
  const int saved_errno = errno;
  if (g_release_fd >= 0) {
    ::close(g_release_fd);
    g_release_fd = -1;
  }
  errno = saved_errno;
}

class Watchdog {
 public:
  Watchdog(Fd& release, unsigned seconds) : release_(release) {
    struct sigaction action {};
    action.sa_handler = on_alarm;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGALRM, &action, &previous_);
    g_release_fd = release.get();
    ::alarm(seconds);
  }
  ~Watchdog() {
    ::alarm(0);
    ::sigaction(SIGALRM, &previous_, nullptr);
    if (fired()) {
      (void)release_.release();  // the handler closed it already
    }
    g_release_fd = -1;
  }
  [[nodiscard]] bool fired() const noexcept { return g_release_fd < 0; }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  Fd& release_;
  struct sigaction previous_ {};
};

ChildExit find(const std::vector<ChildExit>& list, pid_t pid) {
  for (const auto& entry : list) {
    if (entry.pid == pid) {
      return entry;
    }
  }
  FAIL("child ", pid, " is not in the list returned");
  return {};
}

}  // namespace


// ---- 06.1: what a worker may not do, and a waitpid interrupted -------------

namespace {

// An atexit handler of the test process. exit() in a forked worker would
// run it there: it then writes one byte to `atexit_witness_fd`.
std::atomic<int> atexit_witness_fd{-1};
std::atomic<pid_t> atexit_owner{0};

extern "C" void note_exit_in_child() {
  const int fd = atexit_witness_fd.load();
  if (fd >= 0 && ::getpid() != atexit_owner.load()) {
    [[maybe_unused]] const ssize_t n = ::write(fd, "x", 1);
  }
}

std::atomic<int> interruptions{0};
extern "C" void count_interruption(int) { interruptions.fetch_add(1); }


}  // namespace

// ---- 06.1 ------------------------------------------------------------------

TEST_CASE("06.1 spawn_and_join returns each worker's exit code in index order") {
  constexpr int kWorkers = 8;
  // Later workers finish first, so joining in finishing order would show.
  const auto joined = lab::fork_join::spawn_and_join(kWorkers, [](int index) {
    child_sleep_ms((kWorkers - index) * 4L);
    return index * 3;
  });
  REQUIRE(joined.size() == static_cast<std::size_t>(kWorkers));
  std::set<pid_t> pids;
  for (int i = 0; i < kWorkers; ++i) {
    const ChildExit& worker = joined[static_cast<std::size_t>(i)];
    INFO("worker ", i, " (pid ", worker.pid, ") ", worker.status.to_string());
    CHECK(worker.status == lab::ExitStatus{i * 3, 0});
    CHECK(worker.pid > 0);
    CHECK(worker.pid != ::getpid());
    pids.insert(worker.pid);
  }
  CHECK_MESSAGE(pids.size() == static_cast<std::size_t>(kWorkers), "every worker is its own process");
  CHECK_MESSAGE(child_pids().empty(), "children left after the join: ", pids_text(child_pids()));
}

TEST_CASE("06.1 a worker killed by a signal is reported as killed, not as exited") {
  const auto joined = lab::fork_join::spawn_and_join(4, [](int index) {
    if (index == 1) {
      ::raise(SIGKILL);
    }
    if (index == 2) {
      child_default(SIGUSR1);
      ::raise(SIGUSR1);
    }
    return index == 3 ? 255 : 0;
  });
  REQUIRE(joined.size() == 4);
  CHECK(joined[0].status == lab::ExitStatus{0, 0});
  INFO("worker 1: ", joined[1].status.to_string(), "; worker 2: ", joined[2].status.to_string());
  CHECK(joined[1].status.signal == SIGKILL);
  CHECK_FALSE(joined[1].status.exited());
  CHECK(joined[1].status.code == 128 + SIGKILL);
  CHECK(joined[2].status.signal == SIGUSR1);
  CHECK(joined[3].status == lab::ExitStatus{255, 0});
  CHECK_MESSAGE(child_pids().empty(), "children left after the join: ", pids_text(child_pids()));
}

TEST_CASE("06.1 exit codes are 8 bits: 256 arrives as 0 and 300 as 44") {
  const auto joined =
      lab::fork_join::spawn_and_join(3, [](int index) { return std::array{256, 300, 1}[static_cast<std::size_t>(index)]; });
  REQUIRE(joined.size() == 3);
  CHECK(joined[0].status == lab::ExitStatus{0, 0});
  CHECK(joined[1].status == lab::ExitStatus{44, 0});
  CHECK(joined[2].status == lab::ExitStatus{1, 0});
}

TEST_CASE("06.1 a worker that throws exits with status 1 and never returns into the caller") {
  const pid_t test_process = ::getpid();
  std::vector<ChildExit> joined;
  try {
    joined = lab::fork_join::spawn_and_join(3, [](int index) -> int {
      if (index == 1) {
        throw std::runtime_error("worker 1 fails");
      }
      return 0;
    });
  } catch (...) {
    if (::getpid() != test_process) {
      ::_exit(42);  // a child escaped spawn_and_join: make it visible as status 42
    }
    throw;
  }
  if (::getpid() != test_process) {
    ::_exit(43);  // a child returned from spawn_and_join into the test
  }
  REQUIRE(joined.size() == 3);
  INFO("42: the exception left the child's spawn_and_join; 43: the child returned from it");
  CHECK(joined[0].status == lab::ExitStatus{0, 0});
  CHECK(joined[1].status == lab::ExitStatus{1, 0});
  CHECK(joined[2].status == lab::ExitStatus{0, 0});
}

TEST_CASE("06.1 text buffered before the fork is printed once, not once per worker") {
  std::string out;
  {
    CapturedStdout capture;
    std::fputs("printed once", stdout);  // no newline: it stays in stdio's buffer
    const auto joined = lab::fork_join::spawn_and_join(3, [](int) {
      std::fflush(stdout);  // a worker that prints flushes whatever its copy of the buffer holds
      return 0;
    });
    CHECK(joined.size() == 3);
    out = capture.captured();
  }
  CHECK_MESSAGE(out == "printed once", "got '", out, "': flush stdout before fork");
}

TEST_CASE("06.1 a worker ends with _exit: the caller's atexit handlers do not run in it") {
  static const bool registered = std::atexit(note_exit_in_child) == 0;
  REQUIRE(registered);
  Pipe witness = make_pipe();
  atexit_owner.store(::getpid());
  atexit_witness_fd.store(witness.write_end.get());
  std::vector<ChildExit> joined;
  try {
    joined = lab::fork_join::spawn_and_join(2, [](int index) { return index; });
  } catch (...) {
    atexit_witness_fd.store(-1);
    throw;
  }
  atexit_witness_fd.store(-1);
  witness.write_end.reset();
  const auto ran = lab::read_some(witness.read_end, 16);
  CHECK_MESSAGE(!ran, "the caller's atexit handler ran in ", ran ? ran->size() : 0,
                " worker(s): end a child with _exit, not exit");
  REQUIRE(joined.size() == 2);
  CHECK(joined[1].status == lab::ExitStatus{1, 0});
}

TEST_CASE("06.1 a signal that interrupts the join's waitpid (EINTR) does not end it") {
  struct sigaction handler{};
  handler.sa_handler = count_interruption;  // no SA_RESTART: waitpid fails with EINTR
  sigemptyset(&handler.sa_mask);
  struct sigaction previous{};
  REQUIRE(::sigaction(SIGUSR2, &handler, &previous) == 0);
  interruptions.store(0);
  Pipe gate = make_pipe();
  const int read_fd = gate.read_end.get();
  const int write_fd = gate.write_end.get();
  const pid_t joiner = lab::testing::this_thread_id();
  const pthread_t joiner_thread = ::pthread_self();
  std::atomic<bool> join_returned{false};
  // The interrupter waits until the join sleeps in wait4, signals it once,
  // and then lets the worker end.
  auto interrupter = std::async(std::launch::async, [&] {
    const bool blocked = lab::testing::asleep_in(joiner, {SYS_wait4}, 5000ms, join_returned);
    if (blocked) {
      ::pthread_kill(joiner_thread, SIGUSR2);
      for (int i = 0; i < 2500 && interruptions.load() == 0; ++i) {
        std::this_thread::sleep_for(2ms);
      }
    }
    gate.write_end.reset();
    return blocked;
  });
  std::vector<ChildExit> joined;
  std::string failure;
  try {
    joined = lab::fork_join::spawn_and_join(1, [read_fd, write_fd](int) {
      ::close(write_fd);
      child_wait_for_eof(read_fd);
      return 6;
    });
  } catch (const std::system_error& error) {
    failure = error.what();
  } catch (...) {
    join_returned.store(true);
    (void)interrupter.get();
    ::sigaction(SIGUSR2, &previous, nullptr);
    throw;
  }
  join_returned.store(true);
  const bool was_blocked = interrupter.get();
  ::sigaction(SIGUSR2, &previous, nullptr);
  const auto left = child_pids();
  for (const int pid : left) {  // a join given up leaves its worker: end it
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  REQUIRE_MESSAGE(was_blocked, "spawn_and_join was never seen waiting in waitpid for its worker");
  CHECK(interruptions.load() == 1);
  REQUIRE_MESSAGE(failure.empty(), "waitpid failed with EINTR and spawn_and_join gave up: ", failure);
  REQUIRE(joined.size() == 1);
  CHECK(joined[0].status == lab::ExitStatus{6, 0});
  CHECK_MESSAGE(left.empty(), "children left after the join: ", pids_text(left));
}

TEST_CASE("06.1 zero workers fork nothing, and a negative count is refused") {
  const auto none = lab::fork_join::spawn_and_join(0, [](int) { return 0; });
  CHECK(none.empty());
  CHECK(child_pids().empty());
  CHECK_THROWS_AS(lab::fork_join::spawn_and_join(-1, [](int) { return 0; }), std::invalid_argument);
  CHECK(child_pids().empty());
}

// ---- 06.2 ------------------------------------------------------------------

TEST_CASE("06.2 reap_exited collects 50 children (20 under TSan) that ended at once, leaving no zombie") {
  REQUIRE_MESSAGE(child_pids().empty(), "a previous step left children: ", pids_text(child_pids()));
  Pipe gate = make_pipe();
  std::vector<std::unique_ptr<Forked>> children;
  for (int i = 0; i < kManyChildren; ++i) {
    const int read_fd = gate.read_end.get();
    const int write_fd = gate.write_end.get();
    children.push_back(std::make_unique<Forked>([read_fd, write_fd, i] {
      ::close(write_fd);  // or the pipe would never reach end of file
      child_wait_for_eof(read_fd);
      ::_exit(i);
    }));
  }
  gate.write_end.reset();  // all end together: their SIGCHLDs merge
  for (const auto& child : children) {
    child->wait_until_ended();
  }
  const auto reaped = lab::fork_join::reap_exited();
  CHECK(reaped.size() == static_cast<std::size_t>(kManyChildren));
  for (int i = 0; i < kManyChildren; ++i) {
    const pid_t pid = children[static_cast<std::size_t>(i)]->pid();
    const ChildExit entry = find(reaped, pid);
    CHECK(entry.status == lab::ExitStatus{i, 0});
  }
  CHECK_MESSAGE(child_pids().empty(), "zombies left: ", pids_text(child_pids()));
}

TEST_CASE("06.2 reap_exited returns at once and leaves running children alone") {
  REQUIRE(child_pids().empty());
  Pipe gate = make_pipe();
  std::vector<std::unique_ptr<Forked>> running;
  for (int i = 0; i < 3; ++i) {
    const int read_fd = gate.read_end.get();
    const int write_fd = gate.write_end.get();
    running.push_back(std::make_unique<Forked>([read_fd, write_fd] {
      ::close(write_fd);
      child_wait_for_eof(read_fd);
      ::_exit(9);
    }));
  }
  Forked quick_a([] { ::_exit(1); });
  Forked quick_b([] { ::_exit(2); });
  quick_a.wait_until_ended();
  quick_b.wait_until_ended();
  std::vector<ChildExit> first;
  bool watchdog_fired = false;
  {
    // If reap_exited blocks for the running children, the watchdog lets
    // them end after 3 s so the case can report it instead of hanging.
    Watchdog watchdog(gate.write_end, 3);
    first = lab::fork_join::reap_exited();
    watchdog_fired = watchdog.fired();
  }
  REQUIRE_MESSAGE(!watchdog_fired, "reap_exited waited for running children: use WNOHANG");
  CHECK(first.size() == 2);
  CHECK(find(first, quick_a.pid()).status == lab::ExitStatus{1, 0});
  CHECK(find(first, quick_b.pid()).status == lab::ExitStatus{2, 0});
  CHECK_MESSAGE(child_pids().size() == 3, "the running children must stay: ", pids_text(child_pids()));

  gate.write_end.reset();
  for (const auto& child : running) {
    child->wait_until_ended();
  }
  const auto second = lab::fork_join::reap_exited();
  CHECK(second.size() == 3);
  for (const auto& child : running) {
    CHECK(find(second, child->pid()).status == lab::ExitStatus{9, 0});
  }
  CHECK(child_pids().empty());
}

TEST_CASE("06.2 reap_exited with no children at all returns an empty list (ECHILD is not an error)") {
  REQUIRE(child_pids().empty());
  const auto reaped = lab::fork_join::reap_exited();
  CHECK(reaped.empty());
  const auto again = lab::fork_join::reap_exited();
  CHECK(again.empty());
}

TEST_CASE("06.2 reap_exited decodes exit codes and killing signals") {
  Forked clean([] { ::_exit(0); });
  Forked failed([] { ::_exit(42); });
  Forked killed([] { ::raise(SIGKILL); });
  Forked signalled([] {
    child_default(SIGUSR1);
    ::raise(SIGUSR1);
  });
  for (const Forked* child : {&clean, &failed, &killed, &signalled}) {
    child->wait_until_ended();
  }
  const auto reaped = lab::fork_join::reap_exited();
  CHECK(reaped.size() == 4);
  CHECK(find(reaped, clean.pid()).status == lab::ExitStatus{0, 0});
  CHECK(find(reaped, failed.pid()).status == lab::ExitStatus{42, 0});
  CHECK(find(reaped, killed.pid()).status == lab::ExitStatus{128 + SIGKILL, SIGKILL});
  CHECK(find(reaped, signalled.pid()).status == lab::ExitStatus{128 + SIGUSR1, SIGUSR1});
  CHECK(child_pids().empty());
}

// ---- 06.3 ------------------------------------------------------------------

TEST_CASE("06.3 terminate ends a child that obeys SIGTERM and reports the signal") {
  Pipe ready = make_pipe();
  const int ready_fd = ready.write_end.get();
  Forked child([ready_fd] {
    child_default(SIGTERM);
    child_say_ready(ready_fd);
    for (;;) {
      ::pause();
    }
  });
  ready.write_end.reset();
  REQUIRE(lab::read_exact(ready.read_end, 1) == "r");
  const lab::ExitStatus status = lab::fork_join::terminate(child.pid(), 3000ms);
  INFO("terminate returned: ", status.to_string());
  CHECK(status.signal == SIGTERM);
  CHECK(status.code == 128 + SIGTERM);
  CHECK_MESSAGE(child_pids().empty(), "terminate must reap the child: ", pids_text(child_pids()));
}

TEST_CASE("06.3 terminate kills a child that ignores SIGTERM once the grace has passed") {
  Pipe ready = make_pipe();
  const int ready_fd = ready.write_end.get();
  Forked stubborn([ready_fd] {
    ::signal(SIGTERM, SIG_IGN);
    child_say_ready(ready_fd);
    for (;;) {
      ::pause();
    }
  });
  ready.write_end.reset();
  REQUIRE(lab::read_exact(ready.read_end, 1) == "r");
  auto terminated = std::async(std::launch::async, [&stubborn] {
    return lab::fork_join::terminate(stubborn.pid(), 200ms);
  });
  if (terminated.wait_for(3s) != std::future_status::ready) {
    ::kill(stubborn.pid(), SIGKILL);  // what terminate should have done; it can return now
    (void)terminated.wait_for(3s);
    FAIL("terminate still waited 3 s after a 200 ms grace: send SIGKILL once the grace has passed");
  }
  const lab::ExitStatus status = terminated.get();
  INFO("terminate returned: ", status.to_string());
  CHECK(status.signal == SIGKILL);
  CHECK(child_pids().empty());
}

TEST_CASE("06.3 terminate reports the exit code of a child that handles SIGTERM") {
  Pipe ready = make_pipe();
  const int ready_fd = ready.write_end.get();
  Forked polite([ready_fd] {
    struct sigaction action {};
    action.sa_handler = [](int) { ::_exit(7); };  // a tidy shutdown, then exit 7
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, nullptr);
    child_say_ready(ready_fd);
    for (;;) {
      ::pause();
    }
  });
  ready.write_end.reset();
  REQUIRE(lab::read_exact(ready.read_end, 1) == "r");
  const lab::ExitStatus status = lab::fork_join::terminate(polite.pid(), 3000ms);
  CHECK(status == lab::ExitStatus{7, 0});
  CHECK(child_pids().empty());
}

TEST_CASE("06.3 terminate of a child that has already ended returns its status") {
  Forked gone([] { ::_exit(5); });
  gone.wait_until_ended();
  const lab::ExitStatus status = lab::fork_join::terminate(gone.pid(), 1000ms);
  CHECK(status == lab::ExitStatus{5, 0});
  CHECK(child_pids().empty());
}

TEST_CASE("06.3 is_alive: yes while running, no for a zombie, and it does not reap") {
  Pipe gate = make_pipe();
  const int read_fd = gate.read_end.get();
  const int write_fd = gate.write_end.get();
  Forked child([read_fd, write_fd] {
    ::close(write_fd);
    child_wait_for_eof(read_fd);
    ::_exit(0);
  });
  CHECK(lab::fork_join::is_alive(child.pid()));
  CHECK(lab::fork_join::is_alive(child.pid()));  // looking twice changes nothing
  gate.write_end.reset();
  child.wait_until_ended();
  CHECK_FALSE(lab::fork_join::is_alive(child.pid()));
  CHECK_MESSAGE(process_state(child.pid()) == 'Z', "the zombie must stay until it is reaped");
  const auto children = child_pids();
  CHECK_MESSAGE(std::count(children.begin(), children.end(), child.pid()) == 1,
                "is_alive reaped the child; children: ", pids_text(children));
}

TEST_CASE("06.3 is_alive is false for a process that is not our child") {
  CHECK_FALSE(lab::fork_join::is_alive(::getppid()));  // our parent: alive, but not ours to wait for
  Forked child([] { ::_exit(0); });
  child.wait_until_ended();
  int status = 0;
  REQUIRE(::waitpid(child.pid(), &status, 0) == child.pid());
  CHECK_FALSE(lab::fork_join::is_alive(child.pid()));  // reaped: no longer ours
}

// ---- 06.4 ------------------------------------------------------------------

namespace {
int g_x = 10;
}  // namespace

TEST_CASE("06.4 a child's x = 100 leaves the parent's global x at 10") {
  g_x = 10;
  const auto result = lab::fork_join::change_in_child(g_x, 100);
  CHECK(result.child_saw == 100);
  CHECK(result.parent_sees == 10);
  CHECK(g_x == 10);
  CHECK_MESSAGE(child_pids().empty(), "the child must be reaped: ", pids_text(child_pids()));
}

TEST_CASE("06.4 the child is another process, whose parent is the caller") {
  int local = 1;
  const auto result = lab::fork_join::change_in_child(local, 2);
  CHECK(result.child_pid > 0);
  CHECK(result.child_pid != ::getpid());
  CHECK(result.child_parent == ::getpid());
  CHECK(local == 1);
  CHECK(child_pids().empty());
}

TEST_CASE("06.4 heap memory is copied too, and negative values survive the pipe") {
  auto on_heap = std::make_unique<int>(-5);
  const auto result = lab::fork_join::change_in_child(*on_heap, -2000000000);
  CHECK(result.child_saw == -2000000000);
  CHECK(result.parent_sees == -5);
  CHECK(*on_heap == -5);
  const auto again = lab::fork_join::change_in_child(*on_heap, 0);
  CHECK(again.child_saw == 0);
  CHECK(again.child_pid != result.child_pid);
  CHECK(child_pids().empty());
}

// ---- The pair, end to end --------------------------------------------------

namespace {

// One client of the forking server: sends "NAME\n", returns the reply line.
std::string ask(const Fd& connection, const std::string& name) {
  lab::write_all(connection, name + "\n");
  lab::LineReader reader(connection);
  const auto reply = reader.next_line(3000ms);
  REQUIRE_MESSAGE(reply, "the server closed without answering ", name);
  return *reply;
}

pid_t replying_pid(const std::string& reply) {
  const auto at = reply.rfind("from pid ");
  REQUIRE_MESSAGE(at != std::string::npos, "unexpected reply '", reply, "'");
  return static_cast<pid_t>(std::stol(reply.substr(at + 9)));
}

// Waits (bounded: 5 s) until the server has no children left, and says
// what remains if some do, with their states.
std::string children_left(int server_pid) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::vector<int> left = children_of(server_pid);
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    left = children_of(server_pid);
  }
  std::string text;
  for (int pid : left) {
    text += std::to_string(pid) + " (state " + process_state(pid) + ") ";
  }
  return text;
}

}  // namespace

TEST_CASE("06.p pair: 200 clients (50 under TSan) served by the forking server leave zero zombies") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const int server_pid = server.child().pid();
  std::set<pid_t> served_by;
  for (int batch = 0; batch < kClientBatches; ++batch) {
    std::vector<Fd> open;
    for (int i = 0; i < 25; ++i) {
      open.push_back(lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()}));
    }
    for (int i = 0; i < 25; ++i) {
      const std::string name = "client " + std::to_string(batch * 25 + i);
      const std::string reply = ask(open[static_cast<std::size_t>(i)], name);
      CHECK(reply.rfind("hello " + name + " from pid ", 0) == 0);
      served_by.insert(replying_pid(reply));
    }
  }
  CHECK_MESSAGE(served_by.size() == static_cast<std::size_t>(kClientBatches * 25),
                "each client has its own child process");
  CHECK(served_by.count(server_pid) == 0);
  const std::string left = children_left(server_pid);
  CHECK_MESSAGE(left.empty(), "children of the server still there after 5 s: ", left);
  CHECK(process_state(server_pid) != 'Z');
}

TEST_CASE("06.p pair: the client's workers are served by separate children and joined in order") {
  auto server = lab::testing::ServerProcess::start(kServer);
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--workers", "5"}, "", 8s);
  INFO(result.describe());
  INFO(server.stop_and_describe());
  CHECK(result.status.success());
  CHECK(result.out.find("set x = 100; the parent's x is still 10") != std::string::npos);
  std::istringstream lines(result.out);
  std::string line;
  std::vector<std::string> joined;
  std::set<std::string> server_children;
  while (std::getline(lines, line)) {
    if (line.rfind("joined worker ", 0) == 0) {
      joined.push_back(line);
    } else if (line.find(" got: hello worker ") != std::string::npos) {
      server_children.insert(line.substr(line.rfind("from pid ")));
    }
  }
  REQUIRE(joined.size() == 5);
  for (std::size_t i = 0; i < joined.size(); ++i) {
    CHECK(joined[i].rfind("joined worker " + std::to_string(i) + ": pid ", 0) == 0);
    CHECK(joined[i].find("exited with status 0") != std::string::npos);
  }
  CHECK_MESSAGE(server_children.size() == 5, "five workers, five server children");
  CHECK_MESSAGE(children_left(server.child().pid()).empty(), "the server left children");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  CHECK(server.rest_of_output().find("stopped after 5 client(s)") != std::string::npos);
}

TEST_CASE("06.p pair: a crashed worker is reported as killed by SIGABRT") {
  auto server = lab::testing::ServerProcess::start(kServer);
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--workers", "3", "--crash", "1"}, "", 8s);
  INFO(result.describe());
  INFO(server.stop_and_describe());
  CHECK(result.status.code == 1);
  CHECK(result.out.find("joined worker 0: pid") != std::string::npos);
  CHECK(result.out.find("killed by SIGABRT") != std::string::npos);
  const auto worker1 = result.out.find("joined worker 1: pid");
  REQUIRE(worker1 != std::string::npos);
  CHECK(result.out.substr(worker1, result.out.find('\n', worker1) - worker1).find("killed by SIGABRT") !=
        std::string::npos);
  CHECK(result.out.find("joined worker 2: pid") != std::string::npos);
}

TEST_CASE("06.p pair: garbage, silent and resetting clients cost only their own child") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-ms", "300"});
  INFO(server.stop_and_describe());
  const lab::Endpoint endpoint{"127.0.0.1", server.port()};
  const Fd silent = lab::tcp_connect(endpoint);
  {
    const Fd garbage = lab::tcp_connect(endpoint);
    lab::write_all(garbage, std::string(300, '\x01'));
    lab::LineReader reader(garbage);
    const auto reply = reader.next_line(3000ms);
    REQUIRE(reply);
    CHECK(reply->rfind("error: ", 0) == 0);
  }
  {
    Fd rude = lab::tcp_connect(endpoint);
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(rude.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
    lab::write_all(rude, "half a li");
    rude.reset();  // RST
  }
  const Fd polite = lab::tcp_connect(endpoint);
  CHECK(ask(polite, "survivor").rfind("hello survivor from pid ", 0) == 0);
  // The silent client's child gives up after --idle-ms and closes.
  lab::set_receive_timeout(silent, 3000ms);
  CHECK_FALSE(lab::read_some(silent, 100).has_value());
  CHECK_MESSAGE(children_left(server.child().pid()).empty(), "the server left children");
  // The server reaped each child and lived on: it stops cleanly, and its log
  // has the failed children (status 1) next to the served one (status 0).
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("exited with status 1") != std::string::npos, log);
  CHECK_MESSAGE(log.find("exited with status 0") != std::string::npos, log);
  CHECK(log.find("stopped after 4 client(s)") != std::string::npos);
}

TEST_CASE("06.p pair: stopping the server ends the children still serving") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-ms", "60000"});
  INFO(server.stop_and_describe());
  const lab::Endpoint endpoint{"127.0.0.1", server.port()};
  const Fd first = lab::tcp_connect(endpoint);
  CHECK(ask(first, "first").rfind("hello first from pid ", 0) == 0);
  const Fd lingering = lab::tcp_connect(endpoint);  // its child waits for a line that never comes
  const Fd second = lab::tcp_connect(endpoint);     // accepted after `lingering`: its child exists now
  CHECK(ask(second, "second").rfind("hello second from pid ", 0) == 0);
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("killed by SIGTERM (Terminated) at shutdown") != std::string::npos, log);
  CHECK(log.find("stopped after 3 client(s)") != std::string::npos);
  lab::set_receive_timeout(lingering, 3000ms);
  CHECK_FALSE(lab::read_some(lingering, 100).has_value());
}

TEST_CASE("06.p pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  // The same client must work once a server is there (a stub fails here).
  auto server = lab::testing::ServerProcess::start(kServer);
  const auto works =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "--workers", "1"});
  INFO(works.describe());
  INFO(server.stop_and_describe());
  CHECK(works.status.success());
  CHECK(works.out.find("joined worker 0: pid") != std::string::npos);
}
