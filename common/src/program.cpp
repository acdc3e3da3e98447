#include "lab/program.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "lab/error.hpp"
#include "lab/stop.hpp"

namespace lab {

namespace {

std::string g_program_name = "program";

const OptionSpec* find_option(const ProgramSpec& spec, std::string_view name) {
  for (const auto& option : spec.options) {
    if (option.name == name) {
      return &option;
    }
  }
  return nullptr;
}

// Nobody answered at that address: the server may not be running.
bool is_connect_failure(int code) {
  return code == ECONNREFUSED || code == ETIMEDOUT || code == EHOSTUNREACH || code == ENETUNREACH;
}

// The server was there and then went, or hung up: a reset (recv(2), send(2):
// ECONNRESET) or a write after its end closed (EPIPE). Starting it again is
// not the advice; what it printed says why it closed.
bool is_closed_by_peer(int code) { return code == ECONNRESET || code == EPIPE; }

std::string describe(const std::system_error& error) {
  std::string text = error.what();
  if (error.code().category() == std::generic_category()) {
    const std::string name = errno_name(error.code().value());
    if (!name.empty()) {
      text += " (" + name + ")";
    }
  }
  return text;
}

}  // namespace

ProgramSpec server_spec(int lesson, std::string summary) {
  ProgramSpec spec;
  spec.lesson = lesson;
  spec.name = "server";
  spec.summary = std::move(summary);
  spec.is_server = true;
  spec.options = {
      {"host", "HOST", "address to listen on", "127.0.0.1"},
      {"port", "PORT", "port to listen on; 0 picks any free port", std::to_string(9000 + lesson)},
  };
  return spec;
}

ProgramSpec client_spec(int lesson, std::string summary) {
  ProgramSpec spec;
  spec.lesson = lesson;
  spec.name = "client";
  spec.summary = std::move(summary);
  spec.options = {
      {"host", "HOST", "server address", "127.0.0.1"},
      {"port", "PORT", "server port", std::to_string(9000 + lesson)},
  };
  return spec;
}

const std::string& Args::get(std::string_view name) const {
  const auto found = values_.find(name);
  if (found == values_.end()) {
    throw std::logic_error("program asked for undeclared option --" + std::string(name));
  }
  return found->second;
}

long long Args::get_int(std::string_view name, long long min, long long max) const {
  const std::string& text = get(name);
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc{} || stop != end || value < min || value > max) {
    throw UsageError(fmt::format("--{} must be a whole number from {} to {}, not '{}'", name, min,
                                 max, text));
  }
  return value;
}

bool Args::flag(std::string_view name) const {
  const auto found = values_.find(name);
  return found != values_.end() && found->second == "true";
}

Endpoint Args::endpoint() const {
  return Endpoint{get("host"), static_cast<std::uint16_t>(get_int("port", 0, 65535))};
}

Args Args::parse(const ProgramSpec& spec, int argc, const char* const* argv) {
  Args args;
  for (const auto& option : spec.options) {
    args.values_[option.name] = option.value_name.empty() ? "false" : option.default_value;
  }
  args.values_["help"] = "false";
  bool only_operands = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (only_operands || word.size() < 2 || word.substr(0, 1) != "-") {
      args.positionals_.emplace_back(word);
      continue;
    }
    if (word == "--") {
      only_operands = true;
      continue;
    }
    if (word == "-h" || word == "--help") {
      args.values_["help"] = "true";
      continue;
    }
    if (word.substr(0, 2) != "--") {
      throw UsageError(fmt::format("unknown option '{}'", word));
    }
    std::string_view name = word.substr(2);
    std::optional<std::string_view> inline_value;
    if (const auto equals = name.find('='); equals != std::string_view::npos) {
      inline_value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const OptionSpec* option = find_option(spec, name);
    if (option == nullptr) {
      throw UsageError(fmt::format("unknown option '--{}'", name));
    }
    if (option->value_name.empty()) {
      if (inline_value) {
        throw UsageError(fmt::format("--{} takes no value", name));
      }
      args.values_[option->name] = "true";
    } else if (inline_value) {
      args.values_[option->name] = std::string(*inline_value);
    } else if (i + 1 < argc) {
      args.values_[option->name] = argv[++i];
    } else {
      throw UsageError(fmt::format("--{} needs a value ({})", name, option->value_name));
    }
  }
  if (spec.positionals.empty() && !args.positionals_.empty()) {
    throw UsageError(fmt::format("unexpected argument '{}'", args.positionals_[0]));
  }
  return args;
}

std::string usage_text(const ProgramSpec& spec, std::string_view argv0) {
  std::string text = fmt::format("usage: {} [OPTIONS]{}{}\n{}\n\noptions:\n", argv0,
                                 spec.positionals.empty() ? "" : " ", spec.positionals,
                                 spec.summary);
  for (const auto& option : spec.options) {
    std::string left = "--" + option.name;
    if (!option.value_name.empty()) {
      left += " " + option.value_name;
    }
    std::string right = option.help;
    if (!option.value_name.empty() && !option.default_value.empty()) {
      right += " (default " + option.default_value + ")";
    }
    text += fmt::format("  {:<20} {}\n", left, right);
  }
  text += fmt::format("  {:<20} {}\n", "-h, --help", "show this help and exit");
  if (!spec.details.empty()) {
    text += "\n" + spec.details;
    if (spec.details.back() != '\n') {
      text += "\n";
    }
  }
  return text;
}

std::string start_server_hint(int lesson) {
  // The server is built next to this program: name it by a path the user can paste.
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  std::string server = "server";
  if (!error) {
    const auto relative = std::filesystem::relative(self.parent_path() / "server",
                                                    std::filesystem::current_path(error), error);
    server = error ? (self.parent_path() / "server").string() : relative.string();
    if (server.find('/') == std::string::npos) {
      server = "./" + server;
    }
  }
  return fmt::format("is the server running? start it with: {} (or: lab run {:02} --server)",
                     server, lesson);
}

std::string describe_failure(const ProgramSpec& spec, const std::system_error& error) {
  std::string line = describe(error);
  const bool is_errno = error.code().category() == std::generic_category();
  if (!spec.is_server && is_errno && is_connect_failure(error.code().value())) {
    line += " \u2014 " + start_server_hint(spec.lesson);
  } else if (!spec.is_server && is_errno && is_closed_by_peer(error.code().value())) {
    line += " \u2014 the server closed the connection: its output says why";
  } else if (spec.is_server && error.code() == std::errc::address_in_use) {
    line += " \u2014 another program uses this port: stop it, or pick another with --port (0 = any)";
  }
  return line;
}

void warn_line(std::string_view message) {
  std::fflush(stdout);  // keep stdout and stderr lines in the order they happened
  fmt::print(stderr, "{}: {}\n", g_program_name, message);
}

void announce_listening(const Fd& socket) {
  say("listening on {}", SocketAddress::local_of(socket.get()).to_string());
}

int run_program(int argc, char** argv, const ProgramSpec& spec,
                const std::function<int(const Args&)>& body) {
  g_program_name = spec.name;
  // A pipe makes stdout fully buffered; a reader waiting for a line would wait for ever.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    const Args args = Args::parse(spec, argc, argv);
    if (args.flag("help")) {
      fmt::print("{}", usage_text(spec, argc > 0 ? argv[0] : spec.name));
      return 0;
    }
    install_stop_handlers();
    return body(args);
  } catch (const StopRequested&) {
    const int signal_number = stop_signal_number();
    const char* name = signal_number != 0 ? sigabbrev_np(signal_number) : nullptr;
    if (spec.is_server) {
      say("stopped{}{}", name != nullptr ? " by SIG" : "", name != nullptr ? name : "");
      return 0;
    }
    warn("interrupted");
    return 130;
  } catch (const UsageError& error) {
    warn("{} (try --help)", error.what());
    return 64;  // EX_USAGE
  } catch (const NotImplemented& error) {
    warn("{}", error.what());
    return 3;
  } catch (const std::system_error& error) {
    warn("{}", describe_failure(spec, error));
    return 1;
  } catch (const std::exception& error) {
    warn("{}", error.what());
    return 1;
  }
}

}  // namespace lab
