// Lesson 11 — the threaded server you write in threaded_server.cpp
// (exercises 11.1–11.3). The reference answer is in
// solutions/11_threaded_server/threaded_server.cpp.
//
// The split of Python's socketserver: the SERVER owns the connection loop
// (accept, cap, deadline, which thread serves whom, shutdown); a HANDLER
// owns one conversation and knows nothing about the others.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "connection_set.hpp"
#include "lab/fd.hpp"
#include "lab/stop.hpp"

namespace lab::threaded {

// One conversation on one connected socket, like a socketserver handler's
// handle(). It returns when the conversation is over; it may throw (a
// reset, a TimeoutError after the idle deadline, a ProtocolError), which
// ends that conversation only. `stop` is requested when the server shuts
// down; a blocked read also returns then, because the socket is shut down.
using Handler = std::function<void(const Fd& connection, std::stop_token stop)>;

// What a refused client reads before its connection is closed.
inline constexpr const char* kTooManyConnections = "error: too many connections\n";

// ---- Exercise 11.2: the fixed pool --------------------------------------------
//
// `workers` std::jthreads, started by the constructor, take connections
// from a queue (first in, first out) and call handle(connection, their
// stop token) on each, one at a time. `workers` == 0 is refused with
// std::invalid_argument.
//
// submit(connection): hands one connection to the pool. If fewer than
// `queue_capacity` connections wait in the queue, the pool takes it (the
// caller's Fd is left empty) and returns true; when the queue is full, or
// after stop(), it returns false and the caller still owns the connection
// (to refuse it). submit never waits.
//
// A handler that throws ends that conversation only: the worker closes
// that connection and takes the next one.
//
// stop(): takes no more connections, requests every worker's stop token,
// lets the workers finish the connections already queued (a server shuts
// them down first, so each ends at once), and joins every worker. It may
// be called twice; the destructor calls it.
//
// handled(): how many conversations the workers have finished so far.
class WorkerPool {
 public:
  WorkerPool(std::size_t workers, std::size_t queue_capacity, Handler handle);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  bool submit(Fd& connection);
  void stop();
  [[nodiscard]] std::size_t handled() const;

 private:
  // The loop of one worker, run on its own thread (or a lambda in the constructor).
  void work(std::stop_token stop);

  // The members you will need; add or change them as you like.
  Handler handle_;
  std::size_t queue_capacity_;
  mutable std::mutex mutex_;
  std::condition_variable_any ready_;  // a connection is queued, or stop
  std::deque<Fd> queue_;
  bool stopped_ = false;
  std::atomic<std::size_t> handled_{0};
  std::vector<std::jthread> workers_;  // last: joined first, while the rest exists
};

struct ServerOptions {
  // 0: a new thread for each connection; N: a fixed pool of N workers.
  std::size_t pool = 0;
  // Connections served (or queued for the pool) at once; one more is refused.
  std::size_t max_connections = 256;
  // The longest a conversation may be silent, or leave a reply unread,
  // before the server drops it. Zero: no limit.
  std::chrono::milliseconds idle_timeout{10'000};
};

// ---- Exercise 11.1: the server class ------------------------------------------
//
// serve_forever(listener, stop): the connection loop. Until `stop` is
// requested it accepts clients (lab::accept_client), and for each one:
//   - gives the socket the idle deadline: SO_RCVTIMEO and SO_SNDTIMEO of
//     options.idle_timeout (lab::set_io_timeouts), so that a silent client,
//     or one that never reads, costs a thread for a bounded time only;
//   - registers it in connections_ (the cap: ConnectionSet::add). Beyond
//     options.max_connections it writes kTooManyConnections to that client,
//     counts it in refused(), closes it, and goes on accepting;
//   - hands the conversation to handler(socket, stop token) on a new
//     std::jthread of its own (options.pool == 0), or submits it to a
//     WorkerPool of options.pool workers (11.2; refused as above if full).
//     Starting a thread can fail (std::system_error, EAGAIN: the process is
//     out of threads or memory): that client is refused as above, and the
//     server goes on.
// When the handler returns or throws, the conversation's thread removes the
// socket from connections_, then closes it; the exception goes no further.
// A finished conversation's thread is joined and forgotten by the loop (at
// the latest when the next client comes), so a long-running server does
// not collect one dead thread per client.
//
// serve_forever returns, once `stop` is requested, the number of clients
// it handed to a handler (not those refused). It does not end the
// conversations under way: that is shutdown()'s job.
//
// ---- Exercise 11.3: clean shutdown --------------------------------------------
//
// shutdown(): ends every conversation and joins every thread, promptly
// even when clients are connected and silent:
//   1. connections_.shutdown_all(): every blocked read returns end of
//      stream now, not after the idle deadline;
//   2. request the stop token of every conversation thread (or stop the
//      pool: WorkerPool::stop);
//   3. join every thread.
// When it returns, no thread of the server runs and every socket it
// accepted is closed. Call it after serve_forever has returned; it may be
// called twice. The destructor calls it (and swallows what it throws).
class ThreadedServer {
 public:
  ThreadedServer(Handler handler, ServerOptions options);
  ~ThreadedServer();
  ThreadedServer(const ThreadedServer&) = delete;
  ThreadedServer& operator=(const ThreadedServer&) = delete;

  std::size_t serve_forever(const Fd& listener, const StopSignal& stop);
  void shutdown();

  [[nodiscard]] std::size_t refused() const noexcept { return refused_.load(); }
  [[nodiscard]] std::size_t open_connections() const { return connections_.size(); }

 private:
  // One conversation on its own thread (thread-per-connection mode).
  struct Conversation {
    std::atomic<bool> done{false};
    Fd socket;            // owned here, used by `thread` alone once it runs
    std::jthread thread;  // last: joined first, while `socket` exists
  };
  // Joins and forgets the threads of finished conversations (part of 11.1).
  void forget_finished();

  // The members you will need; add or change them as you like.
  Handler handler_;
  ServerOptions options_;
  ConnectionSet connections_;
  std::atomic<std::size_t> refused_{0};
  std::mutex conversations_mutex_;
  std::list<Conversation> conversations_;  // threads of the conversations, finished or not
  std::unique_ptr<WorkerPool> pool_;       // in pool mode (options_.pool > 0)
};

}  // namespace lab::threaded
