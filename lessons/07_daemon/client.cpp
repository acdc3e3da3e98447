// Lesson 07 — the daemon's control tool: start it, ask its status, stop it
// through its locked pid file. Subcommands run in the order given:
//
//   build/default/lessons/07_daemon/client start status stop
//   build/default/lessons/07_daemon/client demo      (start, status, a refused second start,
//                                                     stop, then the tied-children demo; uses a
//                                                     temporary pid file and port 0)
//   build/default/lessons/07_daemon/client orphans   (only the tied-children demo)
#include <csignal>
#include <filesystem>
#include <fstream>

#include "daemon.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/line_reader.hpp"
#include "lab/process.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/temp_dir.hpp"
#include "lab/text.hpp"
#include "tied_children.hpp"  // the `orphans` command

namespace {

using namespace std::chrono_literals;

struct Control {
  std::string server;  // the daemon's program, next to this one
  lab::Endpoint endpoint;
  std::string pid_path;
  std::string log_path;
};

// start: runs the daemon's program, which returns once the daemon is ready.
bool start(Control& control) {
  lab::Child starter = lab::Child::spawn(
      {control.server, "--host", control.endpoint.host, "--port", std::to_string(control.endpoint.port),
       "--pid-file", control.pid_path, "--log-file", control.log_path});
  const std::string out = lab::LineReader(starter.output()).next_line(10s).value_or("");
  const std::string err_text = lab::LineReader(starter.errors()).read_rest(2s);
  const std::string err{lab::chomp(err_text)};
  const lab::ExitStatus status = starter.wait();
  if (!status.success() || out.rfind("listening on ", 0) != 0) {
    lab::say("start: refused: {}", err.empty() ? status.to_string() : err);
    return false;
  }
  // "listening on 127.0.0.1:PORT": with --port 0 this is how we learn the port.
  control.endpoint = lab::Endpoint::parse(out.substr(out.find(' ', 10) + 1));
  const auto pid = lab::daemon::locked_by(control.pid_path);
  lab::say("start: daemon pid {} {}", pid ? std::to_string(*pid) : "?", out);
  return true;
}

bool status(const Control& control) {
  const lab::Fd connection = lab::tcp_connect(control.endpoint);
  lab::write_all(connection, "status\n");
  const auto reply = lab::LineReader(connection).next_line(5s);
  lab::say("status: {}", reply.value_or("(no reply)"));
  return reply.has_value();
}

// stop: SIGTERM to the pid in the locked pid file, then wait until it is gone.
bool stop(const Control& control) {
  const auto pid = lab::daemon::locked_by(control.pid_path);
  if (!pid) {
    lab::say("stop: not running (no locked pid file at {})", control.pid_path);
    return false;
  }
  const lab::Fd pidfd = lab::open_pidfd(*pid);
  if (!pidfd || lab::signal_pidfd(pidfd, SIGTERM) != 0) {
    throw lab::os_error("signal pid " + std::to_string(*pid));
  }
  if (!lab::daemon::wait_gone(*pid, 5000ms)) {
    lab::say("stop: pid {} is still running 5 s after SIGTERM", *pid);
    return false;
  }
  lab::say("stop: pid {} has ended; pid file {}", *pid,
           std::filesystem::exists(control.pid_path) ? "left behind" : "removed");
  return true;
}

bool demo(Control control) {
  // The demo's pid and log files, removed at the end.
  const lab::TempDir directory("lab07-demo");
  control.pid_path = (directory.path() / "daemon.pid").string();
  control.log_path = (directory.path() / "daemon.log").string();
  control.endpoint.port = 0;
  lab::say("demo: pid file {}, log {}, any free port", control.pid_path, control.log_path);
  if (!start(control)) {
    return false;
  }
  // Whatever happens next, do not leave the demo's daemon running.
  struct StopAtEnd {
    const Control& control;
    ~StopAtEnd() {
      if (lab::daemon::locked_by(control.pid_path)) {
        try {
          stop(control);
        } catch (const std::exception& error) {
          lab::warn("{}", error.what());
        }
      }
    }
  } stop_at_end{control};
  bool ok = status(control) && status(control);
  lab::say("demo: a second start must be refused:");
  Control again = control;
  ok = !start(again) && ok;
  ok = stop(control) && ok;
  std::ifstream log(control.log_path);
  for (std::string line; std::getline(log, line);) {
    lab::say("log: {}", line);
  }
  return lab::daemon::show_tied_children() && ok;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(7, "controls the lesson 07 daemon: start, status, stop");
  spec.positionals = "COMMAND...";
  spec.details =
      "Commands, run in order: start, status, stop, demo (all of them with a temporary\n"
      "pid file and port 0, then 'orphans'), orphans (children that die with their parent).\n";
  spec.options.push_back({"pid-file", "PATH", "the daemon's pid file", "/tmp/lab07_daemon.pid"});
  spec.options.push_back({"log-file", "PATH", "the daemon's log", "/tmp/lab07_daemon.log"});
  return lab::run_program(argc, argv, spec, [&argv](const lab::Args& args) {
    if (args.positionals().empty()) {
      throw lab::UsageError("say what to do: start, status, stop, demo or orphans");
    }
    Control control{
        (std::filesystem::path(argv[0]).parent_path() / "server").string(), args.endpoint(),
        std::filesystem::absolute(args.get("pid-file")).string(),
        std::filesystem::absolute(args.get("log-file")).string()};
    bool ok = true;
    for (const auto& command : args.positionals()) {
      if (command == "start") {
        ok = start(control) && ok;
      } else if (command == "status") {
        ok = status(control) && ok;
      } else if (command == "stop") {
        ok = stop(control) && ok;
      } else if (command == "demo") {
        ok = demo(control) && ok;
      } else if (command == "orphans") {
        ok = lab::daemon::show_tied_children() && ok;
      } else {
        throw lab::UsageError("unknown command '" + command + "'");
      }
    }
    return ok ? 0 : 1;
  });
}
