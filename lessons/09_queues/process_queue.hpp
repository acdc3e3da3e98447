// Lesson 09 — queues between processes (IPC). The functions you write in
// process_queue.cpp (exercises 09.1–09.3). The reference answers are in
// solutions/09_queues/: look only after trying.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lab/fd.hpp"
#include "shared_lock.hpp"

namespace lab::queues {

// The largest message a queue carries. A frame's length field is checked
// against it BEFORE anything is allocated.
inline constexpr std::size_t kMaxMessage = 1024 * 1024;
// Bytes of the length header in front of every message.
inline constexpr std::size_t kHeaderSize = 4;

// ---- Exercise 09.1: frames over a pipe -------------------------------------
//
// A pipe is a byte stream, like TCP: two messages written one after the
// other come out as one run of bytes. So every message is framed:
//   4 bytes: the payload's length, unsigned, big-endian
//   N bytes: the payload
//
// write_frame: writes header + payload with ONE lab::write_all of one
// buffer. Why one buffer: a write of at most PIPE_BUF (4096) bytes to a pipe
// is atomic (pipe(7)): it is never split, nor mixed with another process's
// write. Two writes (header, then payload) could have another writer's
// frame land between them. A message longer than kMaxMessage is refused
// with std::length_error, before anything is written.
//
// read_frame: reads one frame with lab::read_exact (a read may return
// fewer bytes than asked: a pipe hands over what is there). Returns nullopt
// at a clean end of stream before the header (every write end is closed:
// see 09.3). Throws lab::ProtocolError for a length above kMaxMessage (do
// not allocate it!) and for a stream that ends inside a frame.
void write_frame(const Fd& pipe, std::string_view message);
std::optional<std::string> read_frame(const Fd& pipe);

// A queue of messages between processes, built on one pipe. Create it in
// the parent, then fork: the children inherit both ends of the pipe and the
// two shared locks. (Python's multiprocessing.Queue is built the same way:
// a pipe, a lock for readers and a lock for writers.)
class ProcessQueue {
 public:
  // Given: a pipe (O_CLOEXEC) whose kernel buffer holds `capacity_bytes`
  // (rounded up by the kernel to a power-of-two number of pages). That
  // buffer is the bound: put blocks while it is full.
  explicit ProcessQueue(std::size_t capacity_bytes = 64 * 1024);
  ProcessQueue(const ProcessQueue&) = delete;
  ProcessQueue& operator=(const ProcessQueue&) = delete;

  // The pipe's capacity in bytes (F_GETPIPE_SZ). Given.
  [[nodiscard]] std::size_t capacity() const;

  // The read end, for poll(2). Given. A program that must stop on SIGTERM
  // polls it together with the stop signal before a blocking get():
  //   lab::wait_readable(queue.read_end().get(), lab::process_stop());
  // A signal that arrives just BEFORE a blocking read interrupts nothing,
  // and the read would then wait for ever; poll on the stop's eventfd sees it.
  [[nodiscard]] const Fd& read_end() const noexcept { return read_end_; }

  // ---- Exercise 09.2: exactly once, with many producers and consumers -----
  //
  // put: write_frame under the WRITERS' lock. A frame longer than PIPE_BUF
  // is not atomic: the kernel may write part of it, let another writer in,
  // then write the rest. And a short frame's atomic write can still land
  // inside someone's long one, so every put locks, short or long.
  //
  // get: read_frame under the READERS' lock. Two reads make a frame (header,
  // then payload); a second consumer reading between them would take half
  // of someone else's frame. Returns nullopt at end of stream (09.3).
  //
  // Both block: put while the pipe is full (back-pressure), get while it is
  // empty. Use SharedLockGuard (shared_lock.hpp).
  void put(std::string_view message);
  std::optional<std::string> get();

  // ---- Exercise 09.3: a clear end of stream -------------------------------
  //
  // A pipe's reader sees end of stream only when EVERY write end, in every
  // process, is closed. One forgotten copy of the write end (in the parent,
  // or in a consumer that never writes) and get() waits for ever.
  //
  // producer_only: this process will only put: close the read end.
  // consumer_only: this process will only get: close the write end.
  // close: this process puts no more: close the write end. When every
  //        producer has closed, consumers drain what is left and then get
  //        nullopt. Closing twice is harmless; put after close throws
  //        std::logic_error.
  // Close each end by resetting its lab::Fd (fd.reset()): never close a
  // raw number that an Fd still owns.
  void producer_only();
  void consumer_only();
  void close();

 private:
  Fd read_end_;
  Fd write_end_;
  SharedLock readers_;
  SharedLock writers_;
};

}  // namespace lab::queues
