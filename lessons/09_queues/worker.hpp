// Lesson 09 — a worker process's life: take a job from the queue, do it, put
// its result, and keep its line of the board telling what it is doing.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <string>

#include "lab/error.hpp"
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
// the worker is killed).
inline void run_worker(ProcessQueue& jobs, ProcessQueue& results, lab::queues::WorkerBoard& board, std::size_t line) {
  for (;;) {
    board.waiting(line);
    const auto job = jobs.get();
    if (!job) {
      break;
    }
    const std::string id = job_id(*job);
    board.working(line, id);
    std::string result = do_job(*job);
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
}

}  // namespace lab::queues
