// lab — run, grade and track the lab's lessons.
//
//   lab list                 lessons, exercises and your progress
//   lab run 01               lesson 01's server and client, in one terminal
//   lab grade [NN ...]       rebuild, then grade your exercises
//   lab hint 01              the next hint for lesson 01's first unsolved exercise
//   lab handout DIR          a copy of the lab without solutions/ (instructors)
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "grader.hpp"
#include "lab/error.hpp"
#include "lab/stop.hpp"
#include "manifest.hpp"
#include "runner.hpp"
#include "shell.hpp"
#include "supervise.hpp"
#include "watch.hpp"

namespace fs = std::filesystem;
using namespace lab::tool;

namespace {

constexpr const char* kUsage = R"(usage: lab COMMAND [ARGS]

commands:
  list                        every lesson and exercise, with your progress
  run NN [--mine] [--server | --client] [-- ARGS...]
                              start lesson NN's server, run its client against it,
                              show both outputs; --mine uses your build instead of
                              the reference; --server/--client runs one side only
  grade [NN ...] [OPTIONS]    rebuild, then grade (all lessons by default)
      --lessons 01,02           grade only these (the score is over them)
      --json FILE               write Gradescope results.json
      --junit FILE              write JUnit XML
      --extra DIR               add an instructor's hidden tests (DIR/NN_topic/*.cpp)
      --timeout S               seconds per case, instead of each lesson's own
      --jobs N                  cases run at once (default: the number of cores)
      --user NAME               as root: run the cases as this user (default: nobody)
      --deadline S              seconds for the whole run (default: 3600)
      --hidden-visibility V     Gradescope visibility of --extra tests (default: after_published)
      --reference               grade the reference solutions instead
      --no-build                do not rebuild first
      --no-tsan                 skip the second run under ThreadSanitizer (lessons with threads)
      --no-save                 do not update the progress that `lab list` shows
  watch [NN] [--no-build]     grade lesson NN (default: the first not yet passed) on every
                              save of its files, showing what changed; q quits
  hint NN                     the next hint for lesson NN's first unsolved exercise
  handout DIR                 write a copy of the lab without solutions/ to DIR

common options: --source-dir DIR, --build-dir DIR (default: where lab was built)
)";

struct Context {
  fs::path source_dir = LAB_SOURCE_DIR;
  fs::path build_dir;
  bool color = false;
};

const Lesson& find_lesson(const std::vector<Lesson>& lessons, const std::string& number) {
  const std::string wanted = number.size() == 1 ? "0" + number : number;
  for (const auto& lesson : lessons) {
    if (lesson.number == wanted) {
      return lesson;
    }
  }
  throw lab::UsageError("there is no lesson '" + number + "' (see: lab list)");
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text + ",") {
    if (c == ',') {
      if (!part.empty()) {
        parts.push_back(part.size() == 1 ? "0" + part : part);
      }
      part.clear();
    } else {
      part += c;
    }
  }
  return parts;
}

int whole_number(const std::string& option, const std::string& text, int min, int max) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < min ||
      value > max) {
    throw lab::UsageError(option + " must be a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", not '" + text + "'");
  }
  return value;
}

int command_list(const Context& context) {
  const auto lessons = load_lessons(context.source_dir, context.build_dir);
  const State state = State::load(context.build_dir);
  int solved = 0;
  int total = 0;
  const char* green = context.color ? "\033[32m" : "";
  const char* red = context.color ? "\033[31m" : "";
  const char* dim = context.color ? "\033[2m" : "";
  const char* reset = context.color ? "\033[0m" : "";
  std::size_t width = 0;  // the longest title, so the states line up
  for (const auto& lesson : lessons) {
    for (const auto& exercise : lesson.exercises) {
      width = std::max(width, exercise.title.size());
    }
  }
  for (const auto& lesson : lessons) {
    fmt::print("{} {}\n", lesson.number, lesson.title);
    for (const auto& exercise : lesson.exercises) {
      ++total;
      const auto found = state.status.find(exercise.id);
      if (found == state.status.end() || found->second == "not-started") {
        fmt::print("   {}\u00b7 {:<5} {:<{}} not started{}\n", dim, exercise.id, exercise.title, width, reset);
      } else if (found->second == "passing") {
        ++solved;
        fmt::print("   {}\u2713{} {:<5} {:<{}} {}passing{}\n", green, reset, exercise.id, exercise.title, width,
                   green, reset);
      } else {
        fmt::print("   {}\u2717{} {:<5} {:<{}} {}failing{}\n", red, reset, exercise.id, exercise.title, width,
                   red, reset);
      }
    }
  }
  fmt::print("\nprogress: {} / {} exercises (from your last `lab grade`)\n", solved, total);
  return 0;
}

int command_hint(const Context& context, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    throw lab::UsageError("lab hint takes one lesson number, e.g. lab hint 01");
  }
  const auto lessons = load_lessons(context.source_dir, context.build_dir);
  const Lesson& lesson = find_lesson(lessons, args[0]);
  State state = State::load(context.build_dir);
  for (const auto& exercise : lesson.exercises) {
    const auto found = state.status.find(exercise.id);
    if (found != state.status.end() && found->second == "passing") {
      continue;
    }
    const auto hints = lesson.hints.find(exercise.id);
    const int shown = state.hints_shown[exercise.id];
    if (hints == lesson.hints.end() || hints->second.empty()) {
      fmt::print("{} {}: no hints for this one; see lessons/{}/README.md\n", exercise.id, exercise.title,
                 lesson.dir);
      return 0;
    }
    const auto count = static_cast<int>(hints->second.size());
    if (shown >= count) {
      fmt::print("{} {}: that was the last hint ({} of {}). Read lessons/{}/README.md again,\n"
                 "rerun the failing case (lab grade {} shows the command) and read its message.\n",
                 exercise.id, exercise.title, count, count, lesson.dir, lesson.number);
      return 0;
    }
    fmt::print("{} {} \u2014 hint {} of {}:\n  {}\n", exercise.id, exercise.title, shown + 1, count,
               hints->second[static_cast<std::size_t>(shown)]);
    state.hints_shown[exercise.id] = shown + 1;
    state.save(context.build_dir);
    return 0;
  }
  fmt::print("every exercise of lesson {} passed at your last `lab grade`. On to the next lesson!\n",
             lesson.number);
  return 0;
}

int command_grade(const Context& context, const std::vector<std::string>& args) {
  GradeOptions options;
  bool save = true;
  options.source_dir = context.source_dir;
  options.build_dir = context.build_dir;
  options.color = context.color;
  options.jobs = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        throw lab::UsageError(word + " needs a value");
      }
      return args[++i];
    };
    if (word == "--lessons") {
      for (const auto& number : split_commas(value())) {
        options.lessons.push_back(number);
      }
    } else if (word == "--json") {
      options.json_path = value();
    } else if (word == "--junit") {
      options.junit_path = value();
    } else if (word == "--extra") {
      options.extra_dir = fs::absolute(value());
    } else if (word == "--timeout") {
      options.timeout_seconds = whole_number("--timeout", value(), 1, 3600);
    } else if (word == "--jobs") {
      options.jobs = static_cast<unsigned>(whole_number("--jobs", value(), 1, 256));
    } else if (word == "--user") {
      options.user = value();
    } else if (word == "--deadline") {
      options.deadline_seconds = whole_number("--deadline", value(), 1, 86400);
    } else if (word == "--hidden-visibility") {
      options.hidden_visibility = value();
      if (options.hidden_visibility != "hidden" && options.hidden_visibility != "after_due_date" &&
          options.hidden_visibility != "after_published" && options.hidden_visibility != "visible") {
        throw lab::UsageError("--hidden-visibility is hidden, after_due_date, after_published or visible");
      }
    } else if (word == "--help" || word == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    } else if (word == "--reference") {
      options.variant = "reference";
    } else if (word == "--no-build") {
      options.build = false;
    } else if (word == "--no-tsan") {
      options.thread_sanitizer = false;
    } else if (word == "--no-save") {
      save = false;
    } else if (!word.empty() && word[0] == '-') {
      throw lab::UsageError("unknown option '" + word + "' for lab grade");
    } else {
      options.lessons.push_back(word.size() == 1 ? "0" + word : word);
    }
  }
  if (!options.extra_dir.empty()) {
    if (!fs::is_directory(options.extra_dir)) {
      throw lab::UsageError("--extra " + options.extra_dir.string() + ": not a folder");
    }
    // The hidden tests are compiled by the build: point it at them.
    const Result configured = run_command({"cmake", "-S", options.source_dir.string(), "-B",
                                           options.build_dir.string(),
                                           "-DLAB_EXTRA_TESTS=" + options.extra_dir.string()});
    if (!configured.status.success()) {
      fmt::print(stderr, "{}", configured.output);
      throw std::runtime_error("configuring the build with the extra tests failed (above)");
    }
  }
  const GradeReport report = grade(options);
  print_report(report, options.color);
  if (!options.json_path.empty()) {
    write_results_json(report, options.json_path);
    fmt::print("wrote {}\n", options.json_path.string());
  }
  if (!options.junit_path.empty()) {
    write_junit(report, options.junit_path);
    fmt::print("wrote {}\n", options.junit_path.string());
  }
  if (options.variant == "grade" && save) {
    record_state(report, options.build_dir);
  }
  if (report.interrupted) {
    return 130;
  }
  return report.all_passed() ? 0 : 1;
}

int command_watch(const Context& context, const std::vector<std::string>& args) {
  GradeOptions options;
  options.source_dir = context.source_dir;
  options.build_dir = context.build_dir;
  options.color = context.color;
  options.jobs = std::max(1u, std::thread::hardware_concurrency());
  std::string number;
  for (const auto& word : args) {
    if (word == "--no-build") {
      options.build = false;
    } else if (word == "--no-tsan") {
      options.thread_sanitizer = false;
    } else if (number.empty() && !word.empty() && word[0] != '-') {
      number = word;
    } else {
      throw lab::UsageError("lab watch takes a lesson number and --no-build, --no-tsan; not '" + word + "'");
    }
  }
  return watch(options, number);
}

int command_run(const Context& context, const std::vector<std::string>& args) {
  RunOptions options;
  options.source_dir = context.source_dir;
  options.build_dir = context.build_dir;
  options.color = context.color;
  std::string number;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") {
      options.passthrough.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (word == "--mine") {
      options.mine = true;
    } else if (word == "--server") {
      options.server_only = true;
    } else if (word == "--client") {
      options.client_only = true;
    } else if (number.empty() && !word.empty() && word[0] != '-') {
      number = word;
    } else {
      // Anything else goes to the program, so `lab run 01 --client --message hi` works.
      options.passthrough.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
  }
  if (number.empty()) {
    throw lab::UsageError("lab run needs a lesson number, e.g. lab run 01");
  }
  if (options.server_only && options.client_only) {
    throw lab::UsageError("--server and --client: pick one (or neither, for both)");
  }
  const auto lessons = load_lessons(context.source_dir, context.build_dir);
  return run_lesson(find_lesson(lessons, number), options);
}

int command_handout(const Context& context, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    throw lab::UsageError("lab handout takes the folder to write, e.g. lab handout /tmp/lab-handout");
  }
  const fs::path target = fs::absolute(args[0]);
  if (fs::exists(target) && !fs::is_empty(target)) {
    throw lab::UsageError(target.string() + " exists and is not empty");
  }
  fs::create_directories(target);
  int copied = 0;
  for (const auto& entry : fs::directory_iterator(context.source_dir)) {
    const std::string name = entry.path().filename().string();
    // The reference answers, build output and history stay behind.
    if (name == "solutions" || name == "build" || name == ".git" || name == ".cache") {
      continue;
    }
    fs::copy(entry.path(), target / name, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    ++copied;
  }
  fmt::print("wrote a handout of the lab to {} ({} top-level entries, no solutions/).\n"
             "Students: cmake --workflow --preset test, then build/default/lab grade and build/default/lab run 01 --mine\n",
             target.string(), copied);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Line by line, also into a file or a pipe: the progress lines on stderr
  // ("building...") stay in order with the report on stdout (cmd > log 2>&1).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<std::string> args(argv + 1, argv + argc);
  Context context;
  std::error_code error;
  context.build_dir = fs::read_symlink("/proc/self/exe", error).parent_path();
  context.color = ::isatty(STDOUT_FILENO) != 0 && std::getenv("NO_COLOR") == nullptr;
  try {
    // Common options, anywhere before the command's own arguments.
    for (std::size_t i = 0; i < args.size();) {
      if ((args[i] == "--source-dir" || args[i] == "--build-dir") && i + 1 < args.size()) {
        (args[i] == "--source-dir" ? context.source_dir : context.build_dir) = fs::absolute(args[i + 1]);
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      } else {
        ++i;
      }
    }
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
      fmt::print("{}", kUsage);
      return args.empty() ? 64 : 0;
    }
    if (args[0] == "_case") {  // the grader's supervisor of one case: not for people
      return supervise_case(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    lab::install_stop_handlers();
    const std::string command = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (command == "list") {
      return command_list(context);
    }
    if (command == "run") {
      return command_run(context, rest);
    }
    if (command == "grade") {
      return command_grade(context, rest);
    }
    if (command == "watch") {
      return command_watch(context, rest);
    }
    if (command == "hint") {
      return command_hint(context, rest);
    }
    if (command == "handout") {
      return command_handout(context, rest);
    }
    throw lab::UsageError("unknown command '" + command + "'");
  } catch (const lab::UsageError& usage) {
    fmt::print(stderr, "lab: {} (see: lab help)\n", usage.what());
    return 64;
  } catch (const lab::StopRequested&) {
    fmt::print(stderr, "lab: interrupted\n");
    return 130;
  } catch (const std::exception& failure) {
    fmt::print(stderr, "lab: {}\n", failure.what());
    return 1;
  }
}
