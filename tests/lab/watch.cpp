#include "watch.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <set>

#include <fmt/core.h>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/stop.hpp"
#include "manifest.hpp"

namespace lab::tool {

namespace {

namespace fs = std::filesystem;

// Keys one at a time and no echo while watching, the terminal's own
// settings back afterwards (also on an exception).
class RawKeys {
 public:
  RawKeys() {
    if (::isatty(STDIN_FILENO) != 0 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
  }
  ~RawKeys() {
    if (active_) {
      ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
  }
  RawKeys(const RawKeys&) = delete;
  RawKeys& operator=(const RawKeys&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

const Lesson& pick_lesson(const std::vector<Lesson>& lessons, const std::string& number,
                          const fs::path& build_dir) {
  if (!number.empty()) {
    const std::string wanted = number.size() == 1 ? "0" + number : number;
    for (const auto& lesson : lessons) {
      if (lesson.number == wanted) {
        return lesson;
      }
    }
    throw UsageError("there is no lesson '" + number + "' (see: lab list)");
  }
  // The first lesson with an exercise not yet passing.
  const State state = State::load(build_dir);
  for (const auto& lesson : lessons) {
    for (const auto& exercise : lesson.exercises) {
      const auto found = state.status.find(exercise.id);
      if (found == state.status.end() || found->second != "passing") {
        return lesson;
      }
    }
  }
  if (lessons.empty()) {
    throw UsageError("this build has no lessons");
  }
  return lessons.back();
}

// What one grade of the lesson came to, by case name.
std::map<std::string, bool> passed_by_case(const GradeReport& report) {
  std::map<std::string, bool> passed;
  for (const auto& result : report.cases) {
    passed[result.name] = result.outcome == Outcome::kPassed;
  }
  return passed;
}

std::string clock_now() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  ::localtime_r(&now, &local);
  return fmt::format("{:02}:{:02}:{:02}", local.tm_hour, local.tm_min, local.tm_sec);
}

void show(const GradeReport& report, const std::map<std::string, bool>& before, const Lesson& lesson,
          const GradeOptions& options) {
  const char* green = options.color ? "\033[32m" : "";
  const char* red = options.color ? "\033[31m" : "";
  const char* bold = options.color ? "\033[1m" : "";
  const char* reset = options.color ? "\033[0m" : "";
  if (options.color) {
    fmt::print("\033[2J\033[H");  // a fresh screen: only the state that matters now
  }
  int passed = 0;
  for (const auto& result : report.cases) {
    passed += result.outcome == Outcome::kPassed ? 1 : 0;
  }
  fmt::print("{}lab watch \u2014 lesson {} {}{}   {:.2f} / {:g} points, {}/{} cases   ({})\n", bold,
             lesson.number, lesson.title, reset, report.score, report.max_score, passed, report.cases.size(),
             clock_now());
  for (const auto& result : report.cases) {
    const auto earlier = before.find(result.name);
    const bool now = result.outcome == Outcome::kPassed;
    if (earlier != before.end() && earlier->second != now) {
      fmt::print("  {}{} {}{}\n", now ? green : red, now ? "\u2713 now passes:" : "\u2717 now fails: ", result.name,
                 reset);
    }
  }
  const auto next = std::find_if(report.cases.begin(), report.cases.end(),
                                 [](const CaseResult& result) { return result.outcome != Outcome::kPassed; });
  if (next == report.cases.end()) {
    fmt::print("\n  {}every case of lesson {} passes.{} For the next lesson, quit and run lab watch again.\n",
               green, lesson.number, reset);
  } else {
    const std::string stub = stub_message(*next);
    fmt::print("\n  next: {}\n", next->name);
    std::istringstream lines(stub.empty() ? next->message : stub);
    for (std::string line; std::getline(lines, line);) {
      fmt::print("  | {}\n", line);
    }
    if (!next->rerun.empty()) {
      fmt::print("  rerun: {}\n", next->rerun);
    }
    fmt::print("  stuck? lab hint {}\n", lesson.number);
  }
  fmt::print("\nwatching lessons/{}/{{{}}}: save to regrade; {}\n", lesson.dir,
             [&] {
               std::string names;
               for (const auto& file : lesson.files) {
                 names += (names.empty() ? "" : ",") + file;
               }
               return names;
             }(),
             ::isatty(STDIN_FILENO) != 0 ? "q quits" : "Ctrl-C quits (stdin is not a terminal; a q on it quits too)");
  std::fflush(stdout);
}

}  // namespace

int watch(const GradeOptions& base, const std::string& number) {
  const auto lessons = load_lessons(base.source_dir, base.build_dir);
  const Lesson& lesson = pick_lesson(lessons, number, base.build_dir);
  GradeOptions options = base;
  options.lessons = {lesson.number};
  options.quiet = true;

  const fs::path folder = base.source_dir / "lessons" / lesson.dir;
  Fd events{::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)};
  if (!events) {
    throw os_error("inotify_init1");
  }
  // Editors save in place (close after write) or write a new file and rename it over the old.
  if (::inotify_add_watch(events.get(), folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    throw os_error("inotify_add_watch " + folder.string());
  }
  const std::set<std::string> watched(lesson.files.begin(), lesson.files.end());
  const RawKeys keys;
  std::map<std::string, bool> before;
  bool keyboard_open = true;
  for (;;) {
    const GradeReport report = grade(options);
    record_state(report, options.build_dir);
    show(report, before, lesson, options);
    before = passed_by_case(report);
    if (report.interrupted) {
      return 0;
    }
    // Wait for a save of one of the lesson's files, a key, or Ctrl-C.
    bool changed = false;
    while (!changed) {
      std::array<pollfd, 3> entries{{{events.get(), POLLIN, 0},
                                     {keyboard_open ? STDIN_FILENO : -1, POLLIN, 0},
                                     {process_stop().fd(), POLLIN, 0}}};
      if (::poll(entries.data(), entries.size(), -1) < 0) {
        if (errno == EINTR) {
          continue;
        }
        throw os_error("poll");
      }
      if (entries[2].revents != 0) {
        fmt::print("\n");
        return 0;
      }
      if (entries[1].revents != 0) {
        char key = 0;
        const ssize_t got = ::read(STDIN_FILENO, &key, 1);
        if (got == 1 && (key == 'q' || key == 'Q')) {
          return 0;
        }
        keyboard_open = got != 0;  // at the end of a non-terminal input, keep watching
      }
      if (entries[0].revents != 0) {
        alignas(inotify_event) char buffer[4096];
        for (ssize_t got = ::read(events.get(), buffer, sizeof buffer); got > 0;
             got = ::read(events.get(), buffer, sizeof buffer)) {
          for (char* at = buffer; at < buffer + got;) {
            const auto* event = reinterpret_cast<const inotify_event*>(at);
            if (event->len > 0 && watched.contains(event->name)) {
              changed = true;
            }
            at += sizeof(inotify_event) + event->len;
          }
        }
      }
    }
  }
}

}  // namespace lab::tool
