// `lab _case`: the process between the grader and one graded case. It is a
// child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER), so every process the
// case starts, even one that left with setsid() or a double fork, ends up its
// child; when the case ends or its time is up, it kills and reaps them all.
#pragma once

#include <string>
#include <vector>

namespace lab::tool {

// The exit status when the case ran out of time (as timeout(1) has it).
inline constexpr int kCaseTimedOut = 124;

// args: TIMEOUT_MS -- PROGRAM ARGS... Exits as the case did: with its status,
// or killed by its signal; kCaseTimedOut after TIMEOUT_MS.
int supervise_case(const std::vector<std::string>& args);

// Kills every process whose parent is this one, and reaps them, until none
// is left. For a subreaper: what a killed child leaves behind comes back here.
void kill_own_children();

}  // namespace lab::tool
