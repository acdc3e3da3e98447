// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object goes: where a program or a test keeps its files, pid
// files and logs.
#pragma once

#include <filesystem>
#include <string>

namespace lab {

class TempDir {
 public:
  // Named "<prefix>-XXXXXX" by mkdtemp(3): a name nobody can guess, mode 0700.
  explicit TempDir(const std::string& prefix = "lab");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }
  // The path of an entry in the directory (not created).
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace lab
