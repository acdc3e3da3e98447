// The grader under attack (label "selfcheck"): each folder of
// fixtures/attacks/ is a submission of lesson 97's files that tries to gain
// points without solving anything, to break the grader, or to outlive it.
// Each is graded through `lab grade` as an instructor would (as root, the
// cases run as an unprivileged user) and as a student would (as a normal
// user), and must gain no points, leave a valid and complete results.json
// and leave no process behind. The honest submission is the control.
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "selfcheck.hpp"

using namespace lab::selfcheck;

namespace {

const fs::path kAttacks = LAB_ATTACKS;
constexpr bool kSanitized = LAB_SANITIZED;

enum class As { kRoot, kNormalUser };

struct Graded {
  lab::testing::ProgramResult run;
  std::string json;
};

// A folder the grading user may write results.json into, removed at the end.
class ResultsFolder {
 public:
  explicit ResultsFolder(const std::optional<std::pair<uid_t, gid_t>>& owner) {
    path_ = temp_file("attack-results");
    fs::create_directories(path_);
    if (owner) {
      REQUIRE(::chown(path_.c_str(), owner->first, owner->second) == 0);
    }
  }
  ~ResultsFolder() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  ResultsFolder(const ResultsFolder&) = delete;
  ResultsFolder& operator=(const ResultsFolder&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::pair<uid_t, gid_t> nobody() {
  const passwd* entry = ::getpwnam("nobody");
  REQUIRE_MESSAGE(entry != nullptr, "these checks need the user 'nobody'");
  return {entry->pw_uid, entry->pw_gid};
}

// Grades submission `attack`; nullopt when this machine cannot grade that way
// (as root needs root; as a normal user, from root, runs lab as nobody).
std::optional<Graded> grade(const std::string& attack, As as, const std::string& jobs = "2") {
  if (as == As::kRoot && ::geteuid() != 0) {
    MESSAGE("not root: the grading path of an instructor (as root, cases as nobody) is not checked here");
    return std::nullopt;
  }
  std::optional<std::pair<uid_t, gid_t>> user;
  if (as == As::kNormalUser && ::geteuid() == 0) {
    user = nobody();  // root plays the normal user
  }
  const ResultsFolder folder(user);
  const fs::path json = folder.path() / "results.json";
  lab::SpawnOptions options;
  options.environment = {{"NO_COLOR", "1"}};
  options.user = user;
  const fs::path root = kAttacks / attack;
  Graded graded;
  graded.run = lab::testing::run({kLab, "--source-dir", (root / "source").string(), "--build-dir",
                                  (root / "build").string(), "grade", "--no-build", "--no-save", "--jobs", jobs,
                                  "--json", json.string()},
                                 "", 120s, options);
  graded.json = read_file(json);
  return graded;
}

// What every attack must come to: no points, a valid results.json holding
// all four cases, and not one process left.
void check_no_points(const Graded& graded) {
  INFO(graded.run.describe());
  INFO("results.json: ", graded.json);
  CHECK(graded.run.status == lab::ExitStatus{1, 0});
  REQUIRE(JsonChecker(graded.json).valid());
  CHECK(json_number(graded.json, "score") == 0);
  CHECK(json_number(graded.json, "max_score") == doctest::Approx(4.0));
  CHECK(count(graded.json, "\"status\": \"failed\"") == 4);
  CHECK(count(graded.json, "\"status\": \"passed\"") == 0);
  CHECK(graded.json.find("grading did not finish") == std::string::npos);
  CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
}

void check_attack(const std::string& attack, As as, const std::string& why) {
  AdoptOrphans adopt;
  const auto graded = grade(attack, as);
  if (graded) {
    check_no_points(*graded);
    CHECK_MESSAGE(graded->run.out.find(why) != std::string::npos, graded->run.out);
  }
}

void check_both_ways(const std::string& attack, const std::string& why) {
  SUBCASE("graded as root, the cases as nobody") { check_attack(attack, As::kRoot, why); }
  SUBCASE("graded as a normal user") { check_attack(attack, As::kNormalUser, why); }
}

// A process of `user` holding `count` threads, each asleep until the
// process is killed (when this object goes): the grading user's own load,
// such as a desktop user's browser.
class BusyUser {
 public:
  BusyUser(std::pair<uid_t, gid_t> user, int count) {
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      char made = 'n';
      if (::setgid(user.second) == 0 && ::setuid(user.first) == 0) {
        pthread_attr_t small{};
        ::pthread_attr_init(&small);
        ::pthread_attr_setstacksize(&small, 64 * 1024);
        int started = 0;
        for (; started < count; ++started) {
          pthread_t thread{};
          if (::pthread_create(&thread, &small, [](void*) -> void* {
                for (;;) {
                  ::pause();
                }
              }, nullptr) != 0) {
            break;
          }
        }
        made = started == count ? 'y' : 'n';
      }
      (void)::write(ready[1], &made, 1);
      for (;;) {
        ::pause();
      }
    }
    ::close(ready[1]);
    char made = 'n';
    const bool heard = ::read(ready[0], &made, 1) == 1;
    ::close(ready[0]);
    REQUIRE_MESSAGE((heard && made == 'y'), "could not start ", count, " threads as the grading user");
  }
  ~BusyUser() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  BusyUser(const BusyUser&) = delete;
  BusyUser& operator=(const BusyUser&) = delete;

 private:
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("grader: as root, a grading user already running 2,100 threads still has room for the cases") {
  if (::geteuid() != 0 || kSanitized) {
    MESSAGE("needs root and a plain build: the grading user's tasks are counted only when grading as root");
    return;
  }
  // RLIMIT_NPROC counts a user's threads too: the grader allows the tasks
  // the user has when grading starts, plus room for the cases.
  AdoptOrphans adopt;
  const BusyUser busy(nobody(), 2100);
  const auto graded = grade("honest", As::kRoot, "1");
  REQUIRE(graded);
  INFO(graded->run.describe());
  CHECK(graded->run.status == lab::ExitStatus{0, 0});
  CHECK(json_number(graded->json, "score") == doctest::Approx(4.0));
}

TEST_CASE("grader attack: the honest submission gets full marks, both ways") {
  for (const As as : {As::kRoot, As::kNormalUser}) {
    AdoptOrphans adopt;
    const auto graded = grade("honest", as);
    if (!graded) {
      continue;
    }
    INFO(graded->run.describe());
    CHECK(graded->run.status == lab::ExitStatus{0, 0});
    REQUIRE(JsonChecker(graded->json).valid());
    CHECK(json_number(graded->json, "score") == doctest::Approx(4.0));
    CHECK(count(graded->json, "\"status\": \"passed\"") == 4);
    CHECK(count(graded->json, "\"execution_time\": ") == 4);
    CHECK(count(graded->json, "\"visibility\": \"visible\"") == 4);
    CHECK(graded->run.err.find(as == As::kRoot ? "every case runs as user nobody" : "grading as yourself") !=
          std::string::npos);
  }
}

TEST_CASE("grader attack: exit(0) or quick_exit(0) from an exercise is not a pass") {
  check_both_ways("exit-zero", "the case ended without reporting a result (exited with status 0)");
}

TEST_CASE("grader attack: doctest's success lines printed before main() are not a pass") {
  check_both_ways("forged-output", "the case ended without reporting a result");
}

TEST_CASE("grader attack: exec'ing a passing test program hands it no verdict") {
  check_both_ways("exec-reference", "the case ended without reporting a result");
}

TEST_CASE("grader attack: a case that closes its output and hangs is stopped at its timeout") {
  check_both_ways("close-and-hang", "exceeded 2 s");
}

TEST_CASE("grader attack: a daemon that rewrites results.json dies with its case") {
  check_both_ways("results-daemon", "failed 97.1 the answer is 42");
}

TEST_CASE("grader attack: 4 GiB of memory and a fork bomb are held by limits, and nothing outlives the case") {
  if (kSanitized) {
    // A sanitizer reserves terabytes of address space: no memory limit there.
    MESSAGE("sanitizer build: the memory limit is not applied, so it is not checked");
    return;
  }
  check_both_ways("resources", "std::bad_alloc");
}

TEST_CASE("grader attack: as root, a case can neither kill the grader nor write results.json") {
  AdoptOrphans adopt;
  if (const auto graded = grade("kill-grader", As::kRoot)) {
    check_no_points(*graded);
  }
}

TEST_CASE("grader attack: as root, a case cannot replace the test programs") {
  AdoptOrphans adopt;
  const fs::path program = kAttacks / "overwrite-binaries" / "build" / "lessons" / "97_attack" / "test97_grade";
  const auto before = fs::last_write_time(program);
  if (const auto graded = grade("overwrite-binaries", As::kRoot)) {
    check_no_points(*graded);
    CHECK(fs::last_write_time(program) == before);
  }
}

TEST_CASE("grader attack: files that reach into the tests are refused before they are compiled") {
  const std::vector<std::pair<std::string, std::string>> refused{
      {"refused-macro-header", "#undef CHECK"},
      {"refused-test-cases", "#include of the test framework"},
      {"refused-include-solution", "solutions/01_udp/udp.cpp"},
      {"refused-constructor", "'__attribute__'"},
      {"refused-extern-c", "extern \"C\""},
      // A backslash before CR LF splices lines for the compiler, not for the screening.
      {"refused-crlf-splice", "#undef CHECK"},
      // `extern` and "C" on two lines.
      {"refused-extern-newline", "extern \"C\""},
      // A replaced operator new that keeps every block it hands out: the verdict's secret among them.
      {"refused-operator-new", "operator new"},
  };
  for (const auto& entry : refused) {
    const std::string& attack = entry.first;  // a name of its own: CAPTURE cannot take a structured binding
    const std::string& why = entry.second;
    CAPTURE(attack);
    check_attack(attack, As::kNormalUser, why);
    // Never compiled: there is no program to run.
    CHECK_FALSE(fs::exists(kAttacks / attack / "build" / "lessons" / "97_attack" / "test97_grade"));
  }
}

TEST_CASE("grader: a data race costs points in a `sanitize: thread` lesson, with ThreadSanitizer's report") {
  if (kSanitized) {
    MESSAGE("sanitizer build: the race fixture is built only in plain builds");
    return;
  }
  AdoptOrphans adopt;
  const fs::path race = LAB_RACE;
  const ResultsFolder folder(std::nullopt);
  const fs::path json = folder.path() / "results.json";
  const auto result = lab_tool({"--source-dir", (race / "source").string(), "--build-dir", (race / "build").string(),
                                "grade", "--no-build", "--no-save", "--json", json.string()});
  INFO(result.describe());
  CHECK(result.status == lab::ExitStatus{1, 0});
  const std::string text = read_file(json);
  REQUIRE(JsonChecker(text).valid());
  // The plain run passes (the race changes no result); the second fails.
  CHECK(count(text, "\"status\": \"passed\"") == 1);
  CHECK(count(text, "\"status\": \"failed\"") == 1);
  CHECK(json_number(text, "score") == doctest::Approx(1.0));
  CHECK(result.out.find("failed 96.1 two threads set the answer (under ThreadSanitizer)") != std::string::npos);
  // The first warning, not the summary; under each access the answer's own
  // frame (lessons/...) first, then the library's innermost frame.
  const auto failed = result.out.find("failed 96.1 two threads set the answer (under ThreadSanitizer)");
  REQUIRE(failed != std::string::npos);
  const std::string shown = result.out.substr(failed, result.out.find("rerun: ", failed) - failed);
  CHECK(shown.find("  | WARNING: ThreadSanitizer: data race") != std::string::npos);
  CHECK(shown.find("SUMMARY") == std::string::npos);
  const auto ours = shown.find("lessons/96_race/race.cpp:");
  const auto library = shown.find("stl_algobase.h:");
  CHECK(ours != std::string::npos);
  CHECK(library != std::string::npos);
  CHECK(ours < library);
  CHECK_MESSAGE(lab::testing::child_pids().empty(), describe_children());
}
