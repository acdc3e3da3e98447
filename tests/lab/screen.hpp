// What the grader checks before it trusts a build: which cases exist (read
// from the lab's own test sources, never from a binary that student code is
// linked into) and whether the student's files stay out of the tests' way.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lab::tool {

// The names of the TEST_CASEs in the .cpp files of `folder` (not recursive),
// in file then source order. Throws std::runtime_error for a name the grader
// cannot filter on exactly ('*', '?', a line break) or a duplicate name.
std::vector<std::string> cases_in_sources(const std::filesystem::path& folder);

// The reasons `file`, a student's file, is refused, each "file:line: why";
// empty when it may be graded. A student's file may not define or undefine
// the test framework's macros (or C++ keywords), include the framework, a
// file outside its lesson and the lab's library, or a computed path, paste
// tokens, or use attributes, asm or _Pragma: the ways a file compiled into
// the test program could change the tests or run before them.
std::vector<std::string> screen_student_file(const std::filesystem::path& file);

}  // namespace lab::tool
