// Exercises 11.1–11.3 — the reference threaded server.
#include "threaded_server.hpp"

#include <stdexcept>
#include <system_error>
#include <utility>

#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"

namespace lab::threaded {

// ---- 11.2 the fixed pool ----

WorkerPool::WorkerPool(std::size_t workers, std::size_t queue_capacity, Handler handle)
    : handle_(std::move(handle)), queue_capacity_(queue_capacity) {
  if (workers == 0) {
    throw std::invalid_argument("a pool needs at least one worker");
  }
  workers_.reserve(workers);
  for (std::size_t k = 0; k < workers; ++k) {
    workers_.emplace_back([this](std::stop_token stop) { work(std::move(stop)); });
  }
}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::submit(Fd& connection) {
  {
    const std::lock_guard lock(mutex_);
    // Full or stopped: refuse now rather than wait. The accepting thread
    // must never block here, or one slow pool would stop the whole server
    // from answering (even with a refusal).
    if (stopped_ || queue_.size() >= queue_capacity_) {
      return false;
    }
    queue_.push_back(std::move(connection));
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopped_ = true;  // under the mutex, or a worker between its check and its wait misses the wake-up
  }
  ready_.notify_all();
  for (auto& worker : workers_) {
    worker.request_stop();
  }
  for (auto& worker : workers_) {
    if (worker.joinable()) {
      worker.join();
    }
  }
}

std::size_t WorkerPool::handled() const { return handled_.load(); }

void WorkerPool::work(std::stop_token stop) {
  for (;;) {
    Fd connection;
    {
      std::unique_lock lock(mutex_);
      // A predicate, always: a wake-up may be spurious, or another worker
      // may have taken the connection first.
      ready_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopped, and nothing left to finish
      }
      connection = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      handle_(connection, stop);
    } catch (...) {  // NOLINT(bugprone-empty-catch): one conversation's failure is that conversation's
    }
    connection.reset();  // closed here, by its owner
    ++handled_;
  }
}

// ---- 11.1 the server class ----

namespace {

// Tells a client beyond the cap why it is turned away, then closes. The
// socket already has the idle deadline as its send timeout, so a client
// that reads nothing cannot hold the accepting thread.
void refuse(Fd& socket) {
  try {
    write_all(socket, kTooManyConnections);
  } catch (const std::system_error&) {
    // Gone already, or not reading: it is refused either way.
  } catch (const ProtocolError&) {
  }
  socket.reset();
}

}  // namespace

ThreadedServer::ThreadedServer(Handler handler, ServerOptions options)
    : handler_(std::move(handler)), options_(options), connections_(options.max_connections) {}

ThreadedServer::~ThreadedServer() {
  try {
    shutdown();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

std::size_t ThreadedServer::serve_forever(const Fd& listener, const StopSignal& stop) {
  // The conversation as the server runs it: the handler, then the socket
  // leaves the set BEFORE its owner closes it (connection_set.hpp says why).
  const auto converse = [this](const Fd& connection, std::stop_token token) {
    try {
      handler_(connection, std::move(token));
    } catch (...) {  // NOLINT(bugprone-empty-catch): a reset or a deadline ends this client only
    }
    connections_.remove(connection.get());
  };
  if (options_.pool > 0 && !pool_) {
    pool_ = std::make_unique<WorkerPool>(options_.pool, options_.max_connections, converse);
  }

  std::size_t handed = 0;
  while (auto client = accept_client(listener, stop)) {
    forget_finished();
    if (options_.idle_timeout.count() > 0) {
      set_io_timeouts(client->socket, options_.idle_timeout);
    }
    const int number = client->socket.get();
    if (!connections_.add(number)) {
      ++refused_;
      refuse(client->socket);
      continue;
    }
    if (pool_) {
      if (!pool_->submit(client->socket)) {
        connections_.remove(number);
        ++refused_;
        refuse(client->socket);
        continue;
      }
    } else {
      const std::lock_guard lock(conversations_mutex_);
      // A std::list: the thread holds a reference to its element, and a
      // list never moves its elements as it grows.
      Conversation& conversation = conversations_.emplace_back();
      conversation.socket = std::move(client->socket);
      try {
        conversation.thread = std::jthread([converse, &conversation](std::stop_token token) {
          converse(conversation.socket, std::move(token));
          conversation.socket.reset();
          conversation.done = true;  // the last thing it does: the loop may now join it
        });
      } catch (const std::system_error&) {
        // No thread to be had (EAGAIN: out of threads or memory). Refuse
        // this client like any other beyond the cap; the server goes on.
        connections_.remove(number);
        ++refused_;
        refuse(conversation.socket);
        conversations_.pop_back();
        continue;
      }
    }
    ++handed;
  }
  return handed;
}

void ThreadedServer::forget_finished() {
  const std::lock_guard lock(conversations_mutex_);
  conversations_.remove_if([](Conversation& conversation) {
    if (!conversation.done) {
      return false;
    }
    conversation.thread.join();  // it has finished (or is returning): this does not wait
    return true;
  });
}

// ---- 11.3 clean shutdown ----

void ThreadedServer::shutdown() {
  // 1. Wake every conversation blocked in recv or send: they see end of
  //    stream (or EPIPE) now, not after the idle deadline.
  connections_.shutdown_all();
  // 2. The pool finishes its queue (each queued socket is shut down, so
  //    each ends at once) and joins its workers.
  if (pool_) {
    pool_->stop();
  }
  // 3. Tell every conversation thread to stop, then join them all.
  const std::lock_guard lock(conversations_mutex_);
  for (auto& conversation : conversations_) {
    conversation.thread.request_stop();
  }
  for (auto& conversation : conversations_) {
    if (conversation.thread.joinable()) {
      conversation.thread.join();
    }
  }
  conversations_.clear();
}

}  // namespace lab::threaded
