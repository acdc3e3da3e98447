#include "runner.hpp"

#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <optional>
#include <system_error>

#include <fmt/core.h>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/stop.hpp"
#include "shell.hpp"

namespace lab::tool {

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr std::string_view kReadyPrefix = "listening on ";

// One output stream of one program, printed line by line with a prefix.
struct Stream {
  Stream(std::string name, Fd* source) : prefix(std::move(name)), fd(source) {}
  std::string prefix;
  Fd* fd;
  std::string partial;
  bool open = true;
};

class Transcript {
 public:
  explicit Transcript(bool color) : color_(color) {}

  void line(const Stream& stream, std::string_view text, bool is_error) const {
    const char* start = "";
    if (color_) {
      start = stream.prefix == "[server]" ? "\033[36m" : stream.prefix == "[client]" ? "\033[32m" : "\033[33m";
    }
    fmt::print("{}{}{} {}{}{}\n", start, stream.prefix, color_ ? "\033[0m" : "",
               is_error && color_ ? "\033[2m" : "", text, is_error && color_ ? "\033[0m" : "");
    std::fflush(stdout);
  }
  void note(std::string_view text) const {
    fmt::print("{}[lab]{} {}\n", color_ ? "\033[33m" : "", color_ ? "\033[0m" : "", text);
    std::fflush(stdout);
  }

 private:
  bool color_;
};

// Reads whatever is ready on the streams (waiting at most `timeout`) and
// prints complete lines. Returns the lines read, for the ready-line check.
std::vector<std::string> pump(std::vector<Stream*>& streams, const Transcript& transcript,
                              std::chrono::milliseconds timeout) {
  std::vector<pollfd> entries;
  for (const Stream* stream : streams) {
    entries.push_back({stream->open ? stream->fd->get() : -1, POLLIN, 0});
  }
  entries.push_back({process_stop().fd(), POLLIN, 0});
  if (::poll(entries.data(), entries.size(), static_cast<int>(timeout.count())) < 0) {
    if (errno == EINTR) {
      return {};
    }
    throw os_error("poll");
  }
  if (entries.back().revents != 0) {
    throw StopRequested{};
  }
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    Stream& stream = *streams[i];
    if (entries[i].revents == 0 || !stream.open) {
      continue;
    }
    char chunk[4096];
    const ssize_t got = ::read(stream.fd->get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    const bool is_error = stream.prefix.find("err") != std::string::npos;
    if (got <= 0) {
      stream.open = false;
      if (!stream.partial.empty()) {
        transcript.line(stream, stream.partial, is_error);
        lines.push_back(stream.partial);
        stream.partial.clear();
      }
      continue;
    }
    stream.partial.append(chunk, static_cast<std::size_t>(got));
    for (auto newline = stream.partial.find('\n'); newline != std::string::npos;
         newline = stream.partial.find('\n')) {
      std::string text = stream.partial.substr(0, newline);
      stream.partial.erase(0, newline + 1);
      transcript.line(stream, text, is_error);
      lines.push_back(std::move(text));
    }
  }
  return lines;
}

bool any_open(const std::vector<Stream*>& streams) {
  for (const Stream* stream : streams) {
    if (stream->open) {
      return true;
    }
  }
  return false;
}

// Gives the client its demo input and closes its stdin. A client that has
// already ended (it failed at once) cannot take it: its own error line, not
// our EPIPE, is what the user needs to see.
void feed(Child& client, const std::string& input) {
  try {
    write_all(client.input(), input);
  } catch (const std::system_error& error) {
    if (error.code() != std::errc::broken_pipe) {
      throw;
    }
  }
  client.input().reset();
}

[[noreturn]] void exec_program(const fs::path& program, const std::vector<std::string>& args) {
  std::vector<std::string> argv{program.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& word : argv) {
    raw.push_back(word.data());
  }
  raw.push_back(nullptr);
  std::fflush(stdout);
  ::execv(program.c_str(), raw.data());
  throw os_error("exec " + program.string());
}

// Runs the client alone, with the manifest's arguments: for lessons whose
// client starts and controls its server itself.
int run_client_only(const Lesson& lesson, const fs::path& dir, const RunOptions& options,
                    const Transcript& transcript) {
  std::vector<std::string> argv{(dir / "client").string()};
  const auto& extra = options.passthrough.empty() ? lesson.client_args : options.passthrough;
  argv.insert(argv.end(), extra.begin(), extra.end());
  SpawnOptions spawn;
  spawn.pipe_stdin = true;
  Child client = Child::spawn(argv, spawn);
  std::string input;
  for (const auto& line : lesson.client_input) {
    input += line + "\n";
  }
  feed(client, input);
  Stream out{"[client]", &client.output()};
  Stream err{"[client:err]", &client.errors()};
  std::vector<Stream*> streams{&out, &err};
  try {
    while (any_open(streams)) {
      pump(streams, transcript, 1000ms);
    }
  } catch (const StopRequested&) {
    transcript.note("interrupted");
    client.stop(3s);
    return 130;
  }
  const ExitStatus status = client.wait();
  transcript.note("client " + status.to_string());
  return status.success() ? 0 : 1;
}

}  // namespace

int run_lesson(const Lesson& lesson, const RunOptions& options) {
  const fs::path reference_dir = options.build_dir / "solutions" / lesson.dir;
  const fs::path mine_dir = options.build_dir / "lessons" / lesson.dir;
  // The reference exists when its sources do (a handout has none); its
  // programs may not be built yet, which the build below takes care of.
  const bool have_reference = fs::exists(options.source_dir / "solutions" / lesson.dir);
  const bool mine = options.mine || !have_reference;
  const fs::path dir = mine ? mine_dir : reference_dir;
  const std::string which = mine ? "your build" : "the reference build";

  // Bring the programs up to date (a no-op when nothing changed).
  const std::string prefix = (mine ? "lesson" : "solution") + lesson.number + "_";
  const Result built = run_command({"cmake", "--build", options.build_dir.string(), "--target",
                                    prefix + "server", prefix + "client"});
  if (!built.status.success()) {
    fmt::print(stderr, "{}\nlab: lesson {} does not build (above)\n", built.output, lesson.number);
    return 1;
  }
  const Transcript transcript(options.color);
  if (!options.mine && !have_reference) {
    transcript.note("solutions/ is absent: running your build");
  }

  if (options.server_only || options.client_only) {
    const fs::path program = dir / (options.server_only ? "server" : "client");
    transcript.note(fmt::format("{} ({}); Ctrl-C stops it", display_path(program), which));
    exec_program(program, options.passthrough);
  }

  transcript.note(fmt::format("lesson {}: {} \u2014 {}", lesson.number, lesson.title, which));
  if (lesson.run_mode == "client-only") {
    return run_client_only(lesson, dir, options, transcript);
  }
  std::vector<std::string> server_argv{(dir / "server").string(), "--port", "0"};
  server_argv.insert(server_argv.end(), lesson.server_args.begin(), lesson.server_args.end());
  Child server = Child::spawn(server_argv);
  Stream server_out{"[server]", &server.output()};
  Stream server_err{"[server:err]", &server.errors()};
  std::vector<Stream*> server_streams{&server_out, &server_err};

  int exit_code = 0;
  // Outside the try block, so that on Ctrl-C the client too is given time to
  // end by itself (it got the SIGINT as well) before anything is killed.
  std::optional<Child> client;
  try {
    // Wait for the ready line, with a deadline: never a sleep.
    std::string port;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (port.empty()) {
      if (std::chrono::steady_clock::now() > deadline) {
        transcript.note("the server printed no 'listening on HOST:PORT' line within 10 s");
        server.stop(1s);
        return 1;
      }
      for (const auto& line : pump(server_streams, transcript, 100ms)) {
        if (line.rfind(kReadyPrefix, 0) == 0) {
          port = line.substr(line.rfind(':') + 1);
        }
      }
      if (!any_open(server_streams) || server.wait_for(0ms)) {
        pump(server_streams, transcript, 100ms);
        transcript.note("the server ended before it was ready: " + server.wait().to_string());
        return 1;
      }
    }

    std::vector<std::string> client_argv{(dir / "client").string(), "--port", port};
    const auto& extra = options.passthrough.empty() ? lesson.client_args : options.passthrough;
    client_argv.insert(client_argv.end(), extra.begin(), extra.end());
    SpawnOptions client_options;
    client_options.pipe_stdin = true;
    client = Child::spawn(client_argv, client_options);
    std::string input;
    if (options.passthrough.empty()) {
      for (const auto& line : lesson.client_input) {
        input += line + "\n";
      }
    }
    if (!input.empty()) {
      std::string lines;
      for (const auto& line : lesson.client_input) {
        lines += (lines.empty() ? "" : " | ") + line;
      }
      transcript.note("the client's input, one line at a time: " + lines);
    }
    feed(*client, input);

    Stream client_out{"[client]", &client->output()};
    Stream client_err{"[client:err]", &client->errors()};
    std::vector<Stream*> all{&server_out, &server_err, &client_out, &client_err};
    while (client_out.open || client_err.open) {
      pump(all, transcript, 1000ms);
    }
    const ExitStatus client_status = client->wait();
    // Let the server print what the client's last request made it say.
    server.send_signal(SIGTERM);
    const auto stop_deadline = std::chrono::steady_clock::now() + 3s;
    while (any_open(server_streams) && std::chrono::steady_clock::now() < stop_deadline) {
      pump(server_streams, transcript, 100ms);
    }
    const ExitStatus server_status = server.stop(3s);
    transcript.note("client " + client_status.to_string() + "; server stopped with SIGTERM, " +
                    server_status.to_string());
    exit_code = client_status.success() && server_status.success() ? 0 : 1;
  } catch (const StopRequested&) {
    transcript.note("interrupted: stopping the server and the client");
    if (client) {
      client->stop(3s);
    }
    server.stop(3s);
    return 130;
  }
  return exit_code;
}

}  // namespace lab::tool
