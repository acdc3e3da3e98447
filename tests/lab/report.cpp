// Printing and saving what `lab grade` found.
#include <fcntl.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include <fmt/core.h>

#include "grader.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "shell.hpp"

namespace lab::tool {

namespace {

struct Colors {
  const char* green = "";
  const char* red = "";
  const char* yellow = "";
  const char* bold = "";
  const char* reset = "";
};

Colors colors(bool enabled) {
  if (!enabled) {
    return {};
  }
  return {"\033[32m", "\033[31m", "\033[33m", "\033[1m", "\033[0m"};
}

// Each line of `text` after `prefix`, with control bytes made visible: a
// "\r" in a student's value would otherwise send the cursor back over the
// line, a NUL vanish, and an escape sequence repaint the terminal.
std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    out += prefix;
    for (const char ch : line) {
      const auto byte = static_cast<unsigned char>(ch);
      if (ch == '\r') {
        out += "\\r";
      } else if ((byte < 0x20 && ch != '\t') || byte == 0x7f) {
        out += fmt::format("\\x{:02x}", byte);
      } else {
        out += ch;
      }
    }
    out += "\n";
  }
  return out;
}

// The length of the valid UTF-8 sequence starting at text[i] (2 to 4), or 0.
std::size_t utf8_sequence(const std::string& text, std::size_t i) {
  const auto byte = static_cast<unsigned char>(text[i]);
  const std::size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc2 ? 2 : 0;
  if (length == 0 || byte >= 0xf5 || i + length > text.size()) {
    return 0;
  }
  // RFC 3629: the second byte's range rules out overlong forms (E0, F0),
  // UTF-16 surrogates (ED) and code points above U+10FFFF (F4).
  const auto second = static_cast<unsigned char>(text[i + 1]);
  const unsigned char low = byte == 0xe0 ? 0xa0 : byte == 0xf0 ? 0x90 : 0x80;
  const unsigned char high = byte == 0xed ? 0x9f : byte == 0xf4 ? 0x8f : 0xbf;
  if (second < low || second > high) {
    return 0;
  }
  for (std::size_t k = 2; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
      return 0;
    }
  }
  return length;
}

// JSON string contents: escapes, and invalid UTF-8 replaced by U+FFFD so a
// parser never rejects the file because a test printed raw bytes.
std::string json_escape(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte == '\n') {
      out += "\\n";
    } else if (byte == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\u{:04x}", byte);
    } else if (byte < 0x80) {
      out += static_cast<char>(byte);
    } else if (const std::size_t length = utf8_sequence(text, i); length > 0) {
      out.append(text, i, length);
      i += length - 1;
    } else {
      out += "\\ufffd";
    }
  }
  return out;
}

// XML text: the five specials escaped; control bytes and invalid UTF-8, which
// XML 1.0 cannot hold at all, replaced by '?'.
std::string xml_escape(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    switch (byte) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (byte >= 0x80) {
          if (const std::size_t length = utf8_sequence(text, i); length > 0) {
            out.append(text, i, length);
            i += length - 1;
          } else {
            out += '?';
          }
        } else if ((byte < 0x20 && byte != '\n' && byte != '\t') || byte == 0x7f) {
          out += '?';
        } else {
          out += static_cast<char>(byte);
        }
    }
  }
  return out;
}

const char* status_word(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed: return "passed";
    case Outcome::kTimedOut: return "timed out";
    case Outcome::kCrashed: return "crashed";
    case Outcome::kNotBuilt: return "not built";
    case Outcome::kInterrupted: return "interrupted";
    case Outcome::kNotRun: return "not run";
    case Outcome::kFailed: break;
  }
  return "failed";
}

std::string title_of(const GradeReport& report, const std::string& exercise) {
  for (const auto& lesson : report.lessons) {
    for (const auto& entry : lesson.exercises) {
      if (entry.id == exercise) {
        return entry.title;
      }
    }
  }
  return "(not in the manifest: worth no points)";
}

}  // namespace

std::string stub_message(const CaseResult& result) {
  constexpr std::string_view kStub = "not implemented: exercise ";
  const auto start = result.output.find(kStub);
  if (start == std::string::npos || result.outcome == Outcome::kPassed) {
    return "";
  }
  const auto end = result.output.find_first_of("\n\"", start);
  return result.output.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

void print_report(const GradeReport& report, bool color) {
  const Colors c = colors(color);
  // Per exercise: passed / total cases and points.
  struct Row {
    int passed = 0;
    int total = 0;
    double points = 0;
    double max_points = 0;
  };
  std::map<std::string, Row> rows;
  for (const auto& lesson : report.lessons) {
    for (const auto& exercise : lesson.exercises) {
      rows[exercise.id].max_points = exercise.points;
    }
  }
  for (const auto& result : report.cases) {
    Row& row = rows[result.exercise];
    ++row.total;
    row.passed += result.outcome == Outcome::kPassed ? 1 : 0;
    row.points += result.points;
  }

  // Failures first, so the table and the score stay on screen at the end.
  // A case that failed because an exercise is still a stub says so; every
  // such case gets one line per missing exercise, not a page each.
  // Cases that failed with the very same message (a lesson that does not
  // compile fails every case with the compiler's error) show it once.
  std::set<std::string> not_implemented;
  std::map<std::string, int> same_failure;
  for (const auto& result : report.cases) {
    if (result.outcome != Outcome::kPassed && !result.message.empty()) {
      ++same_failure[result.message];
    }
  }
  bool any_failure = false;
  for (const auto& result : report.cases) {
    if (result.outcome == Outcome::kPassed) {
      continue;
    }
    if (!any_failure) {
      fmt::print("{}Failing cases{}\n\n", c.bold, c.reset);
      any_failure = true;
    }
    if (const std::string stub = stub_message(result); !stub.empty()) {
      if (not_implemented.insert(stub).second) {
        fmt::print("{}NOT STARTED{} {}\n\n", c.yellow, c.reset, stub);
      }
      continue;
    }
    const auto same = same_failure.find(result.message);
    if (same != same_failure.end() && same->second == 0) {
      continue;  // shown already
    }
    fmt::print("{}{}{} {}\n{}  rerun: {}\n", c.red, status_word(result.outcome), c.reset, result.name,
               indent(result.message, "  | "), result.rerun);
    if (same != same_failure.end() && same->second > 1) {
      fmt::print("  ({} more cases failed with this same message)\n", same->second - 1);
      same->second = 0;
    }
    fmt::print("\n");
  }

  fmt::print("{}{:<7} {:<48} {:>7} {:>13}{}\n", c.bold, "lesson", "exercise", "cases", "points",
             c.reset);
  for (const auto& [exercise, row] : rows) {
    const bool full = row.total > 0 && row.passed == row.total;
    const std::string label = exercise + " " + title_of(report, exercise);
    fmt::print("{:<7} {:<48} {}{:>7}{} {:>13}\n", exercise.substr(0, 2),
               label.size() > 48 ? label.substr(0, 45) + "..." : label, full ? c.green : c.red,
               fmt::format("{}/{}", row.passed, row.total), c.reset,
               fmt::format("{:.2f} / {:g}", row.points, row.max_points));
  }
  const double percent = report.max_score > 0 ? 100.0 * report.score / report.max_score : 0;
  fmt::print("{}{:<7} {:<48} {:>7} {:>13}{}  ({:.0f}%)\n", c.bold, "total", "", "",
             fmt::format("{:.2f} / {:g}", report.score, report.max_score), c.reset, percent);
  if (report.interrupted) {
    fmt::print("{}interrupted: cases not run count as failed{}\n", c.yellow, c.reset);
  }
}

namespace {

// Writes `text` to a new temporary file beside `path` (a random name,
// O_EXCL and O_NOFOLLOW: never through a link someone planted there) and
// renames it over `path`.
void replace_file(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".partial-" + random_hex(8);
  const Fd out{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)};
  if (!out) {
    throw std::system_error(errno, std::generic_category(), "cannot write " + temporary.string());
  }
  try {
    write_all(out, text);
    std::filesystem::rename(temporary, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

}  // namespace

void write_results_json(const GradeReport& report, const std::filesystem::path& path) {
  std::size_t graded = 0;
  for (const auto& result : report.cases) {
    graded += result.outcome == Outcome::kNotRun ? 0 : 1;
  }
  const std::string summary =
      report.interrupted ? "interrupted: cases not run count as failed"
      : report.finished  ? "graded by lab"
                         : fmt::format("grading did not finish: {} of {} cases graded; the others count as failed",
                                       graded, report.cases.size());
  std::string out = "{\n";
  out += fmt::format("  \"score\": {:.4f},\n  \"max_score\": {:.4f},\n", report.score, report.max_score);
  out += "  \"output\": \"" + json_escape(summary) + "\",\n  \"tests\": [\n";
  for (std::size_t i = 0; i < report.cases.size(); ++i) {
    const CaseResult& result = report.cases[i];
    const std::string stub = stub_message(result);
    std::string output = result.outcome == Outcome::kPassed ? "" : stub.empty() ? result.message : stub;
    if (!result.rerun.empty() && result.outcome != Outcome::kPassed) {
      output += "\nrerun: " + result.rerun;
    }
    out += fmt::format(
        "    {{\"name\": \"{}\", \"number\": \"{}\", \"score\": {:.4f}, \"max_score\": {:.4f}, "
        "\"status\": \"{}\", \"visibility\": \"{}\", \"execution_time\": {:.3f}, \"output\": \"{}\"}}{}\n",
        json_escape(result.name), json_escape(result.exercise), result.points, result.max_points,
        result.outcome == Outcome::kPassed ? "passed" : "failed",
        json_escape(result.extra ? report.hidden_visibility : "visible"), result.seconds, json_escape(output),
        i + 1 < report.cases.size() ? "," : "");
  }
  out += "  ]\n}\n";
  replace_file(path, out);
}

void write_junit(const GradeReport& report, const std::filesystem::path& path) {
  std::ostringstream out;
  int failures = 0;
  for (const auto& result : report.cases) {
    failures += result.outcome == Outcome::kPassed ? 0 : 1;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << fmt::format("<testsuites tests=\"{}\" failures=\"{}\">\n", report.cases.size(), failures);
  out << fmt::format("  <testsuite name=\"lab\" tests=\"{}\" failures=\"{}\">\n", report.cases.size(),
                     failures);
  for (const auto& result : report.cases) {
    out << fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", xml_escape(result.lesson_dir),
                       xml_escape(result.name), result.seconds);
    if (result.outcome == Outcome::kPassed) {
      out << "/>\n";
    } else {
      out << fmt::format(">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                         xml_escape(status_word(result.outcome)), xml_escape(result.message));
    }
  }
  out << "  </testsuite>\n</testsuites>\n";
  replace_file(path, out.str());
}

State State::load(const std::filesystem::path& build_dir) {
  State state;
  std::ifstream in(build_dir / "lab-state.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind;
    std::string exercise;
    std::string value;
    if (!(words >> kind >> exercise >> value) || kind.front() == '#') {
      continue;
    }
    if (kind == "exercise") {
      state.status[exercise] = value;
    } else if (kind == "hints") {
      state.hints_shown[exercise] = std::atoi(value.c_str());
    }
  }
  return state;
}

void State::save(const std::filesystem::path& build_dir) const {
  std::ofstream out(build_dir / "lab-state.txt");
  out << "# written by `lab grade` and `lab hint`; safe to delete\n";
  for (const auto& [exercise, value] : status) {
    out << "exercise " << exercise << " " << value << "\n";
  }
  for (const auto& [exercise, shown] : hints_shown) {
    out << "hints " << exercise << " " << shown << "\n";
  }
}

void record_state(const GradeReport& report, const std::filesystem::path& build_dir) {
  State state = State::load(build_dir);
  std::map<std::string, std::string> status;
  for (const auto& result : report.cases) {
    if (result.outcome == Outcome::kInterrupted || result.extra) {
      continue;
    }
    std::string& value = status.try_emplace(result.exercise, "passing").first->second;
    if (result.outcome == Outcome::kPassed || value == "not-started") {
      continue;
    }
    // Failing on its own exercise's stub: not started. Anything else: failing.
    value = stub_message(result).find("exercise " + result.exercise + " ") != std::string::npos
                ? "not-started"
                : "failing";
  }
  for (const auto& [exercise, value] : status) {
    state.status[exercise] = value;
  }
  state.save(build_dir);
}

}  // namespace lab::tool
