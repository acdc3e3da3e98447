// `lab run`: a lesson's server and client in one terminal.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "manifest.hpp"

namespace lab::tool {

struct RunOptions {
  std::filesystem::path source_dir;
  std::filesystem::path build_dir;
  bool mine = false;         // the student's build instead of the reference
  bool server_only = false;  // the classic two-terminal way
  bool client_only = false;
  std::vector<std::string> passthrough;  // arguments for the program
  bool color = false;
};

int run_lesson(const Lesson& lesson, const RunOptions& options);

}  // namespace lab::tool
