// Helpers of the lab tool's self-checks (test_lab.cpp, test_attacks.cpp).
#pragma once

#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "lab/io.hpp"
#include "lab/sha256.hpp"
#include "lab/process.hpp"
#include "lab/testing.hpp"

namespace lab::selfcheck {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline const std::string kLab = LAB_TOOL;



// A strict-enough JSON reader: true if `text` is one valid JSON value.
class JsonChecker {
 public:
  explicit JsonChecker(const std::string& text) : text_(text) {}
  bool valid() {
    skip();
    if (!value()) {
      return false;
    }
    skip();
    return at_ == text_.size();
  }

 private:
  void skip() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_])) != 0) {
      ++at_;
    }
  }
  bool literal(std::string_view word) {
    if (text_.compare(at_, word.size(), word) != 0) {
      return false;
    }
    at_ += word.size();
    return true;
  }
  bool string() {
    if (text_[at_] != '"') {
      return false;
    }
    for (++at_; at_ < text_.size(); ++at_) {
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) {
        return false;
      }
      if (c == '\\') {
        ++at_;
        if (at_ >= text_.size() || std::string_view("\"\\/bfnrtu").find(text_[at_]) == std::string_view::npos) {
          return false;
        }
      }
    }
    return false;
  }
  bool number() {
    const std::size_t start = at_;
    while (at_ < text_.size() && std::string_view("+-0123456789.eE").find(text_[at_]) != std::string_view::npos) {
      ++at_;
    }
    return at_ > start;
  }
  bool sequence(char close, bool keyed) {
    ++at_;
    skip();
    if (at_ < text_.size() && text_[at_] == close) {
      ++at_;
      return true;
    }
    for (;;) {
      skip();
      if (keyed) {
        if (at_ >= text_.size() || !string()) {
          return false;
        }
        skip();
        if (at_ >= text_.size() || text_[at_++] != ':') {
          return false;
        }
        skip();
      }
      if (!value()) {
        return false;
      }
      skip();
      if (at_ >= text_.size()) {
        return false;
      }
      if (text_[at_] == close) {
        ++at_;
        return true;
      }
      if (text_[at_++] != ',') {
        return false;
      }
    }
  }
  bool value() {
    if (at_ >= text_.size()) {
      return false;
    }
    switch (text_[at_]) {
      case '{': return sequence('}', true);
      case '[': return sequence(']', false);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  const std::string& text_;
  std::size_t at_ = 0;
};

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The number after "key": in the JSON text (top-level score fields).
inline double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  REQUIRE_MESSAGE(at != std::string::npos, "no ", key, " in ", json.substr(0, 200));
  return std::stod(json.substr(at + key.size() + 3));
}

inline int count(const std::string& text, const std::string& what) {
  int found = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++found;
  }
  return found;
}

inline fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("lab-selfcheck-" + std::to_string(::getpid()) + "-" + name);
}

// "pid: command line" of each child of this process, for failure messages.
inline std::string describe_children() {
  std::string text;
  for (int pid : lab::testing::child_pids()) {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string command;
    std::getline(cmdline, command);
    std::replace(command.begin(), command.end(), '\0', ' ');
    text += std::to_string(pid) + ": " + command + "\n";
  }
  return text;
}

// Processes that lose their parent are handed to us, so a process the lab
// tool leaves behind shows up in child_pids() instead of escaping to init.
struct AdoptOrphans {
  AdoptOrphans() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~AdoptOrphans() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

inline lab::testing::ProgramResult lab_tool(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
  args.insert(args.begin(), kLab);
  lab::SpawnOptions options;
  options.environment = {{"NO_COLOR", "1"}};
  return lab::testing::run(args, "", timeout, options);
}

// The lessons (NN_topic) whose students' files (tests/stubs.sha256) are no
// longer as shipped: the lessons the student has started. In CI a change is
// a maintainer's, and fails: refresh the list with
// cmake -P tests/cmake/StubHashes.cmake.
inline std::set<std::string> started_lessons(const fs::path& source) {
  std::ifstream list(source / "tests" / "stubs.sha256");
  std::set<std::string> started;
  std::string changed;
  std::string hash;
  std::string file;
  while (list >> hash >> file) {
    if (lab::to_hex(lab::sha256(read_file(source / file))) != hash) {
      changed += (changed.empty() ? "" : " ") + file;
      started.insert(fs::path(file).parent_path().filename().string());  // lessons/NN_topic/FILE
    }
  }
  REQUIRE_MESSAGE((changed.empty() || std::getenv("CI") == nullptr), "the shipped stubs changed (", changed,
                  "): refresh tests/stubs.sha256 with: cmake -P tests/cmake/StubHashes.cmake");
  return started;
}

}  // namespace lab::selfcheck
