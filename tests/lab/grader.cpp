#include "grader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/core.h>

#include "lab/error.hpp"
#include "lab/process.hpp"
#include "lab/stop.hpp"
#include "shell.hpp"

namespace lab::tool {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Job {
  const Lesson* lesson = nullptr;
  fs::path executable;
  std::string name;
  bool extra = false;
};

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

// The case names a doctest executable holds.
std::vector<std::string> list_cases(const fs::path& executable) {
  // Listing runs the student's static initialisers too: bound it.
  const Result listing = run_command({executable.string(), "--list-test-cases", "--no-version=true"},
                                     std::chrono::seconds(30));
  if (!listing.status.success()) {
    throw std::runtime_error(
        "cannot list the cases of " + display_path(executable) + " (" +
        (listing.timed_out ? std::string("no answer within 30 s") : listing.status.to_string()) +
        "): " + listing.output.substr(0, 500));
  }
  std::vector<std::string> names;
  std::istringstream lines(listing.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("[doctest]", 0) == 0 || line.find_first_not_of('=') == std::string::npos) {
      continue;
    }
    names.push_back(line);
  }
  return names;
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

void run_case(const Job& job, const GradeOptions& options, CaseResult& result) {
  const int timeout = options.timeout_seconds.value_or(job.lesson->timeout_seconds);
  result.lesson_dir = job.lesson->dir;
  result.exercise = exercise_of(job.name);
  result.name = job.name;
  result.extra = job.extra;
  result.rerun = shell_quote(display_path(job.executable)) + " " +
                 shell_quote("--test-case=" + filter_for(job.name));
  const auto started = Clock::now();
  SpawnOptions spawn;
  spawn.merge_stderr = true;
  spawn.new_process_group = true;  // so a timeout can kill the case and whatever it started
  spawn.working_directory = job.executable.parent_path().string();
  Child child = Child::spawn(
      {job.executable.string(), "--test-case=" + filter_for(job.name), "--no-version=true"}, spawn);
  const Collected collected =
      collect_output(child, std::chrono::seconds(timeout), process_stop());
  result.output = collected.output;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (collected.interrupted) {
    ::kill(-child.pid(), SIGKILL);
    child.wait();
    result.outcome = Outcome::kInterrupted;
    result.message = "interrupted";
    return;
  }
  if (collected.timed_out) {
    ::kill(-child.pid(), SIGKILL);  // the whole group: the case and any server it started
    child.wait();
    result.outcome = Outcome::kTimedOut;
    result.message = fmt::format("exceeded {} s \u2014 deadlock or infinite loop?", timeout);
    return;
  }
  const ExitStatus status = child.wait();
  ::kill(-child.pid(), SIGKILL);  // anything the case left behind in its group
  // doctest exits 0 when no case matched the filter: a pass needs the case to have run.
  // doctest pads the counts: "[doctest] test cases:  1 |  1 passed | 0 failed | 23 skipped".
  static const std::regex kOneCasePassed(R"(test cases: +1 \| +1 passed)");
  if (status.success() && std::regex_search(result.output, kOneCasePassed)) {
    result.outcome = Outcome::kPassed;
  } else if (status.success()) {
    result.outcome = Outcome::kFailed;
    result.message = "the case did not run: no test case matched its name";
  } else if (!status.exited()) {
    result.outcome = Outcome::kCrashed;
    result.message = status.to_string();
    const std::string before = first_failure(result.output);
    if (before != "failed without a message") {
      result.message += "\n" + before;
    }
  } else {
    result.outcome = Outcome::kFailed;
    result.message = first_failure(result.output);
  }
}

// Builds the test executables of `lessons`; returns the lessons whose build failed
// with the first compiler error of each.
std::map<std::string, std::string> build(const GradeOptions& options, const std::vector<const Lesson*>& lessons,
                                         const std::string& variant) {
  std::map<std::string, std::string> failed;
  std::vector<std::string> all{"cmake", "--build", options.build_dir.string(), "--target"};
  for (const Lesson* lesson : lessons) {
    all.push_back("test" + lesson->number + "_" + variant);
    if (lesson->extra) {
      all.push_back("test" + lesson->number + "_extra");
    }
  }
  fmt::print(stderr, "building...\n");
  if (run_command(all).status.success()) {
    return failed;
  }
  // Find which lessons do not compile, so that the others are still graded.
  for (const Lesson* lesson : lessons) {
    std::vector<std::string> one{"cmake", "--build", options.build_dir.string(), "--target",
                                 "test" + lesson->number + "_" + variant};
    if (lesson->extra) {
      one.push_back("test" + lesson->number + "_extra");
    }
    const Result result = run_command(one);
    if (!result.status.success()) {
      std::istringstream lines(result.output);
      std::string line;
      std::string first_error = "the build failed";
      while (std::getline(lines, line)) {
        if (line.find("error") != std::string::npos) {
          first_error = line;
          break;
        }
      }
      failed[lesson->dir] = first_error;
    }
  }
  return failed;
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
        const Lesson extra = load_lesson(manifest, lesson.dir);
        lesson.exercises.insert(lesson.exercises.end(), extra.exercises.begin(), extra.exercises.end());
        lesson.extra = true;
      }
    }
  }
  std::vector<const Lesson*> selected;
  for (const auto& lesson : report.lessons) {
    selected.push_back(&lesson);
  }
  const auto broken = options.build ? build(options, selected, options.variant)
                                    : std::map<std::string, std::string>{};

  std::vector<Job> jobs;
  // A lesson that does not compile, is not built or cannot list its cases
  // costs that lesson's points only: every other lesson is still graded.
  auto lesson_fails = [&](const Lesson& lesson, const std::string& why, const std::string& rerun) {
    for (const auto& exercise : lesson.exercises) {
      CaseResult result;
      result.lesson_dir = lesson.dir;
      result.exercise = exercise.id;
      result.name = exercise.id + " (lesson " + lesson.number + " could not be graded)";
      result.outcome = Outcome::kNotBuilt;
      result.message = why;
      result.rerun = rerun;
      report.cases.push_back(result);
    }
  };
  for (const auto& lesson : report.lessons) {
    const std::string rebuild = "cmake --build " + shell_quote(display_path(options.build_dir)) +
                                " --target test" + lesson.number + "_" + options.variant;
    if (const auto found = broken.find(lesson.dir); found != broken.end()) {
      lesson_fails(lesson, "does not compile: " + found->second, rebuild);
      continue;
    }
    std::vector<std::pair<fs::path, bool>> executables{
        {test_executable(options, lesson, options.variant), false}};
    if (lesson.extra) {
      executables.emplace_back(test_executable(options, lesson, "extra"), true);
    }
    std::vector<Job> lesson_jobs;
    try {
      for (const auto& [executable, extra] : executables) {
        if (!fs::exists(executable)) {
          throw std::runtime_error(display_path(executable) + " is not built");
        }
        for (const auto& name : list_cases(executable)) {
          lesson_jobs.push_back(Job{&lesson, executable, name, extra});
        }
      }
    } catch (const std::exception& error) {
      lesson_fails(lesson, error.what(), rebuild);
      continue;
    }
    jobs.insert(jobs.end(), lesson_jobs.begin(), lesson_jobs.end());
  }

  std::vector<CaseResult> results(jobs.size());
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex progress;
  auto worker = [&] {
    for (std::size_t index = next++; index < jobs.size(); index = next++) {
      if (process_stop().requested()) {
        results[index].outcome = Outcome::kInterrupted;
        results[index].name = jobs[index].name;
        results[index].exercise = exercise_of(jobs[index].name);
        results[index].lesson_dir = jobs[index].lesson->dir;
        continue;
      }
      run_case(jobs[index], options, results[index]);
      const std::lock_guard lock(progress);
      ++done;
      if (options.color) {  // a terminal: one line that counts up
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
  if (!jobs.empty()) {
    fmt::print(stderr, "{}graded {} cases\n", options.color ? "\r" : "", jobs.size());
  }
  report.interrupted = process_stop().requested();
  report.cases.insert(report.cases.end(), results.begin(), results.end());
  assign_points(report);
  return report;
}

}  // namespace lab::tool
