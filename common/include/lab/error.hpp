// The lab's error types, and how a system call failure becomes an exception.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace lab {

// A system call failed. `what` names the call and what it was acting on, as
// in os_error("connect 127.0.0.1:9002"); the message then reads
// "connect 127.0.0.1:9002: Connection refused". Call it right after the
// failing call: it reads errno, which the next library call may change.
[[nodiscard]] std::system_error os_error(const std::string& what);
[[nodiscard]] std::system_error os_error(int error_number, const std::string& what);

// The errno name of a system_error's code, e.g. "ECONNREFUSED" (or "" if the
// code is not an errno value).
[[nodiscard]] std::string errno_name(int error_number);

// The peer broke the protocol: garbage, a truncated message, an oversize
// length. It ends that one conversation; a server goes on with the next.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A stub of an exercise the student has not written yet. The message reads
// "not implemented: exercise 01.2 (the uppercase reply) — see lessons/01_udp/README.md".
class NotImplemented : public std::logic_error {
 public:
  NotImplemented(const std::string& exercise, const std::string& title, const std::string& lesson_dir);
};

// The command line was wrong; the message says what to type instead.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A stop was requested (SIGINT, SIGTERM or StopSignal::request) while the
// program was blocked. It unwinds to main, which exits cleanly. It is not a
// std::exception on purpose: `catch (const std::exception&)` around one
// conversation must not swallow a request to stop the whole server.
struct StopRequested {};

}  // namespace lab
