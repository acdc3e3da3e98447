#include "lab/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "lab/error.hpp"
#include "lab/io.hpp"

extern char** environ;

namespace lab {

// Through syscall(2): glibc 2.36's <sys/pidfd.h> declares these without C
// linkage, so C++ cannot link them.
Fd open_pidfd(pid_t pid) { return Fd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))}; }

int signal_pidfd(const Fd& pidfd, int signal_number) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd.get(), signal_number, nullptr, 0));
}

bool pidfd_ended_within(const Fd& pidfd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd entry{pidfd.get(), POLLIN, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (ready >= 0) {
      return ready > 0;
    }
    if (errno != EINTR) {
      throw os_error("poll pidfd");
    }
  }
}

namespace {

struct Pipe {
  Fd read_end;
  Fd write_end;
};

Pipe make_pipe() {
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) {
    throw os_error("pipe2");
  }
  return {Fd{ends[0]}, Fd{ends[1]}};
}

// In the child: hands errno to the parent through the report pipe and ends.
[[noreturn]] void report_and_exit(int report) {
  const int error = errno;
  [[maybe_unused]] const ssize_t written = ::write(report, &error, sizeof error);
  ::_exit(127);
}

// The file execve(2) will run: `name` itself if it holds a '/', else the
// first executable regular file of that name in $PATH. Done before fork,
// because searching allocates; nullopt if there is none.
std::optional<std::string> resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string_view directories = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (;;) {
    const auto colon = directories.find(':');
    const std::string_view directory = directories.substr(0, colon);
    std::string candidate = (directory.empty() ? std::string(".") : std::string(directory)) + "/" + name;
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    directories.remove_prefix(colon + 1);
  }
}

// Everything between fork and exec must be async-signal-safe (the parent may
// have other threads, whose locks the child inherits held): only system
// calls here, no allocation, execve and not execvpe. On failure it reports
// errno through `report`.
[[noreturn]] void exec_child(const char* program, char* const* argv, char* const* envp,
                             const SpawnOptions& options, pid_t parent,
                             int stdin_fd, int stdout_fd, int stderr_fd, int report) {
  // Signals are still blocked (see spawn). Every handler of the parent goes
  // back to the default before they are unblocked: a handler run here would
  // act on the parent's behalf, e.g. request the stop the two still share.
  struct sigaction defaults {};
  defaults.sa_handler = SIG_DFL;
  sigemptyset(&defaults.sa_mask);
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    struct sigaction current {};
    if (signal_number != SIGKILL && signal_number != SIGSTOP &&
        ::sigaction(signal_number, nullptr, &current) == 0 &&
        (current.sa_handler != SIG_DFL || signal_number == SIGPIPE)) {
      // SIGPIPE too, although ignored: the program starts with the defaults.
      ::sigaction(signal_number, &defaults, nullptr);
    }
  }
  for (int fd : options.inherit) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
      report_and_exit(report);
    }
  }
  for (const auto& [resource, value] : options.limits) {
    const rlimit limit{value, value};
    if (::setrlimit(resource, &limit) != 0) {
      report_and_exit(report);
    }
  }
  // Groups first: once the user id is dropped, changing them is no longer
  // allowed. Before PR_SET_PDEATHSIG, which a change of user clears.
  if (options.user && (::setgroups(0, nullptr) != 0 || ::setgid(options.user->second) != 0 ||
                       ::setuid(options.user->first) != 0)) {
    report_and_exit(report);
  }
  if (options.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {  // the parent died before prctl: nobody to die with
      ::_exit(127);
    }
  }
  if (options.new_process_group) {
    ::setpgid(0, 0);
  }
  // The signal mask survives exec: start the program with nothing blocked.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const std::array<int, 3> sources{stdin_fd, stdout_fd, stderr_fd};
  for (int target = 0; target < 3; ++target) {
    const int source = sources[static_cast<std::size_t>(target)];
    if (source < 0) {
      continue;
    }
    if (source == target) {
      // Already in place (we were started with that descriptor closed), but
      // still close-on-exec: clear the flag, or the program loses it.
      const int flags = ::fcntl(target, F_GETFD);
      if (flags < 0 || ::fcntl(target, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
        report_and_exit(report);
      }
    } else if (::dup2(source, target) < 0) {  // the copy is not close-on-exec
      report_and_exit(report);
    }
  }
  if (options.working_directory.empty() || ::chdir(options.working_directory.c_str()) == 0) {
    ::execve(program, argv, envp);
  }
  report_and_exit(report);
}

}  // namespace

ExitStatus ExitStatus::from_wait_status(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) {
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.code = 128 + result.signal;  // what a shell would show as $?
  }
  return result;
}

std::string ExitStatus::to_string() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    const char* description = sigdescr_np(signal);
    return "killed by SIG" + std::string(name != nullptr ? name : std::to_string(signal)) +
           (description != nullptr ? " (" + std::string(description) + ")" : "");
  }
  return "exited with status " + std::to_string(code);
}

Child Child::spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) {
    throw std::invalid_argument("Child::spawn: empty argv");
  }
  const std::optional<std::string> program = resolve_program(argv[0]);
  if (!program) {
    throw os_error(ENOENT, "exec " + argv[0]);
  }
  // Build argv and the environment before fork: no allocation after it.
  std::vector<char*> raw_argv;
  for (const auto& word : argv) {
    raw_argv.push_back(const_cast<char*>(word.c_str()));
  }
  raw_argv.push_back(nullptr);
  std::map<std::string, std::string> variables;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text = *entry;
    const auto equals = text.find('=');
    if (equals != std::string_view::npos) {
      variables[std::string(text.substr(0, equals))] = std::string(text.substr(equals + 1));
    }
  }
  for (const auto& [name, value] : options.environment) {
    variables[name] = value;
  }
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : variables) {
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> raw_env;
  for (auto& text : env_strings) {
    raw_env.push_back(text.data());
  }
  raw_env.push_back(nullptr);

  Child child;
  Pipe in;
  Pipe out;
  Pipe err;
  Fd dev_null;
  if (options.pipe_stdin) {
    in = make_pipe();
  } else {
    dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null) {
      throw os_error("open /dev/null");
    }
  }
  if (options.capture_stdout || options.merge_stderr) {
    out = make_pipe();
  }
  if (options.capture_stderr && !options.merge_stderr) {
    err = make_pipe();
  }
  Pipe report = make_pipe();  // carries errno if exec fails; closes by itself (CLOEXEC) if it works

  const int stdin_fd = options.pipe_stdin ? in.read_end.get() : dev_null.get();
  const int stdout_fd = out.write_end ? out.write_end.get() : -1;
  const int stderr_fd = options.merge_stderr ? out.write_end.get()
                                             : (err.write_end ? err.write_end.get() : -1);
  const pid_t parent = ::getpid();
  // Every signal blocked across fork: until the child has reset the
  // handlers it inherited, a signal must wait rather than run one of them.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) {
    exec_child(program->c_str(), raw_argv.data(), raw_env.data(), options, parent,
               stdin_fd, stdout_fd, stderr_fd, report.write_end.get());
  }
  const int fork_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    throw os_error(fork_error, "fork");
  }
  child.pid_ = pid;
  child.pidfd_ = open_pidfd(pid);
  // The parent keeps only its ends: the child's ends must close here, or our
  // reads would never see end of stream.
  report.write_end.reset();
  child.input_ = std::move(in.write_end);
  child.output_ = std::move(out.read_end);
  child.errors_ = std::move(err.read_end);

  int exec_error = 0;
  ssize_t got = 0;
  do {
    got = ::read(report.read_end.get(), &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    child.wait();
    throw os_error(exec_error, "exec " + argv[0]);
  }
  if (!child.pidfd_) {
    throw os_error("pidfd_open");
  }
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      input_(std::move(other.input_)),
      output_(std::move(other.output_)),
      errors_(std::move(other.errors_)),
      status_(std::exchange(other.status_, std::nullopt)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    input_ = std::move(other.input_);
    output_ = std::move(other.output_);
    errors_ = std::move(other.errors_);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Child::~Child() { kill_and_reap(); }

void Child::kill_and_reap() noexcept {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int wait_status = 0;
    while (::waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    status_ = ExitStatus::from_wait_status(wait_status);
  }
}

void Child::reap_now(int wait_status) { status_ = ExitStatus::from_wait_status(wait_status); }

void Child::send_signal(int signal_number) {
  // Once reaped, the pid may belong to another process: never signal it.
  if (pid_ > 0 && !status_) {
    if (signal_pidfd(pidfd_, signal_number) != 0 && errno != ESRCH) {
      throw os_error("pidfd_send_signal");
    }
  }
}

std::optional<ExitStatus> Child::wait_for(std::chrono::milliseconds timeout) {
  if (status_ || pid_ <= 0) {
    return status_;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int wait_status = 0;
    const pid_t got = ::waitpid(pid_, &wait_status, WNOHANG);
    if (got == pid_) {
      reap_now(wait_status);
      return status_;
    }
    if (got < 0 && errno != EINTR) {
      throw os_error("waitpid");
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    // The pidfd becomes readable when the process ends.
    pollfd entry{pidfd_.get(), POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      throw os_error("poll pidfd");
    }
  }
}

ExitStatus Child::wait() {
  if (status_ || pid_ <= 0) {
    return status_.value_or(ExitStatus{});
  }
  int wait_status = 0;
  while (::waitpid(pid_, &wait_status, 0) < 0) {
    if (errno != EINTR) {
      throw os_error("waitpid");
    }
  }
  reap_now(wait_status);
  return *status_;
}

ExitStatus Child::stop(std::chrono::milliseconds grace) {
  send_signal(SIGTERM);
  if (auto status = wait_for(grace)) {
    return *status;
  }
  send_signal(SIGKILL);
  return wait();
}

}  // namespace lab
