// The grader's screening of students' files and its list of cases (screen.cpp).
#include "screen.hpp"

#include "selfcheck.hpp"

using namespace lab::selfcheck;

namespace {

const fs::path kSource = LAB_SOURCE;

// The problems screen_student_file finds in `text`, saved as `name`.
std::vector<std::string> screen(const std::string& name, const std::string& text) {
  const fs::path folder = temp_file("screen");
  fs::create_directories(folder);
  std::ofstream(folder / name) << text;
  auto problems = lab::tool::screen_student_file(folder / name);
  fs::remove_all(folder);
  return problems;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string text;
  for (const auto& problem : problems) {
    text += problem + "\n";
  }
  return text;
}

}  // namespace

TEST_CASE("screen: every stub and every reference answer of the lab passes") {
  for (const auto& entry : fs::directory_iterator(kSource / "lessons")) {
    std::ifstream manifest(entry.path() / "lesson.manifest");
    std::string line;
    while (std::getline(manifest, line)) {
      if (line.rfind("files:", 0) != 0) {
        continue;
      }
      std::istringstream files(line.substr(6));
      std::string file;
      while (files >> file) {
        for (const fs::path& path : {entry.path() / file, kSource / "solutions" / entry.path().filename() / file}) {
          if (fs::exists(path)) {
            CAPTURE(path);
            CHECK(joined(lab::tool::screen_student_file(path)) == "");
          }
        }
      }
    }
  }
}

TEST_CASE("screen: the test framework's macros and C++'s words may not be redefined") {
  CHECK(joined(screen("a.cpp", "#define CHECK(x) (void)0\n")).find("a.cpp:1: #define CHECK") != std::string::npos);
  CHECK(!screen("a.cpp", "#undef REQUIRE\n").empty());
  CHECK(!screen("a.cpp", "# /* a comment */ undef DOCTEST_CONFIG_X\n").empty());
  CHECK(!screen("a.cpp", "%:define TEST_CASE(name) void f()\n").empty());
  CHECK(!screen("a.cpp", "#def\\\nine true false\n").empty());
  CHECK(!screen("a.cpp", "#define if(x) if (true)\n").empty());
  CHECK(screen("a.cpp", "#define MY_LIMIT 10\nint x = MY_LIMIT;\n").empty());
}

TEST_CASE("screen: a header the tests include may define only its include guard") {
  CHECK(screen("q.hpp", "#ifndef Q_HPP\n#define Q_HPP\nint f();\n#endif\n").empty());
  CHECK(screen("q.hpp", "#pragma once\nint f();\n").empty());
  CHECK(!screen("q.hpp", "#pragma once\n#define size_t int\n").empty());
  CHECK(!screen("q.hpp", "#ifndef Q_HPP\n#define Q_HPP 1\n#endif\n").empty());
}

TEST_CASE("screen: includes stay inside the lesson, the lab's library and the standard library") {
  CHECK(screen("a.cpp", "#include <vector>\n#include \"udp.hpp\"\n#include \"lab/frame.hpp\"\n").empty());
  CHECK(!screen("a.cpp", "#include <doctest/doctest.h>\n").empty());
  CHECK(!screen("a.cpp", "#include \"../../solutions/01_udp/udp.cpp\"\n").empty());
  CHECK(!screen("a.cpp", "#include \"/autograder/source/hidden/01_udp/test_hidden.cpp\"\n").empty());
  CHECK(!screen("a.cpp", "#define P \"x.h\"\n#include P\n").empty());
  CHECK(!screen("a.cpp", "#  include_next <string>\n#include <tests/x.cpp>\n").empty());
}

TEST_CASE("screen: attributes, asm, token pasting, _Pragma and extern \"C\" are refused, words in strings are not") {
  CHECK(!screen("a.cpp", "__attribute__((constructor)) static void f() {}\n").empty());
  CHECK(!screen("a.cpp", "[[gnu::constructor]] static void f() {}\n").empty());
  CHECK(!screen("a.cpp", "#define J(a, b) a##b\n").empty());
  CHECK(!screen("a.cpp", "_Pragma(\"push_macro(\\\"CHECK\\\")\")\n").empty());
  CHECK(!screen("a.cpp", "#pragma push_macro(\"CHECK\")\n").empty());
  CHECK(!screen("a.cpp", "extern \"C\" int close(int) { return 0; }\n").empty());
  CHECK(!screen("a.cpp", "asm(\".section .preinit_array\");\n").empty());
  CHECK(screen("a.cpp", "// a comment may say doctest, asm and ## freely\n"
                        "const char* text = \"__attribute__ ## asm doctest\";\n"
                        "const char* raw = R\"x(#define CHECK)x\";\n"
                        "[[nodiscard]] int f();\nint g() { return 1'000; }\n")
            .empty());
}

TEST_CASE("screen: the cases come from the test sources, exactly as the test program lists them") {
  const fs::path build = fs::path(kLab).parent_path();
  std::ifstream lessons(build / "lab-lessons.txt");
  std::string lesson;
  int checked = 0;
  while (lessons >> lesson) {
    const fs::path program = build / "lessons" / lesson / ("test" + lesson.substr(0, 2) + "_reference");
    if (!fs::exists(program)) {
      continue;
    }
    CAPTURE(lesson);
    const auto listed = lab::testing::run({program.string(), "--list-test-cases", "--no-version=true"});
    std::vector<std::string> from_program;
    std::istringstream lines(listed.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.rfind("[doctest]", 0) != 0 && line.find_first_not_of('=') != std::string::npos) {
        from_program.push_back(line);
      }
    }
    auto from_sources = lab::tool::cases_in_sources(kSource / "tests" / lesson);
    std::sort(from_program.begin(), from_program.end());
    std::sort(from_sources.begin(), from_sources.end());
    CHECK(from_sources == from_program);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("screen: line splices and literals cannot hide a refused word from it") {
  // A backslash before CR LF, or before blanks and LF, splices lines for the compiler too.
  CHECK(!screen("q.hpp", "#pragma once\r\n#un\\\r\ndef CHECK\r\n").empty());
  CHECK(!screen("a.cpp", "__attri\\\r\nbute__((constructor)) static void f() {}\r\n").empty());
  CHECK(!screen("a.cpp", "#inc\\  \nlude \"/etc/hostname\"\n").empty());
  // extern and "C" on two lines; the allocator replaced.
  CHECK(!screen("a.cpp", "extern\n  \"C\" int close(int) { return 0; }\n").empty());
  CHECK(!screen("a.cpp", "void* operator\nnew(unsigned long size);\n").empty());
  CHECK(!screen("a.cpp", "void operator delete(void* p) noexcept;\n").empty());
  // u8'a' is a character, not a digit separator; x8R"(" is no raw string.
  CHECK(!screen("a.cpp", "static char c = u8'a'; __attribute__((constructor)) static void f() {}\n").empty());
  CHECK(!screen("a.cpp", "#define x8R\nconst char* s = x8R\"(\";\nasm(\"nop\");\nconst char* t = \")\";\n").empty());
  // Files saved with CR LF are still read right.
  CHECK(screen("a.cpp", "#include <vector>\r\nint f() { return 1'000; }\r\n").empty());
}
