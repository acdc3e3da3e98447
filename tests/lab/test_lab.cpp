// Self-checks of the `lab` tool (label "selfcheck"): it grades the reference
// with full marks and the stubs with zero, survives a hanging and a crashing
// case, writes results.json that parses, and `lab run` leaves no process.
#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kLab = LAB_TOOL;
const std::string kFixtureSource = LAB_FIXTURE_SOURCE;
const std::string kFixtureBuild = LAB_FIXTURE_BUILD;

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

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The number after "key": in the JSON text (top-level score fields).
double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  REQUIRE_MESSAGE(at != std::string::npos, "no ", key, " in ", json.substr(0, 200));
  return std::stod(json.substr(at + key.size() + 3));
}

int count(const std::string& text, const std::string& what) {
  int found = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++found;
  }
  return found;
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("lab-selfcheck-" + std::to_string(::getpid()) + "-" + name);
}

// "pid: command line" of each child of this process, for failure messages.
std::string describe_children() {
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

lab::testing::ProgramResult lab_tool(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
  args.insert(args.begin(), kLab);
  lab::SpawnOptions options;
  options.environment = {{"NO_COLOR", "1"}};
  return lab::testing::run(args, "", timeout, options);
}

}  // namespace

TEST_CASE("grader: the reference solutions get full marks") {
  const fs::path json = temp_file("reference.json");
  // --timeout 60: this checks the grader's arithmetic, not speed (sanitizer builds are slow).
  const auto result = lab_tool({"grade", "--reference", "--no-build", "--timeout", "60", "--json",
                                json.string()}, 600s);
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{0, 0});
  const std::string text = read_file(json);
  CHECK(JsonChecker(text).valid());
  CHECK(json_number(text, "max_score") > 0);
  CHECK(json_number(text, "score") == doctest::Approx(json_number(text, "max_score")));
  CHECK(count(text, "\"status\": \"failed\"") == 0);
  fs::remove(json);
}

TEST_CASE("grader: the untouched stubs get zero, every case saying not implemented") {
  const fs::path json = temp_file("stubs.json");
  const auto result = lab_tool({"grade", "--no-build", "--no-save", "--timeout", "60", "--json",
                                json.string()}, 600s);
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{1, 0});
  const std::string text = read_file(json);
  REQUIRE(JsonChecker(text).valid());
  CHECK(json_number(text, "score") == 0);
  const int cases = count(text, "\"status\": \"failed\"");
  CHECK(cases > 0);
  CHECK(count(text, "\"status\": \"passed\"") == 0);
  CHECK(count(text, "not implemented: exercise") == cases);
  CHECK(result.out.find("NOT STARTED") != std::string::npos);
  fs::remove(json);
}

TEST_CASE("grader: a hanging and a crashing case fail alone, and results.json is still written") {
  const fs::path json = temp_file("fixture.json");
  const fs::path junit = temp_file("fixture.xml");
  const auto result = lab_tool({"--source-dir", kFixtureSource, "--build-dir", kFixtureBuild, "grade",
                                "--no-build", "--json", json.string(), "--junit", junit.string()});
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{1, 0});
  CHECK(result.out.find("timed out 98.2 hangs") != std::string::npos);
  CHECK(result.out.find("exceeded 2 s \u2014 deadlock or infinite loop?") != std::string::npos);
  CHECK(result.out.find("crashed 98.2 crashes") != std::string::npos);
  CHECK(result.out.find("killed by SIGABRT") != std::string::npos);
  CHECK(result.out.find("failed 98.1 fails with a message") != std::string::npos);
  CHECK(result.out.find("expected the answer") != std::string::npos);
  // 98.1: 2 of 3 cases pass (2 points); 98.2: 1 of 3 (2 points).
  CHECK(result.out.find("2/3") != std::string::npos);
  CHECK(result.out.find("1/3") != std::string::npos);
  const std::string text = read_file(json);
  REQUIRE(JsonChecker(text).valid());
  CHECK(json_number(text, "score") == doctest::Approx(2.0));
  CHECK(json_number(text, "max_score") == doctest::Approx(4.0));
  CHECK(count(text, "\"status\": \"passed\"") == 3);
  CHECK(count(text, "\"status\": \"failed\"") == 3);
  const std::string xml = read_file(junit);
  CHECK(count(xml, "<testcase ") == 6);
  CHECK(count(xml, "<failure ") == 3);
  fs::remove(json);
  fs::remove(junit);
}

TEST_CASE("grader: the printed rerun command runs just the failing case") {
  const auto result = lab_tool({"--source-dir", kFixtureSource, "--build-dir", kFixtureBuild, "grade",
                                "--no-build", "--no-save", "98"});
  const auto at = result.out.find("rerun: ", result.out.find("failed 98.1 fails with a message"));
  REQUIRE_MESSAGE(at != std::string::npos, result.describe());
  const std::string command = result.out.substr(at + 7, result.out.find('\n', at) - at - 7);
  const auto rerun = lab::testing::run({"sh", "-c", command});
  INFO(command, "\n", rerun.describe());
  CHECK(rerun.status.code == 1);
  CHECK(rerun.out.find("TEST CASE:  98.1 fails with a message") != std::string::npos);
  CHECK(rerun.out.find("test cases: 1 | 0 passed | 1 failed") != std::string::npos);
}

TEST_CASE("lab list and lab hint follow the last grade") {
  const fs::path state = fs::path(kFixtureBuild) / "lab-state.txt";
  fs::remove(state);
  const std::vector<std::string> where{"--source-dir", kFixtureSource, "--build-dir", kFixtureBuild};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), where.begin(), where.end());
    return lab_tool(args);
  };
  CHECK(with({"list"}).out.find("progress: 0 / 2 exercises") != std::string::npos);
  (void)with({"grade", "--no-build"});
  const auto listed = with({"list"});
  INFO(listed.describe());
  CHECK(listed.out.find("failing") != std::string::npos);
  const auto first = with({"hint", "98"});
  CHECK(first.out.find("98.1 cases that pass and fail \u2014 hint 1 of 1:") != std::string::npos);
  CHECK(first.out.find("the first hint") != std::string::npos);
  CHECK(with({"hint", "98"}).out.find("that was the last hint") != std::string::npos);
  CHECK(with({"hint", "97"}).status.code == 64);
  fs::remove(state);
}

TEST_CASE("lab run 01 shows both sides and leaves no process behind") {
  AdoptOrphans adopt;
  const auto result = lab_tool({"run", "01"});
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{0, 0});
  CHECK(result.out.find("[server] listening on 127.0.0.1:") != std::string::npos);
  CHECK(result.out.find("[client] HELLO, UDP") != std::string::npos);
  CHECK(result.out.find("[server] stopped by SIGTERM") != std::string::npos);
  CHECK(result.out.find("[lab] client exited with status 0") != std::string::npos);
  CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
}

TEST_CASE("lab run 02 stops cleanly on SIGINT at any moment, leaving no process") {
  AdoptOrphans adopt;
  // Interrupt at three different moments: whenever it lands, lab must end
  // promptly and take its server and client with it.
  for (int lines_before_interrupt : {1, 2, 4}) {
    CAPTURE(lines_before_interrupt);
    lab::SpawnOptions options;
    options.environment = {{"NO_COLOR", "1"}};
    options.new_process_group = true;  // like a terminal's foreground job
    lab::Child tool = lab::Child::spawn({kLab, "run", "02"}, options);
    lab::LineReader reader(tool.output());
    for (int i = 0; i < lines_before_interrupt; ++i) {
      if (!reader.next_line(60s)) {  // generous: `lab run` first brings the build up to date
        break;
      }
    }
    ::kill(-tool.pid(), SIGINT);  // Ctrl-C: the whole foreground group
    const auto status = tool.wait_for(10s);
    REQUIRE_MESSAGE(status, "lab did not end within 10 s of SIGINT");
    std::string rest;
    try {
      rest = reader.read_rest(2s);
    } catch (const lab::TimeoutError&) {
    }
    CHECK_MESSAGE((status->code == 0 || status->code == 130), status->to_string(), "; output: ", rest);
    CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
  }
}
