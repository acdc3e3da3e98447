#include "manifest.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lab::tool {

namespace {

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) {
    return "";
  }
  const auto last = text.find_last_not_of(" \t\r");
  return std::string(text.substr(first, last - first + 1));
}

std::vector<std::string> split_fields(const std::string& text) {
  std::vector<std::string> fields;
  std::string::size_type start = 0;
  for (;;) {
    const auto bar = text.find('|', start);
    fields.push_back(trim(std::string_view(text).substr(start, bar - start)));
    if (bar == std::string::npos) {
      return fields;
    }
    start = bar + 1;
  }
}

}  // namespace

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream stream(text);
  std::vector<std::string> words;
  std::string word;
  while (stream >> word) {
    words.push_back(word);
  }
  return words;
}

Lesson load_lesson(const std::filesystem::path& manifest, const std::string& dir) {
  std::ifstream in(manifest);
  if (!in) {
    throw std::runtime_error("cannot read " + manifest.string());
  }
  Lesson lesson;
  lesson.dir = dir;
  lesson.number = dir.substr(0, 2);
  std::string line;
  int line_number = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(manifest.string() + ":" + std::to_string(line_number) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++line_number;
    const std::string text = trim(line);
    if (text.empty() || text.front() == '#') {
      continue;
    }
    const auto colon = text.find(':');
    if (colon == std::string::npos) {
      fail("expected 'key: value'");
    }
    const std::string key = trim(std::string_view(text).substr(0, colon));
    const std::string value = trim(std::string_view(text).substr(colon + 1));
    if (key == "title") {
      lesson.title = value;
    } else if (key == "timeout") {
      int seconds = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (error != std::errc{} || end != value.data() + value.size() || seconds < 1) {
        fail("timeout must be a whole number of seconds");
      }
      lesson.timeout_seconds = seconds;
    } else if (key.rfind("limit-", 0) == 0) {
      long* field = key == "limit-memory-mb"    ? &lesson.limits.memory_mb
                    : key == "limit-processes"  ? &lesson.limits.processes
                    : key == "limit-cpu-seconds" ? &lesson.limits.cpu_seconds
                    : key == "limit-file-mb"    ? &lesson.limits.file_mb
                    : key == "limit-open-files" ? &lesson.limits.open_files
                                                : nullptr;
      if (field == nullptr) {
        fail("unknown limit '" + key + "' (limit-memory-mb, -processes, -cpu-seconds, -file-mb, -open-files)");
      }
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), *field);
      if (error != std::errc{} || end != value.data() + value.size() || *field < 1) {
        fail(key + " must be a positive whole number");
      }
    } else if (key == "exercise") {
      const auto fields = split_fields(value);
      if (fields.size() != 3) {
        fail("expected 'exercise: NN.k | points | title'");
      }
      Exercise exercise{fields[0], 0, fields[2]};
      try {
        exercise.points = std::stod(fields[1]);
      } catch (const std::exception&) {
        fail("points must be a number: '" + fields[1] + "'");
      }
      if (exercise.id.rfind(lesson.number + ".", 0) != 0) {
        fail("exercise " + exercise.id + " does not belong to lesson " + lesson.number);
      }
      lesson.exercises.push_back(exercise);
    } else if (key == "hint") {
      const auto bar = value.find('|');
      if (bar == std::string::npos) {
        fail("expected 'hint: NN.k | text'");
      }
      lesson.hints[trim(std::string_view(value).substr(0, bar))].push_back(
          trim(std::string_view(value).substr(bar + 1)));
    } else if (key == "files") {
      lesson.files = split_words(value);
    } else if (key == "run-server") {
      lesson.server_args = split_words(value);
    } else if (key == "run-client") {
      lesson.client_args = split_words(value);
    } else if (key == "run-mode") {
      if (value != "pair" && value != "client-only") {
        fail("run-mode is 'pair' or 'client-only'");
      }
      lesson.run_mode = value;
    } else if (key == "sanitize") {
      if (value != "thread") {
        fail("sanitize is 'thread' (ThreadSanitizer)");
      }
      lesson.sanitize = value;
    } else if (key == "run-input") {
      lesson.client_input.push_back(value);
    } else {
      fail("unknown key '" + key + "'");
    }
  }
  if (lesson.title.empty()) {
    lesson.title = dir;
  }
  return lesson;
}

std::vector<Lesson> load_lessons(const std::filesystem::path& source_dir,
                                 const std::filesystem::path& build_dir) {
  std::vector<std::string> built;
  const bool filter = !build_dir.empty() && std::filesystem::exists(build_dir / "lab-lessons.txt");
  if (filter) {
    std::ifstream list(build_dir / "lab-lessons.txt");
    std::string name;
    while (list >> name) {
      built.push_back(name);
    }
  }
  std::vector<Lesson> lessons;
  const auto root = source_dir / "lessons";
  if (!std::filesystem::is_directory(root)) {
    throw std::runtime_error("no lessons/ folder in " + source_dir.string());
  }
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string dir = entry.path().filename().string();
    const auto manifest = entry.path() / "lesson.manifest";
    if (dir.size() > 3 && std::isdigit(static_cast<unsigned char>(dir[0])) != 0 &&
        std::isdigit(static_cast<unsigned char>(dir[1])) != 0 && dir[2] == '_' &&
        std::filesystem::exists(manifest) &&
        (!filter || std::find(built.begin(), built.end(), dir) != built.end())) {
      lessons.push_back(load_lesson(manifest, dir));
    }
  }
  std::sort(lessons.begin(), lessons.end(),
            [](const Lesson& a, const Lesson& b) { return a.dir < b.dir; });
  return lessons;
}

}  // namespace lab::tool
