// `lab grade`: every graded case in its own process, under a timeout, in parallel.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "manifest.hpp"

namespace lab::tool {

struct GradeOptions {
  std::filesystem::path source_dir;
  std::filesystem::path build_dir;
  std::vector<std::string> lessons;   // "01", "02"; empty: every lesson
  std::string variant = "grade";      // "grade" (the student's files) or "reference"
  bool build = true;                  // rebuild what changed first
  bool thread_sanitizer = true;       // also grade `sanitize: thread` lessons under ThreadSanitizer
  unsigned jobs = 2;
  std::optional<int> timeout_seconds; // overrides every lesson's
  std::filesystem::path extra_dir;    // an instructor's hidden tests (already configured)
  std::filesystem::path json_path;    // Gradescope results.json
  std::filesystem::path junit_path;
  bool color = false;
  bool quiet = false;                 // no progress lines on stderr (lab watch)
  std::string user = "nobody";        // as root, the cases run as this user
  int deadline_seconds = 3600;        // for the whole run: cases not started by then are not run
  std::string hidden_visibility = "after_published";  // Gradescope visibility of hidden tests
};

enum class Outcome { kPassed, kFailed, kTimedOut, kCrashed, kNotBuilt, kInterrupted, kNotRun };

struct CaseResult {
  std::string lesson_dir;  // "01_udp"
  std::string exercise;    // "01.2"
  std::string name;        // the whole TEST_CASE name
  Outcome outcome = Outcome::kFailed;
  std::string message;     // why it failed, a few lines
  std::string output;      // everything it printed
  std::string rerun;       // the command that runs just this case
  double seconds = 0;
  double points = 0;
  double max_points = 0;
  bool extra = false;      // from the instructor's hidden tests
};

struct GradeReport {
  std::vector<Lesson> lessons;
  std::vector<CaseResult> cases;
  double score = 0;
  double max_score = 0;
  bool interrupted = false;
  bool finished = false;          // false while grading (results.json written after each case)
  std::string hidden_visibility = "after_published";
  [[nodiscard]] bool all_passed() const;
};

// Builds (if asked), runs and scores. Prints progress on stderr.
GradeReport grade(const GradeOptions& options);

// The table, the failures and how to rerun them, on stdout.
void print_report(const GradeReport& report, bool color);

// Both write a temporary file beside `path`, then rename it over `path`: a
// reader never sees half a file, even if the grader is killed.
void write_results_json(const GradeReport& report, const std::filesystem::path& path);
void write_junit(const GradeReport& report, const std::filesystem::path& path);

// The state kept between runs for `lab list` and `lab hint`.
struct State {
  std::map<std::string, std::string> status;  // by exercise id: passing, failing, not-started
  std::map<std::string, int> hints_shown;
  static State load(const std::filesystem::path& build_dir);
  void save(const std::filesystem::path& build_dir) const;
};

// "not implemented: exercise 01.2 (...) — see ..." if the case failed on a stub, else "".
std::string stub_message(const CaseResult& result);

void record_state(const GradeReport& report, const std::filesystem::path& build_dir);

}  // namespace lab::tool
