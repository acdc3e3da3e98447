// Benchmark of lesson 04 (label "bench", release build): a verified download
// over loopback with the reference server and client code, timed until the
// saved file is fsynced and renamed, next to references measured in the same
// run on the same file:
//   - the Python course's pair (download_pair.py beside this file: hashlib,
//     hash first, then send), when python3 is installed;
//   - socat -b 1MiB from the file to a file, plus an fsync, when socat is;
//   - sha256sum of the file.
// The first download of a file includes the server's hashing pass; later
// ones start at once, because the server remembers the digest of that
// version of the file. Prints figures; asserts nothing about time.
//
//   cmake --workflow --preset bench
//   build/release/lessons/04_struct_header/bench_download SERVER PYTHON_PAIR [--mib N]   (default
//   1024)
#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "bench_support.hpp"
#include "lab/command.hpp"
#include "lab/process.hpp"
#include "lab/sha256.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/temp_dir.hpp"
#include "lab/testing.hpp"
#include "struct_header.hpp"

namespace fs = std::filesystem;
using Seconds = std::chrono::duration<double>;

namespace {

std::uint64_t g_file_size = 1ULL << 30;  // --mib

// 1 GiB of bytes that do not compress or repeat in a short period.
void write_test_file(const fs::path& path) {
  std::ofstream out(path, std::ios::binary);
  std::string block(1 << 20, '\0');
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (std::uint64_t written = 0; written < g_file_size; written += block.size()) {
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

double mb_per_s(double seconds) {
  return static_cast<double>(g_file_size) / 1e6 / seconds;
}

void fsync_file(const fs::path& path) {
  const lab::Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!file || ::fsync(file.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "fsync " + path.string());
  }
}

double seconds_since(std::chrono::steady_clock::time_point started) {
  return Seconds(std::chrono::steady_clock::now() - started).count();
}

// The Python course's pair: its server, and its client run to completion.
std::optional<double> python_download(const std::string& pair, const fs::path& served,
                                      const fs::path& saved, const std::string& name) {
  if (!lab::bench::find_program("python3")) {
    return std::nullopt;
  }
  auto server = lab::testing::ServerProcess::start(pair, {"--dir", served.string()});
  const auto started = std::chrono::steady_clock::now();
  const auto result = lab::testing::run(
      {pair, "get", name, "--port", std::to_string(server.port()), "--to", saved.string()}, "",
      std::chrono::minutes(5));
  const double seconds = seconds_since(started);
  server.stop();
  if (!result.status.success()) {
    throw std::runtime_error("the Python pair failed: " + result.describe());
  }
  return seconds;
}

// socat reading the file and sending it to a second socat that writes it;
// then an fsync, as the downloads do. The listener is ours: the receiving
// socat gets the accepted connection as a descriptor (FD:N), so no port has
// to be chosen in advance.
std::optional<double> socat_copy(const fs::path& file, const fs::path& out) {
  const auto socat = lab::bench::find_program("socat");
  if (!socat) {
    return std::nullopt;
  }
  const lab::Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  const auto port = lab::SocketAddress::local_of(listener.get()).port();
  const auto started = std::chrono::steady_clock::now();
  auto sender =
      lab::Child::spawn({*socat, "-u", "-b", "1048576", "OPEN:" + file.string() + ",rdonly",
                         fmt::format("TCP:127.0.0.1:{}", port)});
  auto connection = lab::accept_client(listener, lab::process_stop());
  if (!connection) {
    throw std::runtime_error("socat never connected");
  }
  lab::SpawnOptions with_socket;
  with_socket.inherit = {connection->socket.get()};
  auto receiver =
      lab::Child::spawn({*socat, "-u", "-b", "1048576",
                         fmt::format("FD:{}", connection->socket.get()), "CREATE:" + out.string()},
                        with_socket);
  connection->socket.reset();
  const auto sent = sender.wait();
  const auto received = receiver.wait();
  fsync_file(out);
  const double seconds = seconds_since(started);
  if (!sent.success() || !received.success() || fs::file_size(out) != g_file_size) {
    throw std::runtime_error("socat failed: " + sent.to_string() + ", " + received.to_string());
  }
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SERVER PYTHON_PAIR [--mib N]\n", argv[0]);
    return 64;
  }
  try {
    g_file_size = lab::bench::number_option(argc, argv, "--mib", 1024) << 20;
    const lab::TempDir temp("lab04-bench");
    const fs::path served = temp.path() / "served";
    const fs::path saved = temp.path() / "saved";
    fs::create_directory(served);
    fs::create_directory(saved);
    const std::string name = "test-file.bin";
    const fs::path file = served / name;
    write_test_file(file);
    fsync_file(file);

    // sha256sum first: it also brings the file into the page cache, so that
    // everything below reads it from memory, as sha256sum did.
    lab::CommandLimits limits;
    limits.time_limit = std::chrono::minutes(5);
    auto started = std::chrono::steady_clock::now();
    const lab::CommandOutput sum = lab::run_command({"sha256sum", file.string()}, "", limits);
    const double sum_seconds = seconds_since(started);
    if (!sum.status.success()) {
      throw std::runtime_error("sha256sum failed: " + sum.err);
    }
    const std::string expected = sum.out.substr(0, 64);

    // The lesson's download on one connection: the first includes the
    // server's hashing pass, the later ones find the digest remembered. Each
    // later one alternates with a run of the Python pair, and the best of
    // each counts: the disk and the other programs on this machine are
    // shared, so single runs swing, but they swing for both alike.
    auto server = lab::testing::ServerProcess::start(argv[1], {"--dir", served.string()});
    const lab::bench::Drain drain(server.child().output());
    const lab::Fd connection = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
    const auto download = [&] {
      const auto download_started = std::chrono::steady_clock::now();
      const auto saved_file = lab::struct_header::download_file(connection, name, saved);
      const double seconds = seconds_since(download_started);
      if (saved_file.sha256_hex != expected || saved_file.size != g_file_size) {
        throw std::runtime_error("the download does not match sha256sum");
      }
      fs::remove(saved_file.path);
      return seconds;
    };
    const double first_seconds = download();
    double again_seconds = 1e9;
    std::optional<double> python_seconds;
    for (int round = 0; round < 2; ++round) {
      again_seconds = std::min(again_seconds, download());
      if (const auto python = python_download(argv[2], served, saved, name)) {
        python_seconds = std::min(python_seconds.value_or(1e9), *python);
        fs::remove(saved / name);
      }
    }
    server.stop();
    const std::optional<double> socat_seconds = socat_copy(file, saved / "socat.bin");

    fmt::print(
        "lesson 04 verified download, {} MiB over loopback, timed until the saved file is "
        "fsynced\n",
        g_file_size >> 20);
    const double first = mb_per_s(first_seconds);
    const double again = mb_per_s(again_seconds);
    lab::bench::print_figure("sha256sum of the file", mb_per_s(sum_seconds), "MB/s");
    if (python_seconds) {
      const double python = mb_per_s(*python_seconds);
      lab::bench::print_figure("Python course's pair (hashlib), best of 2", python, "MB/s");
      lab::bench::print_ratio("lesson 04, first download (server hashes)", first, "MB/s",
                              "Python's", python);
      lab::bench::print_ratio("lesson 04, again (digest remembered), best of 2", again, "MB/s",
                              "Python's (target: >= 2x)", python);
    } else {
      fmt::print("  (python3 not found: no Python course figure to compare with)\n");
    }
    if (socat_seconds) {
      const double socat = mb_per_s(*socat_seconds);
      lab::bench::print_figure("socat -b 1MiB file to file, no hashing", socat, "MB/s");
      lab::bench::print_ratio("lesson 04, first download (server hashes)", first, "MB/s", "socat's",
                              socat);
      lab::bench::print_ratio("lesson 04, again (digest remembered), best of 2", again, "MB/s",
                              "socat's (target: >= 0.5x)", socat);
    } else {
      fmt::print("  (socat not installed: no copy-without-hashing figure; apt install socat)\n");
    }
    fmt::print("  sha256 {} (all agree)\n", expected);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_download: %s\n", error.what());
    return 1;
  }
}
