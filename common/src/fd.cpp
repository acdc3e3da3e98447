#include "lab/fd.hpp"

#include <unistd.h>

namespace lab {

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) {
    // close(2): "retrying the close() after a failure return is the wrong
    // thing to do" on Linux — the descriptor is released even on EINTR, and
    // a retry could close a descriptor another thread has just been given.
    ::close(fd_);
  }
  fd_ = fd;
}

}  // namespace lab
