// Self-checks of the `lab` tool (label "selfcheck"): it grades the reference
// with full marks and the stubs with zero, survives a hanging and a crashing
// case, writes results.json that parses, and `lab run` leaves no process.
#include "lab/sanitizers.hpp"
#include "selfcheck.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using namespace lab::selfcheck;

namespace {

const std::string kFixtureSource = LAB_FIXTURE_SOURCE;
const std::string kFixtureBuild = LAB_FIXTURE_BUILD;

}  // namespace

TEST_CASE("grader: the reference solutions get full marks") {
  const fs::path json = temp_file("reference.json");
  // --timeout 60: this checks the grader's arithmetic, not speed (sanitizer
  // builds are slow). --jobs 4: most cases wait more than they compute.
  const auto result = lab_tool({"grade", "--reference", "--no-build", "--timeout", "60", "--jobs", "4", "--json",
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
  // The lessons the student has started are graded from the shipped stubs,
  // which the build made from git history beside the student's work
  // (tests/cmake/PristineStubs.cmake), laid out as a lab of its own.
  const fs::path pristine = LAB_PRISTINE;
  const fs::path build = fs::path(kLab).parent_path();
  std::vector<std::string> untouched;
  std::vector<std::string> started;
  const std::set<std::string> edited = started_lessons(LAB_SOURCE);
  std::istringstream lessons(read_file(build / "lab-lessons.txt"));
  for (std::string dir; std::getline(lessons, dir);) {
    if (dir.empty()) {
      continue;
    }
    if (!edited.contains(dir)) {
      untouched.push_back(dir.substr(0, 2));
      continue;
    }
    const fs::path missing = pristine / "missing" / (dir + ".txt");
    if (fs::exists(missing)) {
      // ctest shows the case as skipped (SKIP_REGULAR_EXPRESSION).
      std::printf("lab-skip: you have edited lessons/%s, and its shipped stubs cannot be found: %s", dir.c_str(),
                  read_file(missing).c_str());
      return;
    }
    if (!fs::exists(pristine / "build" / "lessons" / dir / ("test" + dir.substr(0, 2) + "_grade"))) {
      std::printf("lab-skip: you have edited lessons/%s; build again (cmake --build --preset default) to build "
                  "its shipped stubs beside your work for this check\n", dir.c_str());
      return;
    }
    started.push_back(dir.substr(0, 2));
  }
  auto grade_to_zero = [](std::vector<std::string> args, const std::vector<std::string>& numbers) {
    const fs::path json = temp_file("stubs.json");
    for (const std::string word : {"grade", "--no-build", "--no-save", "--timeout", "60", "--jobs", "4", "--json"}) {
      args.emplace_back(word);
    }
    args.push_back(json.string());
    args.insert(args.end(), numbers.begin(), numbers.end());
    const auto result = lab_tool(args, 600s);
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
  };
  REQUIRE(untouched.size() + started.size() > 0);
  if (!untouched.empty()) {
    grade_to_zero({}, untouched);
  }
  if (!started.empty()) {
    grade_to_zero({"--source-dir", (pristine / "source").string(), "--build-dir", (pristine / "build").string()},
                  started);
  }
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
  // Where it crashed, and how to look closer.
  CHECK(result.out.find("fixture_cases.cpp:") != std::string::npos);
  CHECK(result.out.find("debug it: gdb -q -ex run -ex bt --args") != std::string::npos);
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

TEST_CASE("lab run 01 right after configuring builds and runs the reference, not the student's stubs") {
  AdoptOrphans adopt;
  // As in a fresh clone that has only been configured: the reference
  // programs are not built yet. The binary comes back either way.
  const fs::path server = fs::path(kLab).parent_path() / "solutions" / "01_udp" / "server";
  const fs::path aside = server.string() + ".aside";
  fs::rename(server, aside);
  const auto result = lab_tool({"run", "01"});
  if (!fs::exists(server)) {
    fs::rename(aside, server);
  } else {
    fs::remove(aside);
  }
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{0, 0});
  CHECK(result.out.find("the reference build") != std::string::npos);
  CHECK(result.out.find("[client] HELLO, UDP") != std::string::npos);
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

TEST_CASE("lab watch grades, grades again when a file is saved, and quits on q, leaving no process") {
  AdoptOrphans adopt;
  // A copy of the fixture lab, whose student file this test saves.
  const fs::path copy = temp_file("watch");
  fs::copy(kFixtureSource, copy, fs::copy_options::recursive);
  lab::SpawnOptions options;
  options.environment = {{"NO_COLOR", "1"}};
  options.pipe_stdin = true;
  lab::Child tool = lab::Child::spawn(
      {kLab, "--source-dir", copy.string(), "--build-dir", kFixtureBuild, "watch", "98", "--no-build"}, options);
  lab::LineReader reader(tool.output());
  std::string seen;
  auto wait_for_line = [&](const std::string& text) {
    for (;;) {
      const auto line = reader.next_line(60s);
      REQUIRE_MESSAGE(line, "lab watch ended before printing '", text, "' after:\n", seen);
      seen += *line + "\n";
      if (line->find(text) != std::string::npos) {
        return;
      }
    }
  };
  wait_for_line("lab watch \u2014 lesson 98");
  wait_for_line("next: 98.1 fails with a message");
  wait_for_line("watching lessons/98_fixture/{answer.cpp}");
  std::ofstream(copy / "lessons" / "98_fixture" / "answer.cpp", std::ios::app) << "// saved again\n";
  wait_for_line("lab watch \u2014 lesson 98");
  wait_for_line("watching lessons/98_fixture/{answer.cpp}");
  lab::write_all(tool.input(), "q");
  const auto status = tool.wait_for(10s);
  REQUIRE_MESSAGE(status, "lab watch did not quit on q");
  CHECK(*status == lab::ExitStatus{0, 0});
  CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
  fs::remove_all(copy);
  fs::remove(fs::path(kFixtureBuild) / "lab-state.txt");
}

TEST_CASE("grader: a failed or timed-out two-program case shows its programs' stderr, bounded, in its message and results.json") {
  AdoptOrphans adopt;
  const fs::path pair = LAB_PAIR;
  const fs::path json = temp_file("pair.json");
  // --timeout 5: 95.2 hangs until the grader's timeout ends it.
  const auto result = lab_tool({"--source-dir", (pair / "source").string(), "--build-dir", (pair / "build").string(),
                                "grade", "--no-build", "--no-save", "--timeout", "5", "--json", json.string()});
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{1, 0});
  const auto failed = result.out.find("failed 95.1 a server and a client that fail");
  REQUIRE(failed != std::string::npos);
  const std::string shown = result.out.substr(failed, result.out.find("rerun: ", failed) - failed);
  // doctest's first failure, then each program: how it ended and its stderr.
  CHECK(shown.find("ERROR: CHECK( result.status.success() )") != std::string::npos);
  CHECK(shown.find(std::string(lab::testing::kProgramsHeading)) != std::string::npos);
  CHECK(shown.find("client exited with status 3; stderr:") != std::string::npos);
  CHECK(shown.find("server (the server) still running at the end of the case, then killed; stderr:") !=
        std::string::npos);
  CHECK(shown.find("server: the reason of the server") != std::string::npos);
  // Fifty lines: the first ten and the last ten, and how many are left out.
  CHECK(shown.find("client line 1\n") != std::string::npos);
  CHECK(shown.find("client line 10\n") != std::string::npos);
  CHECK(shown.find("(30 lines left out)") != std::string::npos);
  CHECK(shown.find("client line 25\n") == std::string::npos);
  CHECK(shown.find("client line 50\n") != std::string::npos);
  const std::string text = read_file(json);
  REQUIRE(JsonChecker(text).valid());
  CHECK(text.find("server: the reason of the server") != std::string::npos);
  CHECK(text.find("client line 50\\n") != std::string::npos);
  CHECK(text.find("(30 lines left out)") != std::string::npos);
  // A program that crashed: the command that runs it under the debugger.
  const auto crashed = result.out.find("failed 95.1 a server that crashes");
  REQUIRE(crashed != std::string::npos);
  const std::string crash = result.out.substr(crashed, result.out.find("rerun: ", crashed) - crashed);
  CHECK(crash.find("server (the server) killed by SIGSEGV") != std::string::npos);
  CHECK(crash.find("debug it: gdb -q -ex run -ex bt --args /") != std::string::npos);
  CHECK(crash.find("/server --host 127.0.0.1 --port 0") != std::string::npos);
  // A case killed at its timeout: what it had found wrong, and what its
  // servers, still running, had written on stderr by then (the flood bounded).
  // Not under ThreadSanitizer, where the tests' main keeps no watch thread.
  if (lab::testing::kThreadSanitizer) {
    fs::remove(json);
    return;
  }
  const auto timed_out = result.out.find("timed out 95.2 a case that runs out of time");
  REQUIRE(timed_out != std::string::npos);
  const std::string hung = result.out.substr(timed_out, result.out.find("rerun: ", timed_out) - timed_out);
  CHECK(hung.find("exceeded 5 s") != std::string::npos);
  CHECK(hung.find("the test saw no reply before it hung") != std::string::npos);
  CHECK(hung.find(std::string(lab::testing::kProgramsHeading)) != std::string::npos);
  CHECK(hung.find("server (the server) still running when the case ran out of time; stderr:") != std::string::npos);
  CHECK(hung.find("server: waiting for a request that never comes") != std::string::npos);
  CHECK(hung.find("flood (the server) still running when the case ran out of time; stderr:") != std::string::npos);
  CHECK(hung.find("flood: the same line again") != std::string::npos);
  CHECK(hung.find(" lines left out) ...") != std::string::npos);
  CHECK(text.find("server: waiting for a request that never comes") != std::string::npos);
  CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
  fs::remove(json);
}
