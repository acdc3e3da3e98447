// Exercise 07 — write these functions. daemon.hpp says what each must do,
// and lessons/07_daemon/README.md walks through them. Grade with:
//   build/default/lab grade 07
#include "daemon.hpp"

#include "lab/error.hpp"

namespace lab::daemon {

namespace {
constexpr const char* kLesson = "lessons/07_daemon";
}  // namespace

AlreadyRunning::AlreadyRunning(pid_t pid, const std::string& path)
    : std::runtime_error("already running as pid " + std::to_string(pid) + " (pid file " + path + ")"),
      pid_(pid) {}

PidFile PidFile::acquire(const std::string& /*path*/) {
  throw NotImplemented("07.1", "the locked pid file", kLesson);
}

PidFile::~PidFile() {
  // Exercise 07.1: remove the file if this object owns it (fd_ is open).
}

std::optional<pid_t> locked_by(const std::string& /*path*/) {
  throw NotImplemented("07.1", "the locked pid file", kLesson);
}

Fd daemonize(std::span<const int> /*keep*/) {
  throw NotImplemented("07.2", "daemonize", kLesson);
}

void report_ready(Fd& /*readiness*/, std::string_view /*line*/) {
  throw NotImplemented("07.2", "daemonize", kLesson);
}

void report_failure(Fd& /*readiness*/, std::string_view /*line*/) {
  throw NotImplemented("07.2", "daemonize", kLesson);
}

pid_t fork_tied_to_parent(const std::function<int()>& /*body*/, int /*death_signal*/) {
  throw NotImplemented("07.3", "the child that dies with its parent", kLesson);
}

}  // namespace lab::daemon
