// Lesson 12 — the event loop you write in event_loop.cpp (exercises 12.1–12.3).
// The reference answer is in solutions/12_event_loop/event_loop.cpp.
//
// One thread serves every client: it asks the kernel which sockets are
// ready (epoll), and only then reads or writes them, never blocking on one.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lab/fd.hpp"
#include "lab/stop.hpp"

namespace lab::event_loop {

using Clock = std::chrono::steady_clock;

// How much reply may wait in one connection's output buffer before the loop
// stops reading that client (back-pressure, 背压).
constexpr std::size_t kDefaultHighWater = 64 * 1024;

// ---- Exercise 12.2: the per-connection buffer ---------------------------------
//
// The bytes a connection still has to send, and whether the loop should read
// more from that client. Everything but flush_to is plain memory work, so it
// can be unit-tested without a socket.
//
// append(bytes): queues bytes to send, after those already queued.
// pending(): how many queued bytes are not sent yet.
// unsent(): those bytes, oldest first (a view into the buffer, valid until
//   the next append, consume or flush_to).
// consume(n): the first n unsent bytes were sent: forget them. n > pending()
//   is a bug in the caller: throw std::out_of_range and change nothing.
// wants_read(): pending() < high_water. When the client does not read its
//   replies, its output grows; once it reaches the high-water mark the loop
//   must stop reading that client (EPOLLIN off) until the output drains
//   below the mark, so one client can never make the server buffer without
//   limit.
// wants_write(): pending() > 0 (EPOLLOUT on only while there is something to
//   send: a socket is almost always writable, and level-triggered EPOLLOUT on
//   an empty buffer would wake the loop for nothing, for ever).
// flush_to(socket): sends unsent bytes to a non-blocking socket with
//   send(..., MSG_NOSIGNAL | MSG_DONTWAIT) until the buffer is empty or send
//   fails with EAGAIN/EWOULDBLOCK (the kernel's send buffer is full: keep the
//   rest for the next EPOLLOUT). A partial write is normal: consume what was
//   sent and go on. Retries EINTR. Any other error (EPIPE, ECONNRESET) throws
//   std::system_error naming "send". Returns the number of bytes sent.
//   A buffer that has been drained must not keep holding a large allocation:
//   10,000 idle connections each holding yesterday's 64 KiB would be 640 MB.
class ConnectionBuffer {
 public:
  explicit ConnectionBuffer(std::size_t high_water = kDefaultHighWater);

  void append(std::string_view bytes);
  [[nodiscard]] std::size_t pending() const noexcept;
  [[nodiscard]] std::string_view unsent() const noexcept;
  void consume(std::size_t sent);
  [[nodiscard]] bool wants_read() const noexcept;
  [[nodiscard]] bool wants_write() const noexcept;
  std::size_t flush_to(int socket);

 private:
  // The members the reference uses; change them as you like.
  std::string data_;      // queued bytes; data_[0, sent_) are already sent
  std::size_t sent_ = 0;
  std::size_t high_water_;
};

// ---- Exercise 12.3: idle deadlines ----------------------------------------------
//
// One deadline per connection (by descriptor number): `timeout` after the
// last time the connection made progress. A sorted structure keeps the
// earliest deadline first, so the loop only ever looks at the front; a timer
// wheel (buckets of, say, 100 ms) would do as well.
//
// touch(fd, now): the connection made progress at `now`: its deadline is now
//   now + timeout, replacing any earlier one (a deadline is pushed back, never
//   kept: an active client is never closed as idle).
// remove(fd): the connection is closed: forget it (a closed descriptor number
//   is reused by the next accept; a stale deadline would close a stranger).
// size(): how many connections have a deadline.
// time_to_next(now): how long epoll_wait may sleep: the time from `now` to the
//   earliest deadline, rounded UP to whole milliseconds (rounding down wakes
//   the loop just before the deadline, with nothing to do, again and again),
//   zero if it has passed; nullopt when there is no deadline (sleep until
//   something happens).
// take_expired(now): removes and returns the connections whose deadline is
//   at or before `now`, earliest deadline first.
class IdleTimers {
 public:
  explicit IdleTimers(std::chrono::milliseconds timeout);

  void touch(int fd, Clock::time_point now);
  void remove(int fd);
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::optional<std::chrono::milliseconds> time_to_next(Clock::time_point now) const;
  std::vector<int> take_expired(Clock::time_point now);

 private:
  // The members the reference uses; change them as you like.
  std::chrono::milliseconds timeout_;
  std::map<int, Clock::time_point> deadline_of_;           // fd -> its deadline
  std::set<std::pair<Clock::time_point, int>> by_deadline_;  // the same, earliest first
};

// ---- Exercise 12.1: the readiness loop ----------------------------------------
struct ServerOptions {
  // A connection with no progress (nothing read, nothing sent) for this long
  // is closed (exercise 12.3). Zero: never; then the loop uses no IdleTimers.
  std::chrono::milliseconds idle_timeout{0};
  // At most this many connections at once. While full, the loop stops
  // accepting (the listener's EPOLLIN off): new clients wait in the listen
  // backlog, and the next is accepted as soon as one leaves.
  std::size_t max_connections = 10'000;
  // Each connection's ConnectionBuffer high-water mark (exercise 12.2).
  std::size_t high_water = kDefaultHighWater;
};

struct LoopStats {
  std::size_t accepted = 0;     // connections accepted
  std::size_t idle_closed = 0;  // of those, closed at the idle deadline
};

// The echo-upper server on one thread: every byte a client sends is sent
// back ASCII-uppercased ('a'..'z' only), nothing added, nothing removed, in
// order, on the same connection. No framing: bytes in, bytes out.
//
// One epoll instance (epoll_create1(EPOLL_CLOEXEC)) watches the listener,
// every connection and stop.fd(). The listener and every accepted socket are
// non-blocking (O_NONBLOCK: accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC), so
// that no call can block the one thread that serves everybody.
//   - listener readable: accept until EAGAIN (or the cap). ECONNABORTED and
//     EINTR: go on. EMFILE/ENFILE/ENOBUFS/ENOMEM (out of descriptors or
//     memory): not the end of the server: stop watching the listener for
//     about 100 ms, then try again.
//   - connection readable (and its buffer wants_read): one recv of at most a
//     few KiB; 0 = the client closed its side: send what is still queued,
//     then close; bytes: uppercase them into its ConnectionBuffer and try to
//     send at once; EAGAIN: nothing to do; ECONNRESET or any other error:
//     close that connection only.
//   - connection writable: flush_to; an error closes that connection only.
//   - after each event, watch exactly what the connection wants now: EPOLLIN
//     while wants_read (back-pressure), EPOLLOUT while wants_write.
//   - stop.fd() readable: return. Every connection is closed on the way out.
// Level-triggered epoll (the default) is fine: see the README for edge-triggered.
// With options.idle_timeout > 0, idle connections are closed at their
// deadline (IdleTimers; epoll_wait's timeout is time_to_next).
LoopStats serve(const Fd& listener, const StopSignal& stop, const ServerOptions& options);

}  // namespace lab::event_loop
