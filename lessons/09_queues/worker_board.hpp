// Lesson 09 — what each worker process is doing, on a board in memory that
// the server and its workers share (given code, not an exercise).
//
// A worker that is killed cannot say which job it held. So each worker
// writes on its own line of the board what it is doing; when its pidfd says
// it has ended, the server reads that line. Only the worker writes its
// line, and the server reads it only after the worker has ended, so the two
// never touch it at the same time.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <new>
#include <string>
#include <string_view>

#include "lab/error.hpp"

namespace lab::queues {

enum class Doing : int {
  kWaiting,  // in jobs.get(): holds no job (maybe the readers' lock)
  kWorking,  // holds job `job_id`, no lock, no frame half moved
  kPutting,  // in results.put() with the result of `job_id`
};

class WorkerBoard {
 public:
  // A job ID has at most this many digits (the server refuses longer ones).
  static constexpr std::size_t kMaxIdDigits = 20;

  explicit WorkerBoard(std::size_t workers) : size_(workers) {
    void* memory = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      throw os_error("mmap worker board");
    }
    lines_ = new (memory) Line[size_];  // zero-filled by mmap; constructed here
  }
  ~WorkerBoard() { ::munmap(lines_, bytes()); }
  WorkerBoard(const WorkerBoard&) = delete;
  WorkerBoard& operator=(const WorkerBoard&) = delete;

  // In worker `w`.
  void waiting(std::size_t w) { lines_[w].doing.store(Doing::kWaiting); }
  void working(std::size_t w, std::string_view job_id) {
    Line& line = lines_[w];
    line.id_length = std::min(job_id.size(), kMaxIdDigits);
    std::copy_n(job_id.begin(), line.id_length, line.id);
    line.doing.store(Doing::kWorking);
  }
  void putting(std::size_t w) { lines_[w].doing.store(Doing::kPutting); }

  // In the server, once worker `w` has ended.
  [[nodiscard]] Doing doing(std::size_t w) const { return lines_[w].doing.load(); }
  [[nodiscard]] std::string job_id(std::size_t w) const { return {lines_[w].id, lines_[w].id_length}; }

 private:
  struct Line {
    // Lock-free, so it works between processes (no lock in one process's memory).
    std::atomic<Doing> doing{Doing::kWaiting};
    std::size_t id_length = 0;
    char id[kMaxIdDigits] = {};
  };
  static_assert(std::atomic<Doing>::is_always_lock_free);
  [[nodiscard]] std::size_t bytes() const { return sizeof(Line) * size_; }

  std::size_t size_;
  Line* lines_ = nullptr;
};

}  // namespace lab::queues
