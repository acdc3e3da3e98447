// The conventions every lesson program shares, in one place:
// --host/--port/--help, the ready line, a clean stop on SIGINT/SIGTERM, and
// one clear line on error instead of "terminate called after throwing...".
//
//   int main(int argc, char** argv) {
//     auto spec = lab::server_spec(1, "server", "UDP echo-upper server");
//     return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
//       lab::Fd socket = lab::udp_bind(args.endpoint());
//       lab::announce_listening(socket);
//       ...
//       return 0;
//     });
//   }
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "lab/endpoint.hpp"
#include "lab/fd.hpp"

namespace lab {

struct OptionSpec {
  std::string name;           // without the dashes: "port"
  std::string value_name;     // "PORT"; empty for a flag that takes no value
  std::string help;
  std::string default_value;  // used when the option is not given
};

struct ProgramSpec {
  int lesson = 0;             // 1 for lessons/01_udp; used in hints
  std::string name;           // "server" or "client": the prefix of error lines
  std::string summary;        // one line for --help
  std::vector<OptionSpec> options;
  std::string positionals;    // "[NAME...]" if the program takes operands, else empty
  std::string details;        // more --help text, after the options
  bool is_server = false;
};

// --host (default 127.0.0.1) and --port (default 9000 + lesson; 0 = any free port).
ProgramSpec server_spec(int lesson, std::string summary);
// --host and --port of the server to reach.
ProgramSpec client_spec(int lesson, std::string summary);

class Args {
 public:
  // The option's value, or its default.
  [[nodiscard]] const std::string& get(std::string_view name) const;
  // The option as an integer in [min, max]; a UsageError names the option otherwise.
  [[nodiscard]] long long get_int(std::string_view name, long long min, long long max) const;
  [[nodiscard]] bool flag(std::string_view name) const;
  [[nodiscard]] const std::vector<std::string>& positionals() const { return positionals_; }
  // --host and --port together.
  [[nodiscard]] Endpoint endpoint() const;

  // Parses argv against spec; throws UsageError. "--help" sets flag("help").
  static Args parse(const ProgramSpec& spec, int argc, const char* const* argv);

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::vector<std::string> positionals_;
};

std::string usage_text(const ProgramSpec& spec, std::string_view argv0);

// Runs a program body with the shared conventions: parses the arguments
// (printing --help), makes stdout line-buffered so that every line reaches a
// pipe at once, installs the SIGINT/SIGTERM handlers, and turns every
// exception into one line on stderr and a non-zero exit status:
//   bad arguments 64, exercise not implemented 3, anything else 1.
// A stop (StopRequested) exits 0 for a server, 130 for an interrupted client.
int run_program(int argc, char** argv, const ProgramSpec& spec,
                const std::function<int(const Args&)>& body);

// Prints the ready line "listening on HOST:PORT" with the real bound port,
// and flushes it. Tests and the lab tool wait for this line.
void announce_listening(const Fd& socket);

// A line of the program's own output on stdout, flushed.
template <typename... T>
void say(fmt::format_string<T...> format, T&&... args) {
  fmt::print(format, std::forward<T>(args)...);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// A diagnostic line on stderr, prefixed with the program's name ("client: ...").
void warn_line(std::string_view message);
template <typename... T>
void warn(fmt::format_string<T...> format, T&&... args) {
  warn_line(fmt::format(format, std::forward<T>(args)...));
}

// How to start this lesson's server, for "is the server running?" hints.
std::string start_server_hint(int lesson);

// The line run_program prints for a failed system call: the message, the
// errno name and what to do next, e.g. "connect 127.0.0.1:9002: Connection
// refused (ECONNREFUSED) — is the server running? ...".
std::string describe_failure(const ProgramSpec& spec, const std::system_error& error);

}  // namespace lab
