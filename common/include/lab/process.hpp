// Starting programs, reading their output with deadlines, and reaping them.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lab/fd.hpp"
#include "lab/line_reader.hpp"  // LineReader: a child's output, line by line, with a deadline

namespace lab {

// How a child ended, decoded from a waitpid(2) status.
struct ExitStatus {
  int code = 0;    // the exit status, when it exited
  int signal = 0;  // the signal that killed it, or 0

  static ExitStatus from_wait_status(int status);
  [[nodiscard]] bool exited() const noexcept { return signal == 0; }
  [[nodiscard]] bool success() const noexcept { return signal == 0 && code == 0; }
  // "exited with status 0", "killed by SIGSEGV (Segmentation fault)".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

struct SpawnOptions {
  bool pipe_stdin = false;      // otherwise stdin is /dev/null
  bool capture_stdout = true;   // otherwise inherited
  bool capture_stderr = true;   // otherwise inherited (or merged, below)
  bool merge_stderr = false;    // stderr goes to the stdout pipe
  bool die_with_parent = true;  // PR_SET_PDEATHSIG: no orphan if we crash or are killed
  bool new_process_group = false;
  std::string working_directory;                            // empty: ours
  std::vector<std::pair<std::string, std::string>> environment;  // added or replaced variables
  std::vector<int> inherit;  // our descriptors the program keeps (all others are close-on-exec)
  std::vector<std::pair<int, rlim_t>> limits;  // setrlimit(2) soft and hard limits, e.g. {RLIMIT_AS, 1 << 30}
  // Run as this user and group (needs root): supplementary groups dropped, then setgid, then setuid.
  std::optional<std::pair<uid_t, gid_t>> user;
};

// A started program. The destructor kills it (SIGKILL) if it still runs and
// always reaps it, so a Child never leaves a zombie, even when a test fails
// half way.
class Child {
 public:
  // argv[0] is looked up in PATH unless it contains a '/'. Throws
  // std::system_error if the program cannot be started ("exec ./server: No such file").
  static Child spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] Fd& input() noexcept { return input_; }
  [[nodiscard]] Fd& output() noexcept { return output_; }
  [[nodiscard]] Fd& errors() noexcept { return errors_; }

  // Sends a signal unless the child has already been reaped.
  void send_signal(int signal_number);
  // Waits up to `timeout` for the child to end; nullopt if it is still running.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  ExitStatus wait();
  // SIGTERM, up to `grace` to end, then SIGKILL.
  ExitStatus stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  [[nodiscard]] std::optional<ExitStatus> status() const noexcept { return status_; }

 private:
  void reap_now(int wait_status);
  void kill_and_reap() noexcept;

  pid_t pid_ = -1;
  Fd pidfd_;  // pidfd_open(2): pollable, so waits can have deadlines without sleeping
  Fd input_;
  Fd output_;
  Fd errors_;
  std::optional<ExitStatus> status_;
};

// pidfd_open(2): a descriptor that names process `pid` itself (a recycled
// pid cannot be mistaken for it), readable once the process has ended. An
// empty Fd if it cannot be opened, with errno set (ESRCH: already gone).
Fd open_pidfd(pid_t pid);
// pidfd_send_signal(2) on such a descriptor: 0, or -1 with errno set.
int signal_pidfd(const Fd& pidfd, int signal_number);
// True once the process behind `pidfd` has ended, false if it still runs
// after `timeout`. Any process, not only a child; it is not reaped.
bool pidfd_ended_within(const Fd& pidfd, std::chrono::milliseconds timeout);

}  // namespace lab
