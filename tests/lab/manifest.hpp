// The lessons as the lab tool knows them: lessons/NN_topic/lesson.manifest.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lab::tool {

struct Exercise {
  std::string id;     // "01.2"
  double points = 0;
  std::string title;  // "the uppercase reply"
  bool hidden = false;  // from an instructor's hidden tests (extra.manifest)
};

// What one graded case may use (setrlimit(2)); a lesson's manifest may raise
// or lower each ("limit-memory-mb: 4096").
struct Limits {
  long memory_mb = 2048;   // address space (not applied to sanitizer builds, which reserve terabytes)
  long processes = 2048;   // processes and threads per case running at once, besides those the grading user
                           // had (RLIMIT_NPROC counts every thread of the user)
  long cpu_seconds = 0;    // CPU time; 0: four times the timeout
  long file_mb = 512;      // the largest file a case may write
  long open_files = 1024;  // descriptors per process
};

struct Lesson {
  std::string number;  // "01"
  std::string dir;     // "01_udp"
  std::string title;
  int timeout_seconds = 10;
  std::vector<std::string> files;  // the files a student edits (and submits)
  std::vector<Exercise> exercises;
  std::map<std::string, std::vector<std::string>> hints;  // by exercise id
  std::vector<std::string> server_args;                   // for `lab run`
  std::vector<std::string> client_args;
  std::vector<std::string> client_input;                  // lines fed to the client
  // "pair" (default): start the server, wait for its ready line, run the client.
  // "client-only": run only the client with run-client arguments (for a
  // lesson whose client starts and controls the server itself, e.g. a daemon).
  std::string run_mode = "pair";
  bool extra = false;  // an instructor's hidden-test lesson entry
  Limits limits;
  // "thread": its cases are graded a second time built with ThreadSanitizer,
  // so that a data race costs points (lessons with threads and locks).
  std::string sanitize;
};

// Parses one manifest. Throws std::runtime_error naming the file and line.
Lesson load_lesson(const std::filesystem::path& manifest, const std::string& dir);

// Every lessons/NN_topic/lesson.manifest under `source_dir`, in order; with
// `build_dir`, only the lessons that build has (a build configured with
// -DLAB_LESSONS=... lists them in lab-lessons.txt).
std::vector<Lesson> load_lessons(const std::filesystem::path& source_dir,
                                 const std::filesystem::path& build_dir = {});

// Splits on spaces and tabs.
std::vector<std::string> split_words(const std::string& text);

}  // namespace lab::tool
