#include "lab/testing.hpp"

#include <fcntl.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>
#include <stdexcept>

#include "lab/collect.hpp"
#include "lab/endpoint.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/text.hpp"

namespace lab::testing {

namespace {

constexpr std::string_view kReadyPrefix = "listening on ";

// The programs the current case started, as programs_report() shows them:
// the last kProgramsKept entries, and how many earlier ones were dropped.
constexpr std::size_t kProgramsKept = 8;

struct ProgramList {
  std::mutex mutex;
  std::deque<std::string> entries;
  std::size_t dropped = 0;
};

ProgramList& program_list() {
  static ProgramList list;
  return list;
}

std::string base_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The servers still running, by pid, with the descriptor number of each
// one's stderr pipe: what programs_report_at_deadline() reads when the case
// runs out of time. A ServerProcess adds itself once started and leaves
// before its pipe can be closed (note_how_it_ended), under the mutex, so the
// number always names that pipe while it is listed.
struct LiveServer {
  pid_t pid;
  std::vector<std::string> argv;
  int errors_fd;
};

struct LiveServers {
  std::mutex mutex;
  std::vector<LiveServer> servers;
};

LiveServers& live_servers() {
  static LiveServers live;
  return live;
}

void forget_live_server(pid_t pid) {
  LiveServers& live = live_servers();
  const std::lock_guard lock(live.mutex);
  std::erase_if(live.servers, [pid](const LiveServer& server) { return server.pid == pid; });
}

// What is in the pipe `fd` now, at most `max_bytes`, without waiting. Read
// through a description of its own (opening /proc/self/fd/N opens the pipe
// again, O_NONBLOCK on this one only): the case's thread may be blocked
// reading the same pipe, and its reads must stay blocking. The bound is for a
// program that writes on and on: it never runs dry.
std::string available_now(int fd, std::size_t max_bytes) {
  struct stat about {};
  if (::fstat(fd, &about) != 0 || !S_ISFIFO(about.st_mode)) {
    return "";
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const Fd own{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (!own) {
    return "";
  }
  std::string text;
  try {
    while (text.size() < max_bytes) {
      const auto chunk = read_some(own, std::min<std::size_t>(max_bytes - text.size(), 65536));
      if (!chunk) {
        break;  // the server, and whatever it started, closed it
      }
      text += *chunk;
    }
  } catch (const TimeoutError&) {
    // EAGAIN: nothing more for now
  } catch (const std::system_error&) {
    // the report shows what was read
  }
  return text;
}

}  // namespace

std::string bounded_lines(const std::string& text, std::size_t head, std::size_t tail) {
  constexpr std::size_t kLongestLine = 300;
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > kLongestLine) {
      line = line.substr(0, kLongestLine) + "... (" + std::to_string(line.size() - kLongestLine) +
             " more characters)";
    }
    lines.push_back(std::move(line));
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines.size() > head + tail + 1 && i == head) {
      out += "... (" + std::to_string(lines.size() - head - tail) + " lines left out) ...\n";
      i = lines.size() - tail - 1;
      continue;
    }
    out += lines[i] + "\n";
  }
  return out;
}

void note_program(const std::string& role, const std::vector<std::string>& argv, const ExitStatus& status,
                  const std::string& how_it_ended, const std::string& errors) {
  // "lessons/01_udp/client", not the build folder's whole path.
  const std::string& program = argv.front();
  const auto lessons = program.find("/lessons/");
  std::string entry = "  " + (lessons != std::string::npos ? program.substr(lessons + 1) : base_name(program)) +
                      (role.empty() ? "" : " (" + role + ")") + " " + how_it_ended;
  std::string debug;
  if (status.signal == SIGSEGV || status.signal == SIGBUS || status.signal == SIGFPE || status.signal == SIGILL ||
      status.signal == SIGABRT) {
    // The same program under the debugger shows where it crashed.
    debug = "    debug it: gdb -q -ex run -ex bt --args";
    for (const auto& word : argv) {
      debug += " " + shell_quote(word);
    }
    debug += "\n";
  }
  if (errors.empty()) {
    entry += "; nothing on stderr\n";
  } else {
    // A sanitizer's report is long, and its first lines say where: keep
    // those whole, from the report's start.
    std::string shown = errors;
    std::size_t head = 10;
    for (const char* report : {"WARNING: ThreadSanitizer:", "ERROR: AddressSanitizer:", "ERROR: LeakSanitizer:"}) {
      if (const auto at = errors.find(report); at != std::string::npos) {
        const auto line_start = errors.rfind('\n', at);
        shown = errors.substr(line_start == std::string::npos ? 0 : line_start + 1);
        head = 40;
        break;
      }
    }
    entry += "; stderr:\n";
    std::istringstream lines(bounded_lines(shown, head, 10));
    for (std::string line; std::getline(lines, line);) {
      entry += "    " + line + "\n";
    }
  }
  entry += debug;
  ProgramList& list = program_list();
  const std::lock_guard lock(list.mutex);
  list.entries.push_back(std::move(entry));
  if (list.entries.size() > kProgramsKept) {
    list.entries.pop_front();
    ++list.dropped;
  }
}

void forget_programs() {
  ProgramList& list = program_list();
  const std::lock_guard lock(list.mutex);
  list.entries.clear();
  list.dropped = 0;
}

std::string programs_report_at_deadline() {
  constexpr std::size_t kMostBytes = 1 << 20;
  LiveServers& live = live_servers();
  const std::lock_guard lock(live.mutex);
  for (const auto& server : live.servers) {
    note_program("the server", server.argv, ExitStatus{}, "still running when the case ran out of time",
                 available_now(server.errors_fd, kMostBytes));
  }
  return programs_report();
}

std::string programs_report() {
  ProgramList& list = program_list();
  const std::lock_guard lock(list.mutex);
  if (list.entries.empty()) {
    return "";
  }
  std::string text(kProgramsHeading);
  text += "\n";
  if (list.dropped > 0) {
    text += "  (" + std::to_string(list.dropped) + " earlier programs left out)\n";
  }
  for (const auto& entry : list.entries) {
    text += entry;
  }
  return text;
}

ServerProcess ServerProcess::start(const std::string& program, std::vector<std::string> extra,
                                   std::chrono::milliseconds timeout, const SpawnOptions& options) {
  std::vector<std::string> argv{program, "--host", "127.0.0.1", "--port", "0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ServerProcess server;
  server.argv_ = argv;
  server.child_ = Child::spawn(argv, options);
  if (server.child_.errors()) {
    LiveServers& live = live_servers();
    const std::lock_guard lock(live.mutex);
    live.servers.push_back({server.child_.pid(), argv, server.child_.errors().get()});
  }
  LineReader reader(server.child_.output());
  std::optional<std::string> line;
  try {
    line = reader.next_line(timeout);
  } catch (const TimeoutError&) {
    throw std::runtime_error(program + " printed no ready line within " +
                             std::to_string(timeout.count()) + " ms");
  }
  if (!line || line->substr(0, kReadyPrefix.size()) != kReadyPrefix) {
    const ExitStatus status = server.child_.stop(1s);
    std::string stderr_text;
    try {
      stderr_text = server.error_output(1s);
    } catch (const TimeoutError&) {
      stderr_text = server.stderr_;
    }
    throw std::runtime_error(program + " did not start: expected 'listening on HOST:PORT', got " +
                             (line ? "'" + *line + "'" : "end of output") + "; it " +
                             status.to_string() + "; stderr: " + stderr_text);
  }
  const Endpoint bound = Endpoint::parse(line->substr(kReadyPrefix.size()));
  server.host_ = bound.host;
  server.port_ = bound.port;
  server.stdout_rest_ = reader.take_buffered();
  return server;
}

std::string ServerProcess::rest_of_output(std::chrono::milliseconds timeout) {
  LineReader reader(child_.output());
  return stdout_rest_ + reader.read_rest(timeout);
}

ServerProcess& ServerProcess::operator=(ServerProcess&& other) noexcept {
  if (this != &other) {
    note_how_it_ended();
    child_ = std::move(other.child_);
    argv_ = std::move(other.argv_);
    host_ = std::move(other.host_);
    port_ = other.port_;
    stdout_rest_ = std::move(other.stdout_rest_);
    stderr_ = std::move(other.stderr_);
    stderr_read_ = other.stderr_read_;
  }
  return *this;
}

ServerProcess::~ServerProcess() { note_how_it_ended(); }

void ServerProcess::note_how_it_ended() noexcept {
  if (child_.pid() <= 0) {
    return;  // moved from, or never started
  }
  forget_live_server(child_.pid());
  try {
    std::string how;
    ExitStatus status;
    if (const auto ended = child_.status()) {
      status = *ended;
      how = status.to_string();
    } else {
      child_.send_signal(SIGKILL);
      how = "still running at the end of the case, then killed";
      status = child_.wait();
    }
    if (!stderr_read_ && child_.errors()) {
      // The server has ended, so what it wrote is in the pipe already; a
      // process it started may still hold the pipe open: no long wait.
      try {
        error_output(50ms);
      } catch (const TimeoutError&) {
      }
    }
    note_program("the server", argv_, status, how, stderr_);
  } catch (...) {
    // A destructor must not throw; the report is only a help.
  }
}

std::string ServerProcess::error_output(std::chrono::milliseconds timeout) {
  if (!stderr_read_) {
    LineReader reader(child_.errors());
    try {
      stderr_ += reader.read_rest(timeout);
    } catch (const TimeoutError&) {
      stderr_ += reader.take_buffered();  // kept for the next call, and for the report
      throw;
    }
    stderr_read_ = true;
  }
  return stderr_;
}

std::string ServerProcess::stop_and_describe() {
  const ExitStatus status = stop(1s);
  std::string text = "server " + status.to_string();
  try {
    text += "; stdout: " + rest_of_output(1s);
    text += "; stderr: " + error_output(1s);
  } catch (const TimeoutError&) {
    text += " (output still open)";
  }
  return text;
}

std::string ProgramResult::describe() const {
  std::ostringstream text;
  text << (timed_out ? "timed out and was killed; " : "") << status.to_string() << "\n--- stdout ---\n"
       << out << "\n--- stderr ---\n"
       << err;
  return text.str();
}

ProgramResult run(const std::vector<std::string>& argv, const std::string& input,
                  std::chrono::milliseconds timeout, const SpawnOptions& options) {
  SpawnOptions with_pipes = options;
  with_pipes.pipe_stdin = true;
  with_pipes.capture_stdout = true;
  with_pipes.capture_stderr = true;
  Child child = Child::spawn(argv, with_pipes);
  CollectOptions collect;
  collect.input = input;
  collect.time_limit = timeout;
  CollectedOutput collected = collect_output(child, collect);
  if (collected.timed_out) {
    child.send_signal(SIGKILL);
  }
  ProgramResult result{child.wait(), std::move(collected.out), std::move(collected.err), collected.timed_out};
  note_program("", argv, result.status,
               (result.timed_out ? "timed out after " + std::to_string(timeout.count()) + " ms and was killed; " : "") +
                   result.status.to_string(),
               result.err);
  return result;
}

int open_fd_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count - 1;  // the directory_iterator's own descriptor
}

std::vector<int> child_pids() {
  std::vector<int> pids;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    int pid = 0;
    while (children >> pid) {
      pids.push_back(pid);
    }
  }
  return pids;
}

RefusingPort::RefusingPort() : socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  if (!socket) {
    throw os_error("socket");
  }
  const SocketAddress any = resolve(Endpoint{"127.0.0.1", 0}, SOCK_STREAM).front();
  if (::bind(socket.get(), any.get(), any.length()) != 0) {
    throw os_error("bind 127.0.0.1:0");
  }
  port = SocketAddress::local_of(socket.get()).port();
}

std::pair<Fd, Fd> socket_pair() {
  std::array<int, 2> ends{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
    throw os_error("socketpair");
  }
  return {Fd{ends[0]}, Fd{ends[1]}};
}

void set_buffer_sizes(const Fd& socket, int send_bytes, int receive_bytes) {
  if (::setsockopt(socket.get(), SOL_SOCKET, SO_SNDBUF, &send_bytes, sizeof send_bytes) != 0 ||
      ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVBUF, &receive_bytes, sizeof receive_bytes) != 0) {
    throw os_error("setsockopt SO_SNDBUF/SO_RCVBUF");
  }
}

pid_t this_thread_id() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

Task Task::thread(pid_t tid) { return Task("/proc/self/task/" + std::to_string(tid)); }

Task Task::process(pid_t pid) { return Task("/proc/" + std::to_string(pid)); }

std::vector<Task> Task::threads(const std::vector<pid_t>& tids) {
  std::vector<Task> tasks;
  for (const pid_t tid : tids) {
    tasks.push_back(thread(tid));
  }
  return tasks;
}

std::vector<long> poll_system_calls() {
  std::vector<long> calls{SYS_ppoll};
#ifdef SYS_poll
  calls.push_back(SYS_poll);
#endif
  return calls;
}

bool Task::asleep_in(const std::vector<long>& numbers) const {
  // The state follows the command name, which may hold spaces and ')':
  // "1234 (a name) S 1 ...", so it is found after the last ')'.
  std::ifstream stat_file(proc_dir_ + "/stat");
  std::string stat;
  std::getline(stat_file, stat);
  const auto close_paren = stat.rfind(')');
  const char state = close_paren != std::string::npos && close_paren + 2 < stat.size() ? stat[close_paren + 2] : '?';
  // "202 0x7f..." inside futex(2); "running" (no number) when not in a call.
  std::ifstream syscall_file(proc_dir_ + "/syscall");
  long current = -1;
  syscall_file >> current;
  return state == 'S' && std::find(numbers.begin(), numbers.end(), current) != numbers.end();
}

bool asleep_in(const std::vector<Task>& tasks, const std::vector<long>& numbers, std::chrono::milliseconds limit,
               const std::atomic<bool>* give_up) {
  const auto all_asleep = [&] {
    return std::all_of(tasks.begin(), tasks.end(), [&](const Task& task) { return task.asleep_in(numbers); });
  };
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int seen = 0;
  while (std::chrono::steady_clock::now() < deadline && (give_up == nullptr || !give_up->load())) {
    seen = all_asleep() ? seen + 1 : 0;
    if (seen == 2) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

bool asleep_in(pid_t tid, const std::vector<long>& numbers, std::chrono::milliseconds limit,
               const std::atomic<bool>& give_up) {
  return asleep_in({Task::thread(tid)}, numbers, limit, &give_up);
}

}  // namespace lab::testing
