// Lesson 09 — a worker process's life: take a job from the queue, do it, put
// its result, and keep its line of the board telling what it is doing. And
// the feeder's, which puts the client's jobs into the queue.
#pragma once

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "process_queue.hpp"
#include "worker_board.hpp"

namespace lab::queues {

// A job's id: the digits before the first space. Throws ProtocolError.
inline std::string job_id(const std::string& job) {
  const auto space = job.find(' ');
  if (space == 0 || space == std::string::npos || space > 20) {
    throw lab::ProtocolError("a job must start with 'ID ' (got " + std::to_string(job.size()) + " bytes)");
  }
  for (std::size_t i = 0; i < space; ++i) {
    if (std::isdigit(static_cast<unsigned char>(job[i])) == 0) {
      throw lab::ProtocolError("a job's ID must be a number");
    }
  }
  return job.substr(0, space);
}

// The work itself: upper-case the text (ASCII only).
inline std::string do_job(const std::string& job) {
  const std::string id = job_id(job);
  std::string result = id + " " + std::to_string(::getpid()) + " ";
  for (std::size_t i = id.size() + 1; i < job.size(); ++i) {
    const char c = job[i];
    result.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return result;
}

// A worker's life: take jobs until the jobs queue ends, put each result,
// and write on its line of the board what it is doing (for the server, if
// the worker is killed). Each job also takes `work` (simulated work: time to
// watch the workers share the jobs, or to kill one that holds a job).
// Returns the exit status.
inline int run_worker(ProcessQueue& jobs, ProcessQueue& results, lab::queues::WorkerBoard& board,
                      std::size_t line, std::chrono::milliseconds work) {
  // Just forked, the worker has both ends of both queues. It takes jobs and
  // gives results: it closes the other ends. (A forgotten write end of the
  // jobs queue, and no worker would ever see the end of the jobs.)
  jobs.consumer_only();
  results.producer_only();
  for (;;) {
    board.waiting(line);
    const auto job = jobs.get();
    if (!job) {
      break;
    }
    const std::string id = job_id(*job);
    board.working(line, id);
    std::string result = do_job(*job);
    std::this_thread::sleep_for(work);  // returns at once for 0
    // A result the queue cannot carry becomes an error for its job. Left to
    // put, it would throw and end this worker, and the client would never
    // hear of its job.
    if (result.size() > lab::queues::kMaxMessage) {
      result = id + " error: its result of " + std::to_string(result.size()) +
               " bytes is longer than a frame may be (" + std::to_string(lab::queues::kMaxMessage) + ")";
    }
    board.putting(line);
    results.put(result);
  }
  results.close();
  return 0;
}

// The feeder's life: read the client's jobs and put them into the queue,
// refusing garbage here (ProtocolError), before a worker gets it. At the end
// of the client's jobs, close the queue: the workers drain it and end.
// Returns the exit status.
inline int run_feeder(const lab::Fd& connection, ProcessQueue& jobs, ProcessQueue& results) {
  jobs.producer_only();
  results.consumer_only();  // it never writes results: its write end must go
  while (const auto job = read_frame(connection)) {
    job_id(*job);
    jobs.put(*job);
  }
  jobs.close();
  return 0;
}

}  // namespace lab::queues
