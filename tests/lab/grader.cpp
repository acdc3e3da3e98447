#include "grader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/core.h>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/sha256.hpp"
#include "lab/stop.hpp"
#include "lab/temp_dir.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"
#include "screen.hpp"
#include "shell.hpp"
#include "supervise.hpp"

namespace lab::tool {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Job {
  const Lesson* lesson = nullptr;
  fs::path executable;
  std::string name;
  bool extra = false;
  bool thread_sanitizer = false;  // the ThreadSanitizer build of the case
  bool sanitized = false;         // built with any sanitizer: no address-space limit
};

// True if `executable` was built with a sanitizer: g++ links its runtime as
// a shared library, whose name stands in the dynamic section near the start
// of the file. (A sanitizer reserves terabytes of address space, so such a
// program cannot run under an address-space limit.)
bool built_with_sanitizer(const fs::path& executable) {
  std::ifstream in(executable, std::ios::binary);
  std::string head(4u << 20, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  for (const char* runtime : {"libasan.so", "libtsan.so", "libubsan.so", "__asan_init", "__tsan_init"}) {
    if (head.find(runtime) != std::string::npos) {
      return true;
    }
  }
  return false;
}

constexpr std::string_view kTsanSuffix = " (under ThreadSanitizer)";
constexpr std::string_view kTsanOptions = "halt_on_error=1:second_deadlock_stack=1";

// A function's name as a crash or race report shows it: a long signature
// loses its parameters ("f(...)"), not the end of a word.
std::string short_function(const std::string& function) {
  constexpr std::size_t kLongest = 120;
  if (function.size() <= kLongest) {
    return function;
  }
  const auto parameters = function.find('(');
  if (parameters != std::string::npos && parameters + 5 <= kLongest) {
    return function.substr(0, parameters) + "(...)";
  }
  return function.substr(0, kLongest - 3) + "...";
}

std::string exercise_of(const std::string& case_name) { return case_name.substr(0, case_name.find(' ')); }

// doctest's --test-case takes a filter list: ',' separates filters and
// '\,' is a literal comma.
std::string filter_for(const std::string& case_name) {
  std::string filter;
  for (char c : case_name) {
    if (c == ',') {
      filter += '\\';
    }
    filter += c;
  }
  return filter;
}

fs::path test_executable(const GradeOptions& options, const Lesson& lesson, const std::string& variant) {
  return options.build_dir / "lessons" / lesson.dir / ("test" + lesson.number + "_" + variant);
}

// The first failure doctest reported: the "ERROR:" line and the indented
// lines under it (values, logged context), the source path shortened.
std::string first_failure(const std::string& output) {
  std::istringstream lines(output);
  std::string line;
  std::string message;
  int taken = 0;
  bool in_block = false;
  while (std::getline(lines, line)) {
    if (!in_block) {
      const auto error = line.find(" ERROR: ");
      if (error == std::string::npos) {
        continue;
      }
      in_block = true;
      // "/long/path/tests/01_udp/test_udp.cpp:42: ERROR: ..." -> "test_udp.cpp:42: ERROR: ..."
      const auto slash = line.rfind('/', error);
      message = slash == std::string::npos ? line : line.substr(slash + 1);
      ++taken;
      continue;
    }
    if (line.empty() || line.rfind("====", 0) == 0 || taken >= 8) {
      break;
    }
    message += "\n" + (line.size() > 400 ? line.substr(0, 400) + "..." : line);
    ++taken;
  }
  if (!message.empty()) {
    return message;
  }
  // No doctest report (a sanitizer, an abort): the last lines said why.
  std::vector<std::string> tail;
  std::istringstream again(output);
  while (std::getline(again, line)) {
    if (!line.empty()) {
      tail.push_back(line);
    }
  }
  std::string text;
  for (std::size_t i = tail.size() > 5 ? tail.size() - 5 : 0; i < tail.size(); ++i) {
    text += (text.empty() ? "" : "\n") + tail[i];
  }
  return text.empty() ? "failed without a message" : text;
}

// What the programs a failed case started wrote on stderr: the report the
// tests' main() prints after the case (lab::testing::programs_report in
// tests/support), found by its heading; "" if there is none. Bounded again
// here: the case's output is the student's program's to fill.
std::string programs_report_in(const std::string& output) {
  const auto start = output.rfind(lab::testing::kProgramsHeading);
  if (start == std::string::npos) {
    return "";
  }
  constexpr int kMostLines = 80;
  std::istringstream lines(output.substr(start));
  std::string line;
  std::string text;
  int taken = 0;
  while (std::getline(lines, line)) {
    if (taken > 0 && line.rfind("  ", 0) != 0) {
      break;  // every line after the heading is indented
    }
    if (taken == kMostLines) {
      text += "\n  ... (the rest left out)";
      break;
    }
    text += (taken == 0 ? "" : "\n") + (line.size() > 400 ? line.substr(0, 400) + "..." : line);
    ++taken;
  }
  return text;
}

// Who runs the cases, and under which limits.
struct Sandbox {
  std::optional<std::pair<uid_t, gid_t>> user;  // set when the grader is root
  bool sanitized = false;                       // an ASan/TSan build: no address-space limit
  long own_tasks = 0;                           // the grading user's processes and threads before grading
  long jobs = 1;                                // cases at once: they share the user's RLIMIT_NPROC
  fs::path lab_tool;                            // this program, for `lab _case`
};

// The numeric user and group of `name`, or a clear error.
std::pair<uid_t, gid_t> lookup_user(const std::string& name) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    throw std::runtime_error("there is no user '" + name +
                             "' to run the cases as: create one (useradd --system --no-create-home " + name +
                             ") or name another with --user");
  }
  if (found->pw_uid == 0) {
    throw std::runtime_error("--user " + name + " is root: the cases must run as a user without privileges");
  }
  return {found->pw_uid, found->pw_gid};
}

// How many tasks (processes and threads: what RLIMIT_NPROC counts) `uid`
// has now. A desktop user's browser alone can have hundreds of threads.
long tasks_of(uid_t uid) {
  long count = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    struct stat info {};
    const std::string name = entry.path().filename().string();
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) == 0 ||
        ::stat(entry.path().c_str(), &info) != 0 || info.st_uid != uid) {
      continue;
    }
    std::error_code gone;  // the process may end while we count
    for (auto task = fs::directory_iterator(entry.path() / "task", gone); !gone && task != fs::directory_iterator();
         task.increment(gone)) {
      ++count;
    }
  }
  return count;
}

Sandbox prepare_sandbox(const GradeOptions& options) {
  Sandbox sandbox;
  sandbox.jobs = std::max(1L, static_cast<long>(options.jobs));
  std::error_code error;
  sandbox.lab_tool = fs::read_symlink("/proc/self/exe", error);
  std::ifstream cache(options.build_dir / "CMakeCache.txt");
  std::string line;
  while (std::getline(cache, line)) {
    if (line.rfind("LAB_SANITIZER:", 0) == 0 && line.find('=') + 1 < line.size()) {
      sandbox.sanitized = true;
    }
  }
  if (::geteuid() == 0) {
    sandbox.user = lookup_user(options.user);
    sandbox.own_tasks = tasks_of(sandbox.user->first);
    if (!options.quiet) {
      fmt::print(stderr, "grading as root: every case runs as user {} (uid {})\n", options.user,
                 sandbox.user->first);
    }
    // The hidden tests' sources are the grader's alone (and the programs
    // built from them may be run, not read: see grade()).
    if (!options.extra_dir.empty()) {
      fs::permissions(options.extra_dir, fs::perms::owner_all, fs::perm_options::replace);
    }
  } else {
    sandbox.own_tasks = tasks_of(::geteuid());
    if (!options.quiet) {
      fmt::print(stderr,
                 "grading as yourself: the cases run with your account's rights (an instructor grades as "
                 "root, which runs them as an unprivileged user: docs/instructors.md)\n");
    }
  }
  return sandbox;
}

std::vector<std::pair<int, rlim_t>> limits_for(const Lesson& lesson, int timeout, bool sanitized,
                                               const Sandbox& sandbox) {
  const Limits& limits = lesson.limits;
  constexpr rlim_t kMiB = 1024 * 1024;
  std::vector<std::pair<int, rlim_t>> result{
      {RLIMIT_CPU, static_cast<rlim_t>(limits.cpu_seconds > 0 ? limits.cpu_seconds : 4L * timeout)},
      {RLIMIT_FSIZE, static_cast<rlim_t>(limits.file_mb) * kMiB},
      {RLIMIT_NOFILE, static_cast<rlim_t>(limits.open_files)},
      // Per user, not per case: every case running at once gets its share.
      {RLIMIT_NPROC, static_cast<rlim_t>(sandbox.own_tasks + limits.processes * sandbox.jobs)},
      {RLIMIT_CORE, 0},
  };
  if (!sanitized) {
    result.emplace_back(RLIMIT_AS, static_cast<rlim_t>(limits.memory_mb) * kMiB);
  }
  return result;
}


// What the case's test program reported on its verdict socket (see
// tests/support/main.cpp): "" if it passed, else why not.
std::string check_verdict(const Fd& socket, const std::string& secret, const std::string& name, bool& reported) {
  std::string text;
  char chunk[4096];
  for (;;) {
    const ssize_t got = ::recv(socket.get(), chunk, sizeof chunk, MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0 || text.size() > (1u << 16)) {
      break;
    }
    text.append(chunk, static_cast<std::size_t>(got));
  }
  const std::string begin = "begin " + secret + "\n";
  const std::string end = "end " + secret + "\n";
  const auto first = text.find(begin);
  reported = first != std::string::npos;
  if (!reported) {
    return "no result";
  }
  if (text.find(begin, first + 1) != std::string::npos) {
    return "the result was reported twice: did a forked child return instead of calling _exit()?";
  }
  const auto last = text.find(end, first);
  if (last == std::string::npos) {
    return "the result was cut short";
  }
  const std::string body = text.substr(first + begin.size(), last - first - begin.size());
  if (body == "passed " + name + "\n") {
    return "";
  }
  if (body == "failed " + name + "\n") {
    return "failed";
  }
  return body.empty() ? "no case of that name ran" : "a different set of cases ran: " + body.substr(0, 200);
}

// Where a crashed case was: the frames its test program wrote
// ("lab-crash-frames: 0x..", tests/support/main.cpp) as "function at
// file:line" through addr2line(1), the lesson's own files first; "" if none.
std::string crash_location(const std::string& output, const fs::path& executable) {
  const auto start = output.rfind("lab-crash-frames:");
  if (start == std::string::npos) {
    return "";
  }
  const auto end = output.find('\n', start);
  std::vector<std::string> argv{"addr2line", "-f", "-C", "-e", executable.string()};
  for (const auto& word : split_words(output.substr(start + 17, end == std::string::npos ? end : end - start - 17))) {
    argv.push_back(word);
  }
  Result symbols;
  try {
    symbols = run_command(argv, std::chrono::seconds(10));
  } catch (const std::exception&) {
    return "";  // no addr2line: the signal alone
  }
  std::istringstream lines(symbols.output);
  std::string function;
  std::string place;
  std::vector<std::string> ours;
  std::vector<std::string> others;
  while (std::getline(lines, function) && std::getline(lines, place)) {
    if (place.rfind("??", 0) == 0 || function.rfind("??", 0) == 0) {
      continue;
    }
    if (const auto cut = place.find(" (discriminator"); cut != std::string::npos) {
      place.erase(cut);
    }
    const auto lessons = place.find("/lessons/");
    const std::string shown = short_function(function) + " at " +
                              (lessons != std::string::npos ? place.substr(lessons + 1) : fs::path(place).filename().string());
    (lessons != std::string::npos ? ours : others).push_back(shown);
  }
  if (ours.empty() && others.empty()) {
    return "";
  }
  std::string text = ours.empty() ? "in " + others.front() : "in " + ours.front();
  for (std::size_t i = 1; i < ours.size() && i < 4; ++i) {
    text += "\n   called from " + ours[i];
  }
  return text;
}

// A ThreadSanitizer report, shortened to its first warning: the WARNING
// line, then each access with the frames in the lesson's own files first
// (where the race is), then the innermost other frame (what was touched).
// Paths from lessons/ on. ThreadSanitizer's own symbolizer often names a
// function but not its file ("<null>"): such frames are looked up again with
// addr2line(1) in the program they name, if it sits beside `executable`.
std::string sanitizer_report(const std::string& output, const fs::path& executable) {
  const auto start = output.find("WARNING: ThreadSanitizer:");
  if (start == std::string::npos) {
    return "";
  }
  const auto line_start = output.rfind('\n', start);
  // The report may be indented (a program's stderr in the programs' report).
  const std::size_t base = start - (line_start == std::string::npos ? 0 : line_start + 1);
  struct Frame {
    std::string number;    // "#2"
    std::string function;
    std::string place;     // "/path/file.cpp:12", or "" if unknown
    std::string module;    // "test10_grade"
    std::string offset;    // "0x9e9c2"
  };
  struct Access {
    std::string header;  // "Read of size 8 at 0x... by main thread:"
    std::vector<Frame> frames;
  };
  std::string warning;
  std::vector<Access> accesses;
  std::istringstream lines(output.substr(start));
  std::string line;
  while (std::getline(lines, line)) {
    if (warning.empty()) {
      warning = line;
      continue;
    }
    const std::string text = line.size() > base ? line.substr(base) : "";
    if (line.find("SUMMARY: ThreadSanitizer") != std::string::npos || text.rfind("==================", 0) == 0 ||
        text.rfind("  Location", 0) == 0 || text.rfind("  Mutex", 0) == 0 || text.rfind("  Thread", 0) == 0) {
      break;  // past the accesses: where things were created, not where the race is
    }
    const auto first = text.find_first_not_of(' ');
    if (first == 2) {
      accesses.push_back({text.substr(2), {}});
    } else if (first != std::string::npos && text[first] == '#' && !accesses.empty()) {
      // "    #2 function /path/file.cpp:12 (module+0x9e9c2)"; a function name may hold spaces.
      Frame frame;
      std::string rest = text.substr(first);
      frame.number = rest.substr(0, rest.find(' '));
      rest = rest.substr(std::min(rest.size(), frame.number.size() + 1));
      if (const auto open = rest.rfind(" ("); open != std::string::npos && rest.back() == ')') {
        const std::string where = rest.substr(open + 2, rest.size() - open - 3);
        if (const auto plus = where.rfind("+0x"); plus != std::string::npos) {
          frame.module = where.substr(0, plus);
          frame.offset = where.substr(plus + 1);
        }
        rest.erase(open);
      }
      const auto space = rest.rfind(' ');
      frame.function = space == std::string::npos ? rest : rest.substr(0, space);
      frame.place = space == std::string::npos ? "" : rest.substr(space + 1);
      if (frame.place == "<null>") {
        frame.place.clear();
      }
      accesses.back().frames.push_back(frame);
    }
  }
  // One addr2line per program for the frames without a file.
  std::map<std::string, std::vector<Frame*>> unplaced;
  for (auto& access : accesses) {
    for (auto& frame : access.frames) {
      if (frame.place.empty() && !frame.offset.empty() && !frame.module.empty() &&
          frame.module.find('/') == std::string::npos) {
        unplaced[frame.module].push_back(&frame);
      }
    }
  }
  for (auto& [module, frames] : unplaced) {
    const fs::path program = executable.parent_path() / module;
    if (!fs::exists(program)) {
      continue;
    }
    std::vector<std::string> argv{"addr2line", "-e", program.string()};
    for (const Frame* frame : frames) {
      argv.push_back(frame->offset);
    }
    try {
      const Result places = run_command(argv, std::chrono::seconds(10));
      std::istringstream found(places.output);
      for (Frame* frame : frames) {
        std::string place;
        if (!std::getline(found, place)) {
          break;
        }
        if (const auto cut = place.find(" (discriminator"); cut != std::string::npos) {
          place.erase(cut);
        }
        if (place.rfind("??", 0) != 0) {
          frame->place = place;
        }
      }
    } catch (const std::exception&) {
      // no addr2line: the frames keep ThreadSanitizer's names
    }
  }
  auto shown = [](const Frame& frame) {
    const auto lessons = frame.place.find("lessons/");
    const std::string place = lessons != std::string::npos ? frame.place.substr(lessons)
                              : frame.place.empty()        ? "(no file known)"
                                                           : fs::path(frame.place).filename().string();
    const std::string function = short_function(frame.function);
    return "    " + frame.number + " " + function + " " + place;
  };
  std::string text = warning.substr(std::min(base, warning.size()));
  for (const auto& access : accesses) {
    text += "\n  " + access.header;
    int ours = 0;
    for (const auto& frame : access.frames) {
      if (frame.place.find("lessons/") != std::string::npos && ours < 4) {
        text += "\n" + shown(frame);
        ++ours;
      }
    }
    // What was touched (the innermost frame), or, if none of the frames is
    // the lesson's, the first two.
    int others = 0;
    for (const auto& frame : access.frames) {
      if (frame.place.find("lessons/") == std::string::npos && others < (ours > 0 ? 1 : 2)) {
        text += "\n" + shown(frame);
        ++others;
      }
    }
  }
  return text;
}

void run_case(const Job& job, const GradeOptions& options, const Sandbox& sandbox, CaseResult& result) {
  // ThreadSanitizer slows a program down several times.
  const int timeout = options.timeout_seconds.value_or(job.lesson->timeout_seconds) * (job.thread_sanitizer ? 3 : 1);
  result.lesson_dir = job.lesson->dir;
  result.exercise = exercise_of(job.name);
  result.name = job.name + std::string(job.thread_sanitizer ? kTsanSuffix : "");
  result.extra = job.extra;
  result.rerun = std::string(job.thread_sanitizer ? "TSAN_OPTIONS=" + std::string(kTsanOptions) + " " : "") +
                 shell_quote(display_path(job.executable)) + " " + shell_quote("--test-case=" + filter_for(job.name));
  const auto started = Clock::now();

  std::array<int, 2> ends{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
    throw os_error("socketpair");
  }
  Fd verdict{ends[0]};
  Fd theirs{ends[1]};
  const std::string secret = random_hex(16);  // the secret of this one run
  write_all(verdict, secret);  // 32 bytes: far less than a socket buffer holds
  // Nothing more comes from us: a second reader (a program the case execs)
  // finds the end of the stream, not a wait.
  ::shutdown(verdict.get(), SHUT_WR);

  // A folder of its own for the case's temporary files (TMPDIR), the grading
  // user's, removed when the case ends: what one case leaves there, no later
  // case (nor a later submission) can read.
  const lab::TempDir scratch_dir("lab-case");
  const fs::path& scratch = scratch_dir.path();
  if (sandbox.user && ::chown(scratch.c_str(), sandbox.user->first, sandbox.user->second) != 0) {
    throw os_error("chown " + scratch.string());
  }

  SpawnOptions spawn;
  spawn.merge_stderr = true;
  spawn.new_process_group = true;
  spawn.working_directory = job.executable.parent_path().string();
  spawn.environment = {{"LAB_VERDICT_FD", std::to_string(theirs.get())}, {"TMPDIR", scratch.string()}};
  spawn.inherit = {theirs.get()};
  spawn.limits = limits_for(*job.lesson, timeout, sandbox.sanitized || job.sanitized, sandbox);
  if (job.thread_sanitizer) {
    spawn.environment.emplace_back("TSAN_OPTIONS", std::string(kTsanOptions));
  }
  spawn.user = sandbox.user;
  Child child = Child::spawn({sandbox.lab_tool.string(), "_case", std::to_string(timeout * 1000), "--",
                              job.executable.string(), "--test-case=" + filter_for(job.name),
                              "--case-sensitive=true", "--no-version=true"},
                             spawn);
  theirs.reset();
  // The supervisor (`lab _case`) ends the case at its timeout; this is the
  // backstop, for a supervisor that was itself killed or stopped.
  const auto backstop = std::chrono::seconds(timeout + 5);
  const Collected collected = collect_output(child, backstop, process_stop());
  result.output = collected.output;
  std::optional<ExitStatus> status;
  if (!collected.timed_out && !collected.interrupted) {
    const auto left = backstop - (Clock::now() - started);
    status = child.wait_for(std::chrono::ceil<std::chrono::milliseconds>(std::max(left, Clock::duration{0})));
  }
  ::kill(-child.pid(), SIGKILL);
  if (!status) {
    child.send_signal(SIGKILL);
    child.wait();
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (collected.interrupted) {
    result.outcome = Outcome::kInterrupted;
    result.message = "interrupted";
    return;
  }
  if (!status || (status->code == kCaseTimedOut && result.seconds >= timeout)) {
    result.outcome = Outcome::kTimedOut;
    result.message = fmt::format("exceeded {} s \u2014 deadlock or infinite loop?", timeout);
    // What the case had found wrong before it hung, and what its programs
    // had written on stderr: the report the case prints when `lab _case`
    // tells it its time is up (tests/support/main.cpp), where it says why.
    const auto heading = result.output.rfind(lab::testing::kProgramsHeading);
    const std::string before = result.output.substr(0, heading);
    if (before.find(" ERROR: ") != std::string::npos) {
      result.message += "\n" + first_failure(before);
    }
    if (const std::string programs = programs_report_in(result.output); !programs.empty()) {
      result.message += "\n" + programs;
    }
    return;
  }
  bool reported = false;
  const std::string verdict_problem = check_verdict(verdict, secret, job.name, reported);
  if (verdict_problem.empty() && status->success()) {
    result.outcome = Outcome::kPassed;
  } else if (!status->exited()) {
    result.outcome = Outcome::kCrashed;
    result.message = status->to_string();
    if (const std::string where = crash_location(result.output, job.executable); !where.empty()) {
      result.message += " " + where;
    } else if (const std::string before = first_failure(result.output); before != "failed without a message") {
      result.message += "\n" + before;
    }
    // The same case under the debugger, and in the sanitizer build that names the bad access.
    const std::string filter = shell_quote("--test-case=" + filter_for(job.name));
    const std::string preset = job.thread_sanitizer ? "tsan" : "asan";
    result.message += fmt::format(
        "\ndebug it: gdb -q -ex run -ex bt --args {} {}\n"
        "or: cmake --preset {} && cmake --build --preset {} --target test{}_grade && build/{}/lessons/{}/test{}_grade {}",
        shell_quote(display_path(job.executable)), filter, preset, preset, job.lesson->number, preset,
        job.lesson->dir, job.lesson->number, filter);
  } else if (!reported && status->success()) {
    result.outcome = Outcome::kFailed;
    result.message = "the case ended without reporting a result (" + status->to_string() +
                     "): did an exercise call exit(), _exit() or quick_exit()?";
  } else if (const std::string race = sanitizer_report(result.output, job.executable); !race.empty()) {
    result.outcome = Outcome::kFailed;
    result.message = race;
  } else {
    result.outcome = Outcome::kFailed;
    // The programs' report comes after doctest's: not a failure of its own.
    const std::string programs = programs_report_in(result.output);
    result.message = first_failure(result.output.substr(0, result.output.rfind(lab::testing::kProgramsHeading)));
    if (reported && verdict_problem != "failed") {
      result.message += "\n" + verdict_problem;
    }
    if (!programs.empty()) {
      result.message += "\n" + programs;
    }
  }
}

// The compiler's first error: its "file:line:col: error:" line with the
// source line and caret under it, paths shortened; or the build's first
// line that says error, if no compiler said it.
std::string first_compiler_error(const std::string& output) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto at = lines[i].find(": error: ");
    if (at == std::string::npos || lines[i].rfind("/usr/bin/", 0) == 0) {
      continue;
    }
    // From lessons/ on (a path a terminal or an editor opens), else the file name.
    const auto lessons = lines[i].rfind("/lessons/", at);
    const auto slash = lines[i].rfind('/', at);
    std::string text = lessons != std::string::npos ? lines[i].substr(lessons + 1)
                       : slash == std::string::npos ? lines[i]
                                                    : lines[i].substr(slash + 1);
    // The source line and the caret (and a fix-it line), indented by the compiler.
    for (std::size_t k = i + 1; k < lines.size() && k <= i + 3; ++k) {
      if (lines[k].empty() || lines[k].find(": note: ") != std::string::npos ||
          lines[k].find(": error: ") != std::string::npos || lines[k].find(": warning: ") != std::string::npos ||
          lines[k].find(": In ") != std::string::npos) {
        break;
      }
      text += "\n" + lines[k];
    }
    return text;
  }
  for (const auto& line : lines) {
    if (line.find("error") != std::string::npos && line.rfind("/usr/bin/", 0) != 0 &&
        line.rfind("FAILED:", 0) != 0) {
      return line;
    }
  }
  return "the build failed";
}

// Builds the test executables of `lessons` in `build_dir`; returns the
// lessons whose build failed, with the first compiler error of each.
std::map<std::string, std::string> build(const fs::path& build_dir, const std::vector<const Lesson*>& lessons,
                                         const std::string& variant) {
  std::map<std::string, std::string> failed;
  std::vector<std::string> all{"cmake", "--build", build_dir.string(), "--target"};
  for (const Lesson* lesson : lessons) {
    all.push_back("test" + lesson->number + "_" + variant);
    if (lesson->extra) {
      all.push_back("test" + lesson->number + "_extra");
    }
  }
  if (lessons.empty() || run_command(all).status.success()) {
    return failed;
  }
  // Find which lessons do not compile, so that the others are still graded.
  for (const Lesson* lesson : lessons) {
    std::vector<std::string> one{"cmake", "--build", build_dir.string(), "--target",
                                 "test" + lesson->number + "_" + variant};
    if (lesson->extra) {
      one.push_back("test" + lesson->number + "_extra");
    }
    const Result result = run_command(one);
    if (!result.status.success()) {
      failed[lesson->dir] = first_compiler_error(result.output);
    }
  }
  return failed;
}

// The ThreadSanitizer build the grader keeps beside the build it grades,
// configured once, then brought up to date like the other; nullopt if it
// cannot be configured (the reason is printed).
std::optional<fs::path> thread_sanitizer_build(const GradeOptions& options) {
  const fs::path dir = options.build_dir / "tsan-grade";
  if (!options.build) {
    return fs::exists(dir / "CMakeCache.txt") ? std::optional(dir) : std::nullopt;
  }
  if (!options.quiet) {
    fmt::print(stderr, "building the ThreadSanitizer build of the lessons with threads ({})...\n",
               display_path(dir));
  }
  const Result configured = run_command({"cmake", "-S", options.source_dir.string(), "-B", dir.string(), "-G",
                                         "Ninja", "-DCMAKE_BUILD_TYPE=Debug", "-DLAB_SANITIZER=thread",
                                         "-DLAB_EXTRA_TESTS=" + options.extra_dir.string()});
  if (!configured.status.success()) {
    fmt::print(stderr, "{}\nlab: cannot configure {}: graded without ThreadSanitizer\n", configured.output,
               display_path(dir));
    return std::nullopt;
  }
  return dir;
}


void assign_points(GradeReport& report) {
  std::map<std::string, int> cases_per_exercise;
  for (const auto& result : report.cases) {
    ++cases_per_exercise[result.exercise];
  }
  std::map<std::string, double> points;
  for (const auto& lesson : report.lessons) {
    for (const auto& exercise : lesson.exercises) {
      points[exercise.id] = exercise.points;
      report.max_score += exercise.points;
    }
  }
  for (auto& result : report.cases) {
    const auto found = points.find(result.exercise);
    if (found == points.end()) {
      continue;  // a case of no listed exercise: shown, but worth nothing
    }
    result.max_points = found->second / cases_per_exercise[result.exercise];
    result.points = result.outcome == Outcome::kPassed ? result.max_points : 0;
    report.score += result.points;
  }
}

}  // namespace

bool GradeReport::all_passed() const {
  if (interrupted || cases.empty()) {
    return false;
  }
  for (const auto& result : cases) {
    if (result.outcome != Outcome::kPassed) {
      return false;
    }
  }
  return true;
}

GradeReport grade(const GradeOptions& options) {
  GradeReport report;
  report.hidden_visibility = options.hidden_visibility;
  for (auto& lesson : load_lessons(options.source_dir, options.build_dir)) {
    if (options.lessons.empty() ||
        std::find(options.lessons.begin(), options.lessons.end(), lesson.number) != options.lessons.end()) {
      report.lessons.push_back(lesson);
    }
  }
  for (const auto& wanted : options.lessons) {
    if (std::none_of(report.lessons.begin(), report.lessons.end(),
                     [&](const Lesson& lesson) { return lesson.number == wanted; })) {
      throw std::runtime_error("there is no lesson " + wanted + " in this build (see: lab list)");
    }
  }
  // Hidden tests: DIR/NN_topic/extra.manifest adds exercises worth their own points.
  if (!options.extra_dir.empty()) {
    for (auto& lesson : report.lessons) {
      const fs::path manifest = options.extra_dir / lesson.dir / "extra.manifest";
      if (fs::exists(manifest)) {
        for (Exercise exercise : load_lesson(manifest, lesson.dir).exercises) {
          exercise.hidden = true;
          lesson.exercises.push_back(exercise);
        }
        lesson.extra = true;
      }
    }
  }

  std::vector<Job> jobs;
  // A lesson that is refused, does not compile or is not built costs that
  // lesson's points only: every other lesson is still graded.
  auto lesson_fails = [&](const Lesson& lesson, const std::string& why, const std::string& rerun) {
    // Every listed case fails, so that results.json is complete.
    std::vector<std::pair<std::string, bool>> names;  // and whether it is a hidden test
    try {
      for (const auto& name : cases_in_sources(options.source_dir / "tests" / lesson.dir)) {
        names.emplace_back(name, false);
      }
      if (lesson.extra) {
        for (const auto& name : cases_in_sources(options.extra_dir / lesson.dir)) {
          names.emplace_back(name, true);
        }
      }
    } catch (const std::exception&) {
      // the sources cannot be listed either: one entry per exercise, below
    }
    for (const auto& exercise : lesson.exercises) {
      if (std::none_of(names.begin(), names.end(), [&](const auto& entry) { return exercise_of(entry.first) == exercise.id; })) {
        names.emplace_back(exercise.id + " (lesson " + lesson.number + " could not be graded)", exercise.hidden);
      }
    }
    for (const auto& [name, hidden] : names) {
      CaseResult result;
      result.lesson_dir = lesson.dir;
      result.exercise = exercise_of(name);
      result.name = name;
      result.outcome = Outcome::kNotBuilt;
      result.message = why;
      result.rerun = rerun;
      result.extra = hidden;
      report.cases.push_back(result);
    }
  };
  // Screened before anything is compiled: a refused file is never built.
  std::vector<const Lesson*> selected;
  for (const auto& lesson : report.lessons) {
    std::string refused;
    if (options.variant == "grade") {
      for (const auto& file : lesson.files) {
        for (const auto& problem : screen_student_file(options.source_dir / "lessons" / lesson.dir / file)) {
          refused += "\n" + problem;
        }
      }
    }
    if (!refused.empty()) {
      lesson_fails(lesson, "refused: a file you edit may not reach into the tests (docs/instructors.md)" + refused,
                   "");
    } else {
      selected.push_back(&lesson);
    }
  }
  if (options.build && !options.quiet) {
    fmt::print(stderr, "building...\n");
  }
  const auto broken = options.build ? build(options.build_dir, selected, options.variant)
                                    : std::map<std::string, std::string>{};
  // The lessons graded a second time under ThreadSanitizer, and where.
  std::vector<const Lesson*> with_tsan;
  for (const Lesson* lesson : selected) {
    if (options.thread_sanitizer && lesson->sanitize == "thread" && !broken.contains(lesson->dir)) {
      with_tsan.push_back(lesson);
    }
  }
  std::optional<fs::path> tsan_dir;
  std::map<std::string, std::string> tsan_broken;
  if (!with_tsan.empty()) {
    tsan_dir = thread_sanitizer_build(options);
    if (tsan_dir && options.build) {
      tsan_broken = build(*tsan_dir, with_tsan, options.variant);
    }
  }
  for (const Lesson* lesson : selected) {
    const std::string rebuild = "cmake --build " + shell_quote(display_path(options.build_dir)) +
                                " --target test" + lesson->number + "_" + options.variant;
    if (const auto found = broken.find(lesson->dir); found != broken.end()) {
      lesson_fails(*lesson, "does not compile: " + found->second, rebuild);
      continue;
    }
    // Which cases exist comes from the lab's own test sources, never from
    // the program the student's code is linked into.
    struct Suite {
      fs::path executable;
      fs::path sources;
      bool hidden;
    };
    std::vector<Suite> suites{
        {test_executable(options, *lesson, options.variant), options.source_dir / "tests" / lesson->dir, false}};
    if (lesson->extra) {
      suites.push_back({test_executable(options, *lesson, "extra"), options.extra_dir / lesson->dir, true});
    }
    std::vector<Job> lesson_jobs;
    try {
      for (const auto& suite : suites) {
        if (!fs::exists(suite.executable)) {
          throw std::runtime_error(display_path(suite.executable) + " is not built");
        }
        for (const auto& name : cases_in_sources(suite.sources)) {
          lesson_jobs.push_back(Job{lesson, suite.executable, name, suite.hidden});
        }
      }
    } catch (const std::exception& error) {
      lesson_fails(*lesson, error.what(), rebuild);
      continue;
    }
    jobs.insert(jobs.end(), lesson_jobs.begin(), lesson_jobs.end());
    // The same cases again, built with ThreadSanitizer: a data race fails them.
    if (!tsan_dir || std::find(with_tsan.begin(), with_tsan.end(), lesson) == with_tsan.end()) {
      continue;
    }
    for (const Job& plain : lesson_jobs) {
      Job job = plain;
      job.thread_sanitizer = true;
      job.executable = *tsan_dir / plain.executable.lexically_relative(options.build_dir);
      if (const auto found = tsan_broken.find(lesson->dir); found != tsan_broken.end()) {
        CaseResult result;
        result.lesson_dir = lesson->dir;
        result.exercise = exercise_of(job.name);
        result.name = job.name + std::string(kTsanSuffix);
        result.outcome = Outcome::kNotBuilt;
        result.message = "does not compile with ThreadSanitizer: " + found->second;
        result.extra = job.extra;
        report.cases.push_back(result);
      } else if (fs::exists(job.executable) &&
                 (options.build || fs::last_write_time(job.executable) >= fs::last_write_time(plain.executable))) {
        jobs.push_back(job);  // not with --no-build and a ThreadSanitizer build older than the plain one
      }
    }
  }

  const Sandbox sandbox = prepare_sandbox(options);
  {
    std::map<fs::path, bool> sanitized;  // once per program
    for (Job& job : jobs) {
      const auto [found, added] = sanitized.try_emplace(job.executable, false);
      if (added) {
        found->second = job.thread_sanitizer || built_with_sanitizer(job.executable);
      }
      job.sanitized = found->second;
    }
  }
  if (sandbox.user) {
    for (const Job& job : jobs) {
      if (job.extra) {  // executable by the cases, not readable: its strings are the hidden tests'
        fs::permissions(job.executable, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec,
                        fs::perm_options::replace);
      }
    }
  }
  // Every process a case leaves behind comes back to us at the latest, even
  // if the case's supervisor was killed: swept at the end.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  const auto deadline = Clock::now() + std::chrono::seconds(options.deadline_seconds);

  std::vector<CaseResult> results(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    results[i].lesson_dir = jobs[i].lesson->dir;
    results[i].exercise = exercise_of(jobs[i].name);
    results[i].name = jobs[i].name;
    results[i].extra = jobs[i].extra;
    results[i].outcome = Outcome::kNotRun;
    results[i].message = "not graded: the grader stopped before this case ran";
  }
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::mutex progress;
  // results.json after every case: a grader killed half way still leaves a
  // valid file, whose cases not yet run count as failed and say so.
  auto save_progress = [&] {
    if (options.json_path.empty()) {
      return;
    }
    GradeReport partial = report;
    partial.cases.insert(partial.cases.end(), results.begin(), results.end());
    assign_points(partial);
    write_results_json(partial, options.json_path);
  };
  save_progress();
  auto worker = [&] {
    for (std::size_t index = next++; index < jobs.size(); index = next++) {
      CaseResult result = results[index];
      if (process_stop().requested()) {
        result.outcome = Outcome::kInterrupted;
        result.message = "interrupted";
      } else if (Clock::now() > deadline) {
        result.message = fmt::format("not run: the whole grade's time limit ({} s) had passed",
                                     options.deadline_seconds);
      } else {
        run_case(jobs[index], options, sandbox, result);
      }
      const std::lock_guard lock(progress);
      results[index] = std::move(result);
      ++done;
      save_progress();
      if (options.color && !options.quiet) {  // a terminal: one line that counts up
        fmt::print(stderr, "\rgrading: {}/{} cases", done, jobs.size());
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    const unsigned count = std::max(1u, std::min<unsigned>(options.jobs, static_cast<unsigned>(jobs.size())));
    for (unsigned i = 0; i < count; ++i) {
      workers.emplace_back(worker);
    }
  }
  kill_own_children();
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  if (!jobs.empty() && !options.quiet) {
    fmt::print(stderr, "{}graded {} cases\n", options.color ? "\r" : "", jobs.size());
  }
  report.interrupted = process_stop().requested();
  report.finished = true;
  report.cases.insert(report.cases.end(), results.begin(), results.end());
  assign_points(report);
  return report;
}

}  // namespace lab::tool
