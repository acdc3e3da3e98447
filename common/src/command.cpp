#include "lab/command.hpp"

#include <fmt/core.h>
#include <poll.h>

#include <cerrno>
#include <csignal>
#include <optional>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab {

namespace {

// One stream of the child: reads what is there, up to the cap.
struct Collector {
  Fd* fd;
  std::string* text;
  bool open = true;
};

}  // namespace

CommandOutput run_command(const std::vector<std::string>& argv, const std::string& working_directory,
                          const CommandLimits& limits) {
  SpawnOptions options;
  options.capture_stdout = true;
  options.capture_stderr = true;
  options.working_directory = working_directory;
  Child child = Child::spawn(argv, options);

  CommandOutput result;
  // Both pipes are read as data arrives, with poll(2). Reading one to its
  // end before the other would deadlock once the child fills the other
  // pipe (64 KiB) and blocks writing to it.
  Collector streams[2] = {{&child.output(), &result.out}, {&child.errors(), &result.err}};
  const auto deadline = Clock::now() + limits.time_limit;
  while (streams[0].open || streams[1].open) {
    pollfd fds[2]{};
    nfds_t count = 0;
    Collector* polled[2]{};
    for (Collector& stream : streams) {
      if (stream.open) {
        fds[count] = {stream.fd->get(), POLLIN, 0};
        polled[count++] = &stream;
      }
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    const int ready = ::poll(fds, count, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) {
        throw_if_stop_requested();  // Child's destructor kills and reaps the command
        continue;
      }
      throw os_error("poll");
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      Collector& stream = *polled[i];
      const std::size_t room = limits.max_output - stream.text->size();
      // One byte past the room tells "exactly full" from "too much".
      auto chunk = read_some(*stream.fd, room + 1 < 4096 ? room + 1 : 4096);
      if (!chunk) {
        stream.open = false;
        continue;
      }
      if (chunk->size() > room) {
        stream.text->append(*chunk, 0, room);
        result.output_capped = true;
      } else {
        stream.text->append(*chunk);
      }
    }
    if (result.output_capped) {
      break;
    }
  }
  if (result.timed_out || result.output_capped) {
    child.send_signal(SIGKILL);
  }
  result.status = child.wait();
  return result;
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
