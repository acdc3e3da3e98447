// Lesson 09 — supervising the workers: the server waits for news of them
// (a result, or a child's end); a worker that finished leaves, one that
// died is reported (with the job it held) and replaced by a new one.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/stop.hpp"
#include "process_queue.hpp"
#include "worker_board.hpp"

namespace lab::queues {

// The request cannot go on: the server tells the client why and ends it.
class RequestBroken : public lab::ProtocolError {
 public:
  using lab::ProtocolError::ProtocolError;
};

// Waits until there is news: a result to read (returns true), a child that
// has ended (its pidfd is readable: false), or a stop request (throws
// StopRequested). All three in one poll(2): a SIGTERM that came just before
// a blocking get would otherwise be missed, and a dead worker would never
// be noticed by a server blocked in get. Throws TimeoutError once
// `deadline` (none: no limit) has passed.
inline bool wait_for_news(const ProcessQueue& results, const lab::ForkedChildren& processes,
                          std::optional<lab::Clock::time_point> deadline) {
  std::vector<pollfd> ready{{lab::process_stop().fd(), POLLIN, 0},
                            {results.read_end().get(), POLLIN, 0}};
  for (const int pidfd : processes.pidfds()) {
    ready.push_back({pidfd, POLLIN, 0});
  }
  int timeout = -1;
  if (deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - lab::Clock::now());
    timeout = static_cast<int>(std::max<long>(left.count(), 0));
  }
  const int got = ::poll(ready.data(), ready.size(), timeout);
  if (got < 0 && errno != EINTR) {
    throw lab::os_error("poll");
  }
  lab::throw_if_stop_requested();
  if (got == 0) {
    throw lab::TimeoutError("request timeout: not done within the --request-timeout");
  }
  return ready[1].revents != 0;
}

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
