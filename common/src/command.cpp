#include "lab/command.hpp"

#include <fmt/core.h>

#include <csignal>
#include <utility>

#include "lab/collect.hpp"
#include "lab/error.hpp"
#include "lab/stop.hpp"

namespace lab {

CommandOutput run_command(const std::vector<std::string>& argv, const std::string& working_directory,
                          const CommandLimits& limits) {
  SpawnOptions options;
  options.capture_stdout = true;
  options.capture_stderr = true;
  options.working_directory = working_directory;
  Child child = Child::spawn(argv, options);

  CollectOptions collect;
  collect.time_limit = limits.time_limit;
  collect.max_output = limits.max_output;
  collect.stop = &process_stop();
  CollectedOutput collected = collect_output(child, collect);
  if (collected.stopped) {
    throw StopRequested{};  // Child's destructor kills and reaps the command
  }
  if (collected.timed_out || collected.output_capped) {
    child.send_signal(SIGKILL);
  }
  return CommandOutput{child.wait(), std::move(collected.out), std::move(collected.err), collected.output_capped,
                       collected.timed_out};
}

const std::vector<AllowedCommand>& allowed_commands() {
  static const std::vector<AllowedCommand> commands = {
      {"date", {"date"}, "the server's date and time"},
      {"uname -a", {"uname", "-a"}, "the server's operating system"},
      {"ls -l", {"ls", "-l"}, "the files in the server's directory"},
      {"big", {"seq", "-f", "big line %04g", "1", "1000"}, "a known text of 14000 bytes"},
      {"missing", {"ls", "-l", "/nonexistent/no-such-file"}, "a command that fails (stderr, status 2)"},
  };
  return commands;
}

const AllowedCommand* find_allowed_command(std::string_view name) {
  for (const AllowedCommand& command : allowed_commands()) {
    if (command.name == name) {
      return &command;
    }
  }
  return nullptr;
}

std::string allowed_command_names() {
  std::string names;
  for (const AllowedCommand& command : allowed_commands()) {
    if (!names.empty()) {
      names += ", ";
    }
    names += command.name;
  }
  return names;
}

std::string big_command_output() {
  std::string text;
  text.reserve(kBigOutputBytes);
  for (int line = 1; line <= 1000; ++line) {
    text += fmt::format("big line {:04}\n", line);
  }
  return text;
}

}  // namespace lab
