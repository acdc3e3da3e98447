#include "screen.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace lab::tool {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + file.string());
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Where the token that ends just before `at` starts.
std::size_t token_start(const std::string& text, std::size_t at) {
  while (at > 0 && (is_identifier_char(text[at - 1]) || text[at - 1] == '.' || text[at - 1] == '\'')) {
    --at;
  }
  return at;
}

// The R at `at` starts a raw string only after nothing or exactly u8, u, U or L.
bool is_raw_prefix(const std::string& text, std::size_t at) {
  std::size_t start = at;
  while (start > 0 && is_identifier_char(text[start - 1])) {
    --start;
  }
  const std::string prefix = text.substr(start, at - start);
  return prefix.empty() || prefix == "u8" || prefix == "u" || prefix == "U" || prefix == "L";
}

// True if the quote at `at` is a digit separator: inside a number (1'000, 0x1'f).
bool in_number(const std::string& text, std::size_t at) {
  const std::size_t start = token_start(text, at);
  return start < at && std::isdigit(static_cast<unsigned char>(text[start])) != 0 && at + 1 < text.size() &&
         std::isxdigit(static_cast<unsigned char>(text[at + 1])) != 0;
}

// The source as the preprocessor sees its lines: comments become spaces
// (keeping line breaks, so line numbers hold), backslash-newlines are joined
// (a directive split over lines is one line), and `%:` (the digraph of
// '#') becomes '#'. C++17 has no trigraphs. `code` keeps string and character
// literals; `bare` blanks their contents, for looking at tokens only.
struct Lexed {
  std::string code;
  std::string bare;
};

Lexed lex(const std::string& original) {
  // CR LF is a line break like LF (and a backslash before it splices lines,
  // as the compiler does); so is a backslash followed by blanks, then LF.
  std::string text;
  for (std::size_t i = 0; i < original.size(); ++i) {
    if (!(original[i] == '\r' && i + 1 < original.size() && original[i + 1] == '\n')) {
      text += original[i];
    }
  }
  std::string joined;
  int spliced = 0;  // line breaks removed by splicing, put back at the end of the line
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      std::size_t next = i + 1;
      while (next < text.size() && (text[next] == ' ' || text[next] == '\t' || text[next] == '\r' ||
                                    text[next] == '\f' || text[next] == '\v')) {
        ++next;
      }
      if (next < text.size() && text[next] == '\n') {
        i = next;
        ++spliced;
        continue;
      }
    }
    joined += text[i];
    if (text[i] == '\n') {
      joined.append(static_cast<std::size_t>(spliced), '\n');
      spliced = 0;
    }
  }
  Lexed out;
  enum class State { kCode, kLineComment, kBlockComment, kString, kChar, kRaw } state = State::kCode;
  std::string raw_end;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    const char c = joined[i];
    const char next = i + 1 < joined.size() ? joined[i + 1] : '\0';
    switch (state) {
      case State::kCode:
        if (c == '/' && next == '/') {
          state = State::kLineComment;
          out.code += ' ';
          out.bare += ' ';
          ++i;
        } else if (c == '/' && next == '*') {
          state = State::kBlockComment;
          out.code += ' ';
          out.bare += ' ';
          ++i;
        } else if (c == 'R' && next == '"' && is_raw_prefix(joined, i)) {
          const auto open = joined.find('(', i + 2);
          if (open == std::string::npos) {
            out.code += c;
            out.bare += c;
            break;
          }
          raw_end = ")" + joined.substr(i + 2, open - i - 2) + "\"";
          state = State::kRaw;
          out.code += joined.substr(i, open - i + 1);
          out.bare += "R\"" + std::string(open - i - 1, ' ');
          i = open;
        } else if (c == '"') {
          state = State::kString;
          out.code += c;
          out.bare += c;
        } else if (c == '\'' && !in_number(joined, i)) {
          state = State::kChar;  // not a digit separator (1'000)
          out.code += c;
          out.bare += c;
        } else if (c == '%' && next == ':') {
          out.code += '#';
          out.bare += '#';
          ++i;
        } else {
          out.code += c;
          out.bare += c;
        }
        break;
      case State::kLineComment:
        if (c == '\n') {
          state = State::kCode;
          out.code += c;
          out.bare += c;
        }
        break;
      case State::kBlockComment:
        if (c == '*' && next == '/') {
          state = State::kCode;
          ++i;
        } else if (c == '\n') {
          out.code += c;
          out.bare += c;
        }
        break;
      case State::kString:
      case State::kChar: {
        const char close = state == State::kString ? '"' : '\'';
        if (c == '\\' && next != '\0') {
          out.code += c;
          out.code += next;
          out.bare += "  ";
          ++i;
        } else if (c == close || c == '\n') {
          state = State::kCode;
          out.code += c;
          out.bare += c;
        } else {
          out.code += c;
          out.bare += ' ';
        }
        break;
      }
      case State::kRaw:
        if (joined.compare(i, raw_end.size(), raw_end) == 0) {
          state = State::kCode;
          out.code += raw_end;
          out.bare += std::string(raw_end.size() - 1, ' ') + "\"";
          i += raw_end.size() - 1;
        } else {
          out.code += c;
          out.bare += c == '\n' ? '\n' : ' ';
        }
        break;
    }
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  return lines;
}

// Macro names a student's file may not define or undefine: the test
// framework's (so the tests' CHECKs, REQUIREs and TEST_CASEs mean what they
// say), and C++'s own words (so `true` and `if` do too).
bool is_protected_macro(const std::string& name) {
  static const std::array<std::string_view, 18> kFrameworkPrefixes{
      "DOCTEST", "CHECK", "REQUIRE", "WARN", "FAIL", "TEST_", "SUBCASE", "INFO", "CAPTURE",
      "MESSAGE", "SCENARIO", "GIVEN", "WHEN", "THEN", "AND_", "REGISTER_", "TYPE_TO_STRING", "FAST_"};
  for (const auto prefix : kFrameworkPrefixes) {
    if (name.rfind(prefix, 0) == 0) {
      return true;
    }
  }
  static const std::set<std::string, std::less<>> kWords{
      "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class",
      "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "co_await", "co_return",
      "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else", "enum",
      "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int",
      "long", "mutable", "namespace", "new", "noexcept", "not", "nullptr", "operator", "or", "private",
      "protected", "public", "register", "reinterpret_cast", "requires", "return", "short", "signed",
      "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this",
      "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned",
      "using", "virtual", "void", "volatile", "wchar_t", "while", "main", "std", "lab", "assert",
      "exit", "abort", "doctest"};
  return kWords.contains(name);
}

std::string word_at(const std::string& text, std::size_t at) {
  std::size_t end = at;
  while (end < text.size() && is_identifier_char(text[end])) {
    ++end;
  }
  return text.substr(at, end - at);
}

std::size_t skip_blanks(const std::string& text, std::size_t at) {
  while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\r')) {
    ++at;
  }
  return at;
}

// Why an #include's target is off limits, or "".
std::string include_problem(const std::string& rest) {
  const std::size_t at = skip_blanks(rest, 0);
  if (at >= rest.size() || (rest[at] != '"' && rest[at] != '<')) {
    return "#include of a computed name";
  }
  const char close = rest[at] == '"' ? '"' : '>';
  const auto end = rest.find(close, at + 1);
  const std::string target = rest.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
  if (target.find("doctest") != std::string::npos) {
    return "#include of the test framework";
  }
  if (target.empty() || target.front() == '/' || target.find("..") != std::string::npos ||
      target.find("solutions") != std::string::npos || target.find("tests/") != std::string::npos ||
      target.find('\\') != std::string::npos) {
    return "#include \"" + target + "\": only the lesson's headers, lab/... and the standard library";
  }
  return "";
}

}  // namespace

std::vector<std::string> cases_in_sources(const fs::path& folder) {
  std::vector<fs::path> files;
  if (fs::is_directory(folder)) {
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.is_regular_file() && entry.path().extension() == ".cpp") {
        files.push_back(entry.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& file : files) {
    const std::string code = lex(read_text(file)).code;
    const auto lines = lines_of(code);
    for (std::size_t n = 0; n < lines.size(); ++n) {
      const std::string& line = lines[n];
      std::size_t at = skip_blanks(line, 0);
      if (line.compare(at, 10, "TEST_CASE(") != 0) {
        continue;
      }
      at = skip_blanks(line, at + 10);
      const std::string where = file.filename().string() + ":" + std::to_string(n + 1);
      if (at >= line.size() || line[at] != '"') {
        throw std::runtime_error(where + ": a TEST_CASE's name must be a plain string literal");
      }
      std::string name;
      for (++at; at < line.size() && line[at] != '"'; ++at) {
        if (line[at] == '\\' && at + 1 < line.size()) {
          ++at;
          if (line[at] != '"' && line[at] != '\\') {
            throw std::runtime_error(where + ": a TEST_CASE's name may escape only \" and \\");
          }
        }
        name += line[at];
      }
      if (name.find_first_of("*?") != std::string::npos || name.empty()) {
        throw std::runtime_error(where + ": a TEST_CASE's name may not be empty or hold '*' or '?'");
      }
      if (!seen.insert(name).second) {
        throw std::runtime_error(where + ": two TEST_CASEs are named '" + name + "'");
      }
      names.push_back(name);
    }
  }
  return names;
}

std::vector<std::string> screen_student_file(const fs::path& file) {
  const Lexed lexed = lex(read_text(file));
  const auto code = lines_of(lexed.code);
  const auto bare = lines_of(lexed.bare);
  const std::string extension = file.extension().string();
  const bool header = extension == ".hpp" || extension == ".h" || extension == ".hh";
  std::vector<std::string> problems;
  auto refuse = [&](std::size_t line, const std::string& why) {
    problems.push_back(file.filename().string() + ":" + std::to_string(line + 1) + ": " + why);
  };
  std::string guard;  // a header's include guard, the one macro it may define
  for (std::size_t n = 0; n < code.size(); ++n) {
    const std::string& line = code[n];
    const std::string& tokens = bare[n];
    if (tokens.find("##") != std::string::npos) {
      refuse(n, "'##' (token pasting)");
    }
    for (std::size_t i = 0; i < tokens.size();) {
      if (!is_identifier_char(tokens[i]) || (i > 0 && is_identifier_char(tokens[i - 1]))) {
        ++i;
        continue;
      }
      const std::string word = word_at(tokens, i);
      static const std::set<std::string, std::less<>> kRefused{
          "__attribute__", "__attribute", "asm", "__asm", "__asm__", "_Pragma", "__pragma", "gnu", "__gnu__",
          "clang", "constructor", "destructor", "init_priority", "init_array", "preinit_array", "doctest"};
      if (kRefused.contains(word)) {
        refuse(n, "'" + word + "': attributes, asm and the test framework are off limits in a student's file");
      }
      i += word.size();
    }
    std::size_t at = skip_blanks(line, 0);
    if (at < line.size() && line[at] == '#') {
      at = skip_blanks(line, at + 1);
      const std::string directive = word_at(line, at);
      const std::size_t after = skip_blanks(line, at + directive.size());
      const std::string name = word_at(line, after);
      if (directive == "ifndef" && header && guard.empty()) {
        guard = name;
      } else if (directive == "define" || directive == "undef") {
        if (is_protected_macro(name)) {
          refuse(n, "#" + directive + " " + name + ": a student's file may not change the test framework or C++");
        } else if (header && !(directive == "define" && name == guard &&
                               skip_blanks(line, after + name.size()) >= line.size())) {
          refuse(n, "#" + directive + " " + name +
                        ": the tests include this header, so it may define no macro but its include guard");
        }
      } else if (directive == "include" || directive == "include_next" || directive == "import") {
        if (const std::string why = include_problem(line.substr(at + directive.size())); !why.empty()) {
          refuse(n, why);
        }
      } else if (directive == "pragma" && name != "once") {
        refuse(n, "#pragma " + name + ": only #pragma once");
      }
    }
  }
  // Across line breaks: `extern` before a string ("C"), and replacing the
  // allocator (operator new/delete), which sees every block the test program
  // allocates, the verdict's secret among them.
  const std::string& all = lexed.bare;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!is_identifier_char(all[i]) || (i > 0 && is_identifier_char(all[i - 1]))) {
      continue;
    }
    const std::string word = word_at(all, i);
    std::size_t after = i + word.size();
    while (after < all.size() && std::isspace(static_cast<unsigned char>(all[after])) != 0) {
      ++after;
    }
    const auto line = static_cast<std::size_t>(std::count(all.begin(), all.begin() + static_cast<long>(i), '\n'));
    if (word == "extern" && after < all.size() && all[after] == '"') {
      refuse(line, "extern \"C\": a student's file may not define C functions (they would replace the C library's)");
    }
    if (word == "operator" && (word_at(all, after) == "new" || word_at(all, after) == "delete")) {
      refuse(line, "operator " + word_at(all, after) + ": a student's file may not replace the allocator");
    }
    i += word.size() - 1;
  }
  std::sort(problems.begin(), problems.end());
  problems.erase(std::unique(problems.begin(), problems.end()), problems.end());
  return problems;
}

}  // namespace lab::tool
