// lab::Fd — the one owner of one file descriptor.
#pragma once

namespace lab {

// Move-only: exactly one Fd owns a descriptor, and it closes it exactly once.
//
//   lab::Fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
//   if (!sock) throw lab::os_error("socket");
//
// Create descriptors with SOCK_CLOEXEC / O_CLOEXEC so that a program started
// with exec (lesson 03 onwards) does not inherit them by accident.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }

  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  // Closes the descriptor this Fd owned (not the other's), then takes the
  // other's. Swapping instead would keep our old descriptor alive inside a
  // moved-from object for an unknown time.
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }

  [[nodiscard]] int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives the descriptor up without closing it; the caller now owns it.
  [[nodiscard]] int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the owned descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace lab
