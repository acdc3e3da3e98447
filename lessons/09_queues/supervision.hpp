// Lesson 09 — supervising the workers: a worker that finished leaves, one
// that died is reported (with the job it held) and replaced by a new one.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <string>

#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/program.hpp"
#include "worker_board.hpp"

namespace lab::queues {

// The request cannot go on: the server tells the client why and ends it.
class RequestBroken : public lab::ProtocolError {
 public:
  using lab::ProtocolError::ProtocolError;
};

// Looks at each running worker (`lines`: its pid and its line on the board)
// that has ended. A worker killed while it held a job: `forward` tells the
// client that job's error. One killed in the middle of moving a frame: the
// queues cannot be trusted, and RequestBroken ends the request. Any other
// dead worker is replaced by `start_worker(line)`.
template <class Forward, class StartWorker>
void supervise_workers(lab::ForkedChildren& processes, std::map<pid_t, std::size_t>& lines,
                       const WorkerBoard& board, const Forward& forward, const StartWorker& start_worker) {
  for (auto it = lines.begin(); it != lines.end();) {
    const auto [pid, line] = *it;
    const auto status = processes.status_of(pid);
    if (!status) {
      ++it;
      continue;
    }
    it = lines.erase(it);
    if (status->success()) {
      continue;
    }
    const std::string how = "worker " + std::to_string(pid) + " " + status->to_string();
    if (board.doing(line) == Doing::kWorking) {
      forward(board.job_id(line) + " error: " + how + " while it held this job");
    } else if (board.doing(line) == Doing::kPutting || status->exited()) {
      // Half a frame may be in the results (or, if it failed reading a
      // job, the jobs queue is damaged): nothing after it can be trusted.
      throw RequestBroken(how + " in the middle of a queue operation");
    }
    lab::say("{}; a new worker takes its place", how);
    start_worker(line);
  }
}

}  // namespace lab::queues
