// Benchmark of lesson 04: download a 1 GiB file over loopback with the
// reference server and client code, SHA-256 verified on both sides, next to
// `sha256sum` of the same file on the same machine. Prints figures; asserts
// nothing about time (a loaded machine is slower, not wrong).
//
//   cmake --workflow --preset bench      (or: ctest --test-dir build/<release> -L bench -V)
//
// argv[1]: the lesson's server program. Everything it creates lives in a
// temporary directory that is removed at the end, also on failure.
#include <fmt/core.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "lab/command.hpp"
#include "lab/sha256.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "struct_header.hpp"

namespace fs = std::filesystem;
using Seconds = std::chrono::duration<double>;

namespace {

constexpr std::uint64_t kFileSize = 1ULL << 30;  // 1 GiB

class TempDir {
 public:
  TempDir() {
    std::string name = (fs::temp_directory_path() / "lab04-bench-XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + name);
    }
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// 1 GiB of bytes that do not compress or repeat in a short period.
void write_test_file(const fs::path& path) {
  std::ofstream out(path, std::ios::binary);
  std::string block(1 << 20, '\0');
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (std::uint64_t written = 0; written < kFileSize; written += block.size()) {
    for (char& byte : block) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      byte = static_cast<char>(state & 0xff);
    }
    out.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  if (!out.flush()) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

double mib_per_s(double seconds) { return static_cast<double>(kFileSize) / (1 << 20) / seconds; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SERVER_PROGRAM\n", argv[0]);
    return 64;
  }
  try {
    TempDir temp;
    const fs::path served = temp.path() / "served";
    const fs::path saved = temp.path() / "saved";
    fs::create_directory(served);
    fs::create_directory(saved);
    const fs::path file = served / "one-gib.bin";
    write_test_file(file);

    // sha256sum first: it also brings the file into the page cache, so the
    // download below reads from memory, not the disk, like sha256sum did.
    lab::CommandLimits limits;
    limits.time_limit = std::chrono::minutes(5);
    auto started = std::chrono::steady_clock::now();
    const lab::CommandOutput sum = lab::run_command({"sha256sum", file.string()}, "", limits);
    const double sum_seconds = Seconds(std::chrono::steady_clock::now() - started).count();
    if (!sum.status.success()) {
      throw std::runtime_error("sha256sum failed: " + sum.err);
    }
    const std::string expected = sum.out.substr(0, 64);

    // lab::Sha256 alone, reading the file in the same 64 KiB chunks.
    started = std::chrono::steady_clock::now();
    {
      std::ifstream in(file, std::ios::binary);
      std::string chunk(lab::struct_header::kFileChunk, '\0');
      lab::Sha256 hasher;
      while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
        hasher.update(std::string_view(chunk.data(), static_cast<std::size_t>(in.gcount())));
      }
      if (lab::to_hex(hasher.finish()) != expected) {
        throw std::runtime_error("lab::Sha256 and sha256sum disagree");
      }
    }
    const double lab_hash_seconds = Seconds(std::chrono::steady_clock::now() - started).count();

    // The download: the server hashes the file, then streams it; the client
    // writes, hashes, checks, fsyncs and renames.
    auto server = lab::testing::ServerProcess::start(argv[1], {"--dir", served.string()});
    const lab::Fd connection = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
    started = std::chrono::steady_clock::now();
    const auto download = lab::struct_header::download_file(connection, file.filename().string(), saved);
    const double download_seconds = Seconds(std::chrono::steady_clock::now() - started).count();
    server.stop();
    if (download.sha256_hex != expected || download.size != kFileSize) {
      throw std::runtime_error("the download does not match sha256sum");
    }

    fmt::print("lesson 04 download benchmark, {} bytes (1 GiB), loopback, release build\n", kFileSize);
    fmt::print("  sha256sum of the file:             {:7.2f} s  {:8.1f} MiB/s\n", sum_seconds, mib_per_s(sum_seconds));
    fmt::print("  lab::Sha256 of the file:           {:7.2f} s  {:8.1f} MiB/s\n", lab_hash_seconds,
               mib_per_s(lab_hash_seconds));
    fmt::print("  verified download (hash both ends): {:6.2f} s  {:8.1f} MiB/s\n", download_seconds,
               mib_per_s(download_seconds));
    fmt::print("  download time / sha256sum time:    {:7.2f}x\n", download_seconds / sum_seconds);
    fmt::print("  sha256 {} (both agree)\n", expected);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_download: %s\n", error.what());
    return 1;
  }
}
