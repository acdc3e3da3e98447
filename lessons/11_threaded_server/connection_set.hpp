// Lesson 11 — the set of open connections (given, not an exercise): the
// connection cap, and what a clean shutdown needs to reach every
// conversation at once.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <mutex>
#include <set>

namespace lab::threaded {

// The sockets of the conversations under way, at most `capacity` of them.
// Many threads use it at once (the accepting thread adds, each conversation
// removes its own), so every member takes the mutex.
//
// It holds descriptor NUMBERS, not owners: each conversation's thread owns
// its lab::Fd and closes it. So a conversation must remove() its socket
// BEFORE the Fd closes it: once closed, the kernel may hand the same number
// to the next accepted client, and a shutdown_all() aimed at the old
// conversation would cut the new one.
class ConnectionSet {
 public:
  explicit ConnectionSet(std::size_t capacity) : capacity_(capacity) {}

  // Registers an accepted socket. False when `capacity` sockets are open
  // already (the caller refuses the client) or after shutdown_all().
  bool add(int socket) {
    const std::lock_guard lock(mutex_);
    if (closed_ || open_.size() >= capacity_) {
      return false;
    }
    open_.insert(socket);
    return true;
  }

  // The conversation on `socket` has ended; call before closing it.
  void remove(int socket) {
    const std::lock_guard lock(mutex_);
    open_.erase(socket);
  }

  // Refuses every later add, and shuts down every open socket in both
  // directions. shutdown(2), not close(2): a thread blocked in recv on the
  // socket returns 0 (end of stream) at once, a blocked send fails with
  // EPIPE, and the descriptor stays valid until its owner closes it.
  // (close(2) from another thread does not wake a blocked recv on Linux,
  // and frees the number for reuse while the owner still uses it.)
  void shutdown_all() {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    for (const int socket : open_) {
      ::shutdown(socket, SHUT_RDWR);  // ENOTCONN if the peer has already gone: nothing to do
    }
  }

  [[nodiscard]] std::size_t size() const {
    const std::lock_guard lock(mutex_);
    return open_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::set<int> open_;
  std::size_t capacity_;
  bool closed_ = false;
};

}  // namespace lab::threaded
