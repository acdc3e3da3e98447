// Lesson 06 — fork and join. The functions you write in fork_join.cpp
// (exercises 06.1–06.4). The reference answers are in
// solutions/06_fork_join/fork_join.cpp: look only after trying.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <vector>

#include "lab/process.hpp"

namespace lab::fork_join {

// One child process and how it ended.
struct ChildExit {
  pid_t pid = -1;
  ExitStatus status;  // {code, 0} if it exited; {128 + signal, signal} if a signal killed it
};

// Decoding a waitpid(2) status, the way a shell shows it:
// WIFEXITED → {WEXITSTATUS, 0}; WIFSIGNALED → {128 + WTERMSIG, WTERMSIG}.
// lab::ExitStatus::from_wait_status does exactly this: write the four
// macros yourself once, then use whichever you like.

// ---- Exercise 06.1: spawn and join N workers --------------------------------
//
// Starts `count` worker processes with fork(2). Worker i (0 ≤ i < count) runs
// work(i) and ends with _exit(work(i)). The parent starts them all first (so
// they run at the same time), then joins each one with waitpid(2) and
// returns their pids and exit statuses in index order — worker 0 first,
// whatever order they finished in.
//
// The pitfalls (the tests check each one they can):
//  * Call fflush(stdout) (and stderr) before fork: text still in the
//    parent's stdio buffer would otherwise be printed again by every child.
//  * The child must never return from this function, not even by an
//    exception: it would go on running the caller's code as a second copy.
//    Catch everything work(i) throws and _exit(1).
//  * End the child with _exit, not exit or return: exit would run the
//    parent's atexit handlers and flush its buffers a second time.
//  * A killed worker is reported as killed (ExitStatus::signal), not as a
//    strange exit code. Retry waitpid on EINTR.
//  * If fork fails part way, kill and reap the workers already started,
//    then throw std::system_error ("fork"). count < 0: std::invalid_argument.
std::vector<ChildExit> spawn_and_join(int count, const std::function<int(int index)>& work);

// ---- Exercise 06.2: the reaper ---------------------------------------------
//
// Reaps every child of this process that has ended, without waiting for the
// ones still running, and returns them (in the order waitpid gave them).
// Loop on waitpid(-1, &status, WNOHANG): it returns a pid for each ended
// child, 0 once only running children remain, and -1 with ECHILD when there
// are no children at all (not an error: return what you have). Retry EINTR.
//
// Why a loop: SIGCHLD says "at least one child ended". Signals of one kind
// do not queue, so 20 children ending at once may deliver a single SIGCHLD;
// reaping one child per signal leaves 19 zombies (僵尸进程).
std::vector<ChildExit> reap_exited();

// ---- Exercise 06.3: terminate and confirm ----------------------------------
//
// is_alive: true while `child` (a child of this process) is running; false
// once it has ended, even if it is still an unreaped zombie, and false for a
// pid that is not (or no longer) our child. It must not reap the child.
// kill(pid, 0) is not enough: it succeeds for a zombie. Use
// waitid(P_PID, child, &info, WEXITED | WNOHANG | WNOWAIT): it looks
// without reaping (info.si_pid stays 0 while the child runs).
bool is_alive(pid_t child);

// terminate: asks `child` to stop with SIGTERM, waits up to `grace` for it
// to end, and if it is still running sends SIGKILL (which cannot be caught
// or ignored) and waits again. Reaps it and returns how it ended. A child
// that has already ended is reaped without being signalled. Wait without
// burning the CPU: pidfd_open(2) gives a descriptor that poll(2) reports
// readable when the process ends (call it through syscall(SYS_pidfd_open,
// pid, 0)); a loop of waitpid(WNOHANG) and 10 ms sleeps also works.
ExitStatus terminate(pid_t child, std::chrono::milliseconds grace);

// ---- Exercise 06.4: fork copies memory -------------------------------------
//
// The Python course's example: x = 100 in a child process, and the parent
// still prints its own x. Fork a child that sets `variable` to `new_value`
// and sends back, through a pipe, the value it then reads from `variable`,
// its own pid (getpid) and its parent's pid (getppid). The parent waits for
// the child and reports what the child saw next to its own `variable`,
// which the child's write did not touch: after fork each process has its
// own copy of the whole memory (copy-on-write makes the copy cheap).
struct Isolation {
  pid_t child_pid = -1;     // what the child's getpid() returned
  pid_t child_parent = -1;  // what the child's getppid() returned: us
  int child_saw = 0;        // `variable` as the child read it after its write
  int parent_sees = 0;      // `variable` as the parent reads it afterwards
};
Isolation change_in_child(int& variable, int new_value);

}  // namespace lab::fork_join
