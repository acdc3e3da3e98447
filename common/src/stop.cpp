#include "lab/stop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>

#include "lab/error.hpp"

namespace lab {

StopSignal::StopSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) {
    throw os_error("eventfd");
  }
}

StopSignal::~StopSignal() { ::close(fd_); }

void StopSignal::request() noexcept {
  const int saved_errno = errno;  // a handler must not change errno under the interrupted code
  const std::uint64_t one = 1;
  // Cannot block (EFD_NONBLOCK) and cannot usefully fail: the counter only
  // overflows after 2^64 - 2 requests.
  [[maybe_unused]] const ssize_t written = ::write(fd_, &one, sizeof one);
  errno = saved_errno;
}

void StopSignal::renew_in_child() noexcept {
  // dup3 replaces the shared eventfd at the same number in one step, so any
  // code that kept fd() polls the child's own from now on. If eventfd fails
  // (no descriptor left) the child keeps the shared one: it cannot do better.
  const int fresh = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fresh >= 0) {
    ::dup3(fresh, fd_, O_CLOEXEC);
    ::close(fresh);
  }
}

bool StopSignal::requested() const noexcept {
  pollfd entry{fd_, POLLIN, 0};
  return ::poll(&entry, 1, 0) == 1;
}

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal_number) {
  g_stop_signal = signal_number;
  process_stop().request();
}

}  // namespace

StopSignal& process_stop() {
  // Constructed on first use, before any handler can run: install_stop_handlers calls this first.
  static StopSignal stop;
  return stop;
}

int stop_signal_number() noexcept { return g_stop_signal; }

void give_child_its_own_stop() noexcept {
  process_stop().renew_in_child();
  g_stop_signal = 0;
}

void install_stop_handlers() {
  (void)process_stop();
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked call returns EINTR
  for (int signal_number : {SIGINT, SIGTERM}) {
    if (::sigaction(signal_number, &action, nullptr) != 0) {
      throw os_error("sigaction");
    }
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (::sigaction(SIGPIPE, &ignore, nullptr) != 0) {
    throw os_error("sigaction SIGPIPE");
  }
}

void throw_if_stop_requested() {
  if (process_stop().requested()) {
    throw StopRequested{};
  }
}

bool wait_readable(int fd, const StopSignal& stop, std::optional<std::chrono::milliseconds> timeout) {
  const auto deadline = timeout ? std::optional{Clock::now() + *timeout} : std::nullopt;
  for (;;) {
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      wait_ms = left.count() > 0 ? static_cast<int>(left.count()) : 0;
    }
    std::array<pollfd, 2> entries{{{fd, POLLIN, 0}, {stop.fd(), POLLIN, 0}}};
    const int ready = ::poll(entries.data(), entries.size(), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;  // the stop eventfd, not errno, says whether to stop
      }
      throw os_error("poll");
    }
    if (entries[1].revents != 0) {
      throw StopRequested{};
    }
    if (entries[0].revents != 0) {
      return true;  // readable, hung up or error: the next read will say which
    }
    if (ready == 0 && deadline && Clock::now() >= *deadline) {
      return false;
    }
  }
}

}  // namespace lab
