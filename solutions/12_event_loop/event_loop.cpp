// Reference solution of exercises 12.1–12.3 (lessons/12_event_loop/event_loop.hpp).
#include "event_loop.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <unordered_map>

#include "lab/error.hpp"

namespace lab::event_loop {

// ---- 12.2 ------------------------------------------------------------------------

namespace {
// A drained buffer keeps its allocation only up to this size.
constexpr std::size_t kKeptCapacity = 4096;
}  // namespace

ConnectionBuffer::ConnectionBuffer(std::size_t high_water) : high_water_(high_water) {}

void ConnectionBuffer::append(std::string_view bytes) {
  if (sent_ > 0 && sent_ >= data_.size() / 2) {
    // Drop the sent front before growing: the buffer holds at most the
    // unsent bytes and about as many again, not all history.
    data_.erase(0, sent_);
    sent_ = 0;
  }
  data_.append(bytes);
}

std::size_t ConnectionBuffer::pending() const noexcept { return data_.size() - sent_; }

std::string_view ConnectionBuffer::unsent() const noexcept {
  return std::string_view(data_).substr(sent_);
}

void ConnectionBuffer::consume(std::size_t sent) {
  if (sent > pending()) {
    throw std::out_of_range("consume: " + std::to_string(sent) + " bytes sent but only " +
                            std::to_string(pending()) + " pending");
  }
  sent_ += sent;
  if (sent_ == data_.size()) {
    sent_ = 0;
    if (data_.capacity() > kKeptCapacity) {
      std::string().swap(data_);  // release the memory of a large reply
    } else {
      data_.clear();
    }
  }
}

bool ConnectionBuffer::wants_read() const noexcept { return pending() < high_water_; }

bool ConnectionBuffer::wants_write() const noexcept { return pending() > 0; }

std::size_t ConnectionBuffer::flush_to(int socket) {
  std::size_t total = 0;
  while (pending() > 0) {
    const std::string_view bytes = unsent();
    // MSG_DONTWAIT: never block, whatever the socket's flags say.
    // MSG_NOSIGNAL: a client that has gone gives EPIPE, not a SIGPIPE that
    // would kill the server and every other client with it.
    const ssize_t sent = ::send(socket, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;  // the kernel's send buffer is full: the rest waits for EPOLLOUT
      }
      throw os_error("send");
    }
    consume(static_cast<std::size_t>(sent));  // a partial write: the rest stays queued
    total += static_cast<std::size_t>(sent);
  }
  return total;
}

// ---- 12.3 ------------------------------------------------------------------------

IdleTimers::IdleTimers(std::chrono::milliseconds timeout) : timeout_(timeout) {}

void IdleTimers::touch(int fd, Clock::time_point now) {
  const Clock::time_point deadline = now + timeout_;
  const auto [where, inserted] = deadline_of_.try_emplace(fd, deadline);
  if (!inserted) {
    by_deadline_.erase({where->second, fd});
    where->second = deadline;
  }
  by_deadline_.emplace(deadline, fd);
}

void IdleTimers::remove(int fd) {
  const auto where = deadline_of_.find(fd);
  if (where != deadline_of_.end()) {
    by_deadline_.erase({where->second, fd});
    deadline_of_.erase(where);
  }
}

std::size_t IdleTimers::size() const noexcept { return deadline_of_.size(); }

std::optional<std::chrono::milliseconds> IdleTimers::time_to_next(Clock::time_point now) const {
  if (by_deadline_.empty()) {
    return std::nullopt;
  }
  const Clock::time_point next = by_deadline_.begin()->first;
  if (next <= now) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::ceil<std::chrono::milliseconds>(next - now);
}

std::vector<int> IdleTimers::take_expired(Clock::time_point now) {
  std::vector<int> expired;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
    const int fd = by_deadline_.begin()->second;
    by_deadline_.erase(by_deadline_.begin());
    deadline_of_.erase(fd);
    expired.push_back(fd);
  }
  return expired;
}

// ---- 12.1 ------------------------------------------------------------------------

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;  // one recv per readiness event: fair to all
constexpr int kMaxEvents = 256;
constexpr std::chrono::milliseconds kAcceptBackoff{100};

char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

struct Connection {
  Fd socket;
  ConnectionBuffer output;
  std::uint32_t watching = 0;  // the events epoll watches for it now
  bool peer_closed = false;    // the client has shut its sending side
};

class Loop {
 public:
  Loop(const Fd& listener, const StopSignal& stop, const ServerOptions& options)
      : listener_(listener), stop_(stop), options_(options), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_) {
      throw os_error("epoll_create1");
    }
    if (options_.idle_timeout.count() > 0) {
      timers_.emplace(options_.idle_timeout);
    }
    // The listener must not block either: a client that resets between
    // epoll's "readable" and our accept would otherwise hang the loop in accept.
    make_non_blocking(listener_.get());
    add(stop_.fd(), EPOLLIN);
    add(listener_.get(), EPOLLIN);
    listening_ = true;
  }

  LoopStats run() {
    std::array<epoll_event, kMaxEvents> events{};
    for (;;) {
      const int ready = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, wait_ms());
      if (ready < 0) {
        if (errno == EINTR) {
          continue;  // a signal; a stop request also makes stop_.fd() readable
        }
        throw os_error("epoll_wait");
      }
      for (int k = 0; k < ready; ++k) {
        const int fd = events[static_cast<std::size_t>(k)].data.fd;
        const std::uint32_t what = events[static_cast<std::size_t>(k)].events;
        if (fd == stop_.fd()) {
          return stats_;
        }
        if (fd == listener_.get()) {
          accept_ready();
        } else {
          serve_connection(fd, what);
        }
      }
      const Clock::time_point now = Clock::now();
      if (paused_until_ && now >= *paused_until_) {
        paused_until_.reset();
        update_listener();
      }
      if (timers_) {
        for (const int fd : timers_->take_expired(now)) {
          ++stats_.idle_closed;
          close_connection(fd);
        }
      }
    }
  }

 private:
  static void make_non_blocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      throw os_error("fcntl O_NONBLOCK");
    }
  }

  void add(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      throw os_error("epoll_ctl ADD");
    }
  }

  void modify(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
      throw os_error("epoll_ctl MOD");
    }
  }

  // epoll_wait's timeout: the next idle deadline or the end of an accept
  // pause, whichever is first; -1 (sleep until an event) when neither.
  int wait_ms() const {
    std::optional<std::chrono::milliseconds> wait;
    const Clock::time_point now = Clock::now();
    if (timers_) {
      wait = timers_->time_to_next(now);
    }
    if (paused_until_) {
      const auto pause = std::chrono::ceil<std::chrono::milliseconds>(
          std::max(Clock::duration::zero(), *paused_until_ - now));
      wait = wait ? std::min(*wait, pause) : pause;
    }
    return wait ? static_cast<int>(wait->count()) : -1;
  }

  // The listener is watched unless the server is full or pausing after EMFILE.
  void update_listener() {
    const bool want = !paused_until_ && connections_.size() < options_.max_connections;
    if (want != listening_) {
      modify(listener_.get(), want ? std::uint32_t{EPOLLIN} : std::uint32_t{0});
      listening_ = want;
    }
  }

  void accept_ready() {
    while (connections_.size() < options_.max_connections) {
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;  // the backlog is empty
        }
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;  // a client that reset while it waited in the backlog
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Level-triggered: the listener stays readable, and accepting again
          // at once would fail again, a busy loop. Pause instead.
          paused_until_ = Clock::now() + kAcceptBackoff;
          break;
        }
        throw os_error("accept4");
      }
      Connection connection{Fd(fd), ConnectionBuffer(options_.high_water)};
      add(fd, EPOLLIN);
      connection.watching = EPOLLIN;
      connections_.emplace(fd, std::move(connection));
      ++stats_.accepted;
      if (timers_) {
        timers_->touch(fd, Clock::now());
      }
    }
    update_listener();
  }

  void serve_connection(int fd, std::uint32_t what) {
    const auto found = connections_.find(fd);
    if (found == connections_.end()) {
      return;  // closed earlier in this batch of events
    }
    Connection& connection = found->second;
    try {
      bool progress = false;
      if ((what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && connection.output.wants_read() &&
          !connection.peer_closed) {
        progress |= read_from(connection);
      }
      if (connection.output.wants_write()) {
        progress |= connection.output.flush_to(fd) > 0;
      } else if ((what & EPOLLERR) != 0) {
        throw ProtocolError("socket error");
      }
      if (connection.peer_closed && !connection.output.wants_write()) {
        close_connection(fd);  // everything echoed: our side closes as well
        return;
      }
      if (progress && timers_) {
        timers_->touch(fd, Clock::now());
      }
      watch(connection);
    } catch (const std::system_error&) {
      close_connection(fd);  // a reset or EPIPE: that client only
    } catch (const ProtocolError&) {
      close_connection(fd);
    }
  }

  // One recv; true if bytes came. Sets peer_closed at end of stream.
  bool read_from(Connection& connection) {
    std::array<char, kReadChunk> buffer{};
    for (;;) {
      const ssize_t received = ::recv(connection.socket.get(), buffer.data(), buffer.size(), 0);
      if (received > 0) {
        const auto size = static_cast<std::size_t>(received);
        for (std::size_t i = 0; i < size; ++i) {
          buffer[i] = ascii_upper(buffer[i]);
        }
        connection.output.append(std::string_view(buffer.data(), size));
        return true;
      }
      if (received == 0) {
        connection.peer_closed = true;  // the client shut its sending side
        return false;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return false;  // readiness can be stale: not an error
      }
      throw os_error("recv");
    }
  }

  // Back-pressure: EPOLLIN only while the output is below its high-water
  // mark; EPOLLOUT only while there is output.
  void watch(Connection& connection) {
    std::uint32_t want = 0;
    if (connection.output.wants_read() && !connection.peer_closed) {
      want |= EPOLLIN;
    }
    if (connection.output.wants_write()) {
      want |= EPOLLOUT;
    }
    if (want != connection.watching) {
      modify(connection.socket.get(), want);
      connection.watching = want;
    }
  }

  void close_connection(int fd) {
    if (timers_) {
      timers_->remove(fd);
    }
    // Remove before close: the number may be reused by the next accept.
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    connections_.erase(fd);  // the Fd closes the socket
    update_listener();
  }

  const Fd& listener_;
  const StopSignal& stop_;
  ServerOptions options_;
  Fd epoll_;
  std::optional<IdleTimers> timers_;
  std::unordered_map<int, Connection> connections_;
  std::optional<Clock::time_point> paused_until_;
  bool listening_ = false;
  LoopStats stats_;
};

}  // namespace

LoopStats serve(const Fd& listener, const StopSignal& stop, const ServerOptions& options) {
  Loop loop(listener, stop, options);
  return loop.run();
}

}  // namespace lab::event_loop
