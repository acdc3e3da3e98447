// Hostile clients against lesson 07's daemon, which serves one client at a
// time and logs each: garbage, silence, trickling, a log flood, SIGTERM.
#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "hostile.hpp"
#include "lab/process.hpp"
#include "lab/text.hpp"

using namespace hostile;

namespace {

// The daemon double-forks away from us; as a subreaper this process adopts
// it, so the test can wait for it and see its exit status.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra = {}) {
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    std::vector<std::string> argv{program("07_daemon"), "--host", "127.0.0.1", "--port", "0",
                                  "--pid-file", dir.file("d.pid"), "--log-file", log_path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto started = lab::testing::run(argv, "", 5s);
    REQUIRE_MESSAGE(started.status.success(), started.describe());
    port = lab::Endpoint::parse(std::string(lab::chomp(started.out)).substr(13)).port;
    std::ifstream(dir.file("d.pid")) >> pid;
    REQUIRE(pid > 0);
  }
  ~Daemon() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  [[nodiscard]] std::string log_path() const { return dir.file("d.log"); }
  [[nodiscard]] lab::Fd connect() const { return lab::tcp_connect(lab::Endpoint{"127.0.0.1", port}); }
  [[nodiscard]] std::string status() const {
    const lab::Fd socket = connect();
    lab::write_all(socket, "status\n");
    return read_until(socket, "\n", 5s);
  }
  // SIGTERM; true if it ended with status 0 within 1 s.
  bool stops_cleanly() {
    const lab::Fd pidfd = lab::open_pidfd(pid);
    REQUIRE(pidfd);
    REQUIRE(::kill(pid, SIGTERM) == 0);
    const bool ended = lab::pidfd_ended_within(pidfd, std::chrono::milliseconds(1000));
    int status = -1;
    REQUIRE(::waitpid(std::exchange(pid, -1), &status, 0) > 0);
    return ended && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  lab::testing::TempDir dir{"hostile07"};
  std::uint16_t port = 0;
  pid_t pid = -1;
};

}  // namespace

TEST_CASE("07: garbage, a silent and a trickling client are answered or dropped, and status is served after each") {
  Daemon daemon;
  {
    const lab::Fd garbage = daemon.connect();
    lab::write_all(garbage, std::string("\x01\xff garbage\n", 11));
    CHECK(read_until(garbage, "\n", 3s) == "error: the only command is 'status'\n");
  }
  {
    const lab::Fd silent = daemon.connect();
    const auto began = std::chrono::steady_clock::now();
    CHECK(daemon.status().rfind("pid ", 0) == 0);  // queued behind the silent one, for 2 s at most
    CHECK(std::chrono::steady_clock::now() - began < 3500ms);
  }
  {
    const lab::Fd trickler = daemon.connect();
    const auto began = std::chrono::steady_clock::now();
    bool dropped = false;
    for (int i = 0; i < 40 && !dropped; ++i) {  // 40 x 100 ms: far beyond the 2 s deadline
      try {
        lab::write_all(trickler, "s");
      } catch (const std::system_error&) {
        dropped = true;
        break;
      }
      dropped = closed_by_server(trickler, 100ms);
    }
    CHECK(dropped);
    CHECK(std::chrono::steady_clock::now() - began < 3500ms);
  }
  CHECK(daemon.status().rfind("pid ", 0) == 0);
  CHECK(daemon.stops_cleanly());
}

TEST_CASE("07: a flood of bad requests rotates the log: it never passes --log-max-bytes") {
  Daemon daemon({"--log-max-bytes", "2048"});
  for (int i = 0; i < 200; ++i) {
    const lab::Fd socket = daemon.connect();
    lab::write_all(socket, "flood\n");
    REQUIRE(read_until(socket, "\n", 3s).rfind("error:", 0) == 0);
  }
  CHECK(std::filesystem::file_size(daemon.log_path()) <= 2048);
  CHECK(std::filesystem::file_size(daemon.log_path() + ".1") <= 2048);
  CHECK(daemon.status().rfind("pid ", 0) == 0);
  CHECK(daemon.stops_cleanly());
}

TEST_CASE("07: SIGTERM in the middle of a client's request stops the daemon within 1 s, status 0") {
  Daemon daemon;
  const lab::Fd client = daemon.connect();
  lab::write_all(client, "sta");
  CHECK(daemon.stops_cleanly());
}
