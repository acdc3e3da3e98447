// Helpers for the lab's tests: servers started as real processes, programs
// run with a deadline, and checks for leaked descriptors and children.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <future>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/process.hpp"
#include "lab/temp_dir.hpp"

namespace lab::testing {

using namespace std::chrono_literals;

// A server program started with "--host 127.0.0.1 --port 0" (plus `extra`),
// after its ready line "listening on HOST:PORT" was read. Stops it (SIGTERM,
// then SIGKILL) and reaps it when destroyed.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(ServerProcess&& other) noexcept = default;
  ServerProcess& operator=(ServerProcess&& other) noexcept;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Stops the server if it still runs (SIGKILL) and adds how it ended and
  // its stderr to the case's list of programs (see programs_report).
  ~ServerProcess();

  // Throws std::runtime_error with the server's stderr if it exits, or prints
  // something else, before its ready line, or stays silent for `timeout`.
  static ServerProcess start(const std::string& program, std::vector<std::string> extra = {},
                             std::chrono::milliseconds timeout = 5s,
                             const SpawnOptions& options = {});

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] Child& child() noexcept { return child_; }
  // SIGTERM and wait; returns how it ended.
  ExitStatus stop(std::chrono::milliseconds grace = 3s) { return child_.stop(grace); }
  // Whatever the server printed on stdout after its ready line, and on
  // stderr, once it has ended. Call after stop().
  std::string rest_of_output(std::chrono::milliseconds timeout = 2s);
  // Kept once read: a second call returns the same text.
  std::string error_output(std::chrono::milliseconds timeout = 2s);
  // For a failure message: stops the server and says how it ended and what
  // it printed ("server exited with status 3; stderr: not implemented: ...").
  std::string stop_and_describe();

 private:
  void note_how_it_ended() noexcept;

  Child child_;
  std::vector<std::string> argv_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string stdout_rest_;
  std::string stderr_;
  bool stderr_read_ = false;
};

struct ProgramResult {
  ExitStatus status;
  std::string out;
  std::string err;
  bool timed_out = false;
  // For failure messages: status, stdout and stderr.
  [[nodiscard]] std::string describe() const;
};

// Runs a program to completion, feeding `input` (of any size) to its stdin
// while reading its stdout and stderr (so a full pipe cannot deadlock it).
// A program that exits without reading all its input is a normal outcome,
// described by its status and output. Kills it after `timeout` and says so
// in the result.
ProgramResult run(const std::vector<std::string>& argv, const std::string& input = "",
                  std::chrono::milliseconds timeout = 5s, const SpawnOptions& options = {});

// What the programs a case started wrote on stderr, which is where they say
// why they failed. Every program run() runs, and every ServerProcess, adds
// itself to a list as it ends. The tests' main() (tests/support/main.cpp)
// clears the list as each case starts and prints programs_report() when a
// case fails, and `lab grade` (tests/lab/grader.cpp) puts that report, which
// opens with kProgramsHeading, into the case's failure message.
inline constexpr std::string_view kProgramsHeading = "the programs this case started, and their stderr:";
// `role` is shown beside the program's name ("the server"), if not empty. A
// program killed by a crash signal gets the command that debugs it.
void note_program(const std::string& role, const std::vector<std::string>& argv, const ExitStatus& status,
                  const std::string& how_it_ended, const std::string& errors);
void forget_programs();
// kProgramsHeading, then one entry per program (the last 8 of them), each
// line indented, each stderr bounded by bounded_lines(); "" if none ran.
std::string programs_report();
// The same when the case has run out of time and is about to be killed
// (tests/support/main.cpp calls it when `lab _case` says so): the servers
// still running are added, each with what it has written on stderr so far,
// read without waiting and bounded, so that a server that floods its stderr
// or never ends cannot hold the report up. Safe to call from another thread
// than the case's.
std::string programs_report_at_deadline();

// Long output made short for a report: the first `head` and the last
// `tail` lines, with a line saying how many were left out between them,
// each line cut at 300 characters.
std::string bounded_lines(const std::string& text, std::size_t head, std::size_t tail);

// Runs `client --port P extra...` where P refuses connections, and checks
// the convention every client keeps: exit status 1, and one line on stderr
// that names the refusal. Returns the result for further checks.
ProgramResult run_refused_client(const std::string& client, const std::vector<std::string>& extra = {});

// What became of work on another thread, for a failure message: "returned",
// "threw: ...", "stopped" or "still running" (after waiting 100 ms).
template <typename T>
std::string outcome(std::future<T>& result) {
  if (!result.valid()) {
    return "(already collected)";
  }
  if (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    return "the server side is still running";
  }
  try {
    result.get();
    return "the server side returned";
  } catch (const std::exception& error) {
    return std::string("the server side threw: ") + error.what();
  } catch (const StopRequested&) {
    return "the server side stopped (StopRequested)";
  }
}

// Open descriptors of this process (entries of /proc/self/fd).
int open_fd_count();

// Pids whose parent is this process, from /proc/self/task/*/children:
// running children and zombies not yet reaped.
std::vector<int> child_pids();

// A TCP port on 127.0.0.1 where a connect is refused, for as long as this
// object lives: its socket is bound (so nobody else gets the port) but never
// listens (so the kernel answers a SYN with a reset).
struct RefusingPort {
  RefusingPort();
  Fd socket;
  std::uint16_t port = 0;
};

// A fresh directory, removed with everything in it (lab/temp_dir.hpp).
using lab::TempDir;

// A connected pair of UNIX stream sockets.
std::pair<Fd, Fd> socket_pair();

// Shrinks a socket's kernel send or receive buffer, to force short reads and writes.
void set_buffer_sizes(const Fd& socket, int send_bytes, int receive_bytes);

// This thread's kernel id (gettid(2)), as /proc/self/task/TID names it.
pid_t this_thread_id();
// The system calls poll(2) may wait in here (ppoll, and poll where the
// architecture has it), for asleep_in.
std::vector<long> poll_system_calls();

// A task as /proc shows it: a thread of this process, or a process (its
// main thread), for asleep_in.
class Task {
 public:
  static Task thread(pid_t tid);  // /proc/self/task/TID
  static Task process(pid_t pid);  // /proc/PID
  static std::vector<Task> threads(const std::vector<pid_t>& tids);
  // Asleep (state S) inside one of the system calls `numbers` right now,
  // from its stat and syscall files.
  [[nodiscard]] bool asleep_in(const std::vector<long>& numbers) const;

 private:
  explicit Task(std::string proc_dir) : proc_dir_(std::move(proc_dir)) {}
  std::string proc_dir_;
};

// True once every task of `tasks` sleeps (state S) inside one of the
// system calls `numbers` (futex for a mutex or a condition variable, fcntl
// for a file lock, wait4 for waitpid, read for an empty pipe...), seen
// twice in a row 2 ms apart, so that a task merely passing through does not
// count: read from /proc, never guessed from a sleep. False after `limit`,
// or as soon as `give_up` (if given) is set.
bool asleep_in(const std::vector<Task>& tasks, const std::vector<long>& numbers, std::chrono::milliseconds limit,
               const std::atomic<bool>* give_up = nullptr);
// The same for thread `tid` of this process.
bool asleep_in(pid_t tid, const std::vector<long>& numbers, std::chrono::milliseconds limit,
               const std::atomic<bool>& give_up);

}  // namespace lab::testing
