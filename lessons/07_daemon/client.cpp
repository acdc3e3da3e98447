// Lesson 07 — the daemon's control tool, and a demonstration of children
// that die with their parent. Subcommands run in the order given:
//
//   build/default/lessons/07_daemon/client start status stop
//   build/default/lessons/07_daemon/client demo      (start, status, a refused second start,
//                                                     stop, then the tied-children demo; uses a
//                                                     temporary pid file and port 0)
//   build/default/lessons/07_daemon/client orphans   (only the tied-children demo)
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"

namespace {

using namespace std::chrono_literals;

struct Control {
  std::string server;  // the daemon's program, next to this one
  lab::Endpoint endpoint;
  std::string pid_path;
  std::string log_path;
};

// Waits up to `timeout` for process `pid` (not necessarily our child) to end.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  // A pidfd names this very process, so a recycled pid cannot fool us.
  const lab::Fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  if (!pidfd) {
    return errno == ESRCH;  // already gone
  }
  pollfd entry{pidfd.get(), POLLIN, 0};
  int ready = -1;
  do {
    ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

// start: runs the daemon's program, which returns once the daemon is ready.
bool start(Control& control) {
  lab::Child starter = lab::Child::spawn(
      {control.server, "--host", control.endpoint.host, "--port", std::to_string(control.endpoint.port),
       "--pid-file", control.pid_path, "--log-file", control.log_path});
  const std::string out_text = lab::LineReader(starter.output()).read_rest(10s);
  const std::string err_text = lab::LineReader(starter.errors()).read_rest(2s);
  const std::string out{lab::chomp(out_text)};
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
  const lab::Fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0))};
  if (!pidfd || ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0) != 0) {
    throw lab::os_error("signal pid " + std::to_string(*pid));
  }
  if (!wait_gone(*pid, 5000ms)) {
    lab::say("stop: pid {} is still running 5 s after SIGTERM", *pid);
    return false;
  }
  lab::say("stop: pid {} has ended; pid file {}", *pid,
           std::filesystem::exists(control.pid_path) ? "left behind" : "removed");
  return true;
}

// Python's Process(daemon=True), done with PR_SET_PDEATHSIG: a middle
// process starts a tied child and an ordinary one, then ends.
bool orphans() {
  // We become a "subreaper": orphans among our descendants are handed to us
  // (not to pid 1), so we can watch them and reap them.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    throw lab::os_error("prctl PR_SET_CHILD_SUBREAPER");
  }
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) {
    throw lab::os_error("pipe2");
  }
  lab::Fd read_end{ends[0]};
  lab::Fd write_end{ends[1]};
  std::fflush(stdout);
  const pid_t middle = ::fork();
  if (middle < 0) {
    throw lab::os_error("fork");
  }
  if (middle == 0) {
    auto wait_for_ever = [] {
      for (;;) {
        ::pause();
      }
      return 0;
    };
    std::array<pid_t, 2> children{};
    try {
      children[0] = lab::daemon::fork_tied_to_parent(wait_for_ever, SIGKILL);
    } catch (const std::exception& error) {
      lab::warn("{}", error.what());
      ::_exit(3);
    }
    children[1] = ::fork();
    if (children[1] == 0) {
      wait_for_ever();
    }
    [[maybe_unused]] const ssize_t sent = ::write(write_end.get(), children.data(), sizeof children);
    ::_exit(0);  // the parent ends; its children stay behind
  }
  write_end.reset();
  std::array<pid_t, 2> children{};
  const auto got = lab::read_exact(read_end, sizeof children);
  int middle_status = 0;
  while (::waitpid(middle, &middle_status, 0) < 0 && errno == EINTR) {
  }
  if (!got) {
    lab::say("orphans: the middle process {}", lab::ExitStatus::from_wait_status(middle_status).to_string());
    return false;
  }
  std::memcpy(children.data(), got->data(), sizeof children);
  const auto [tied, untied] = children;
  lab::say("orphans: parent {} started tied child {} and ordinary child {}, then exited", middle, tied, untied);

  const bool tied_gone = wait_gone(tied, 1000ms);
  int tied_status = 0;
  if (tied_gone) {
    ::waitpid(tied, &tied_status, 0);  // ours to reap: we are the subreaper
    lab::say("orphans: tied child {} {} when its parent ended",
             tied, lab::ExitStatus::from_wait_status(tied_status).to_string());
  } else {
    lab::say("orphans: tied child {} is still running 1 s after its parent ended", tied);
    ::kill(tied, SIGKILL);
    ::waitpid(tied, nullptr, 0);
  }
  std::ifstream stat("/proc/" + std::to_string(untied) + "/stat");
  std::string text;
  std::getline(stat, text);
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  char state = '?';
  pid_t adopted_by = 0;
  fields >> state >> adopted_by;
  lab::say("orphans: ordinary child {} is still running (state {}), an orphan adopted by {} (us: {})",
           untied, state, adopted_by, ::getpid());
  ::kill(untied, SIGKILL);
  int untied_status = 0;
  ::waitpid(untied, &untied_status, 0);
  lab::say("orphans: so we end it ourselves: {}", lab::ExitStatus::from_wait_status(untied_status).to_string());
  return tied_gone;
}

// A temporary directory for the demo's pid and log files, removed at the end.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lab07-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw lab::os_error("mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

bool demo(Control control) {
  const TemporaryDirectory directory;
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
  return orphans() && ok;
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
        ok = orphans() && ok;
      } else {
        throw lab::UsageError("unknown command '" + command + "'");
      }
    }
    return ok ? 0 : 1;
  });
}
