// `lab watch [NN]`: regrade a lesson each time one of its files is saved.
#pragma once

#include <string>

#include "grader.hpp"

namespace lab::tool {

// Grades lesson `number` (or the first lesson not yet passed), then again on
// every save of one of its files, printing what changed: cases newly
// passing or failing, the next failing case with its first failure, and the
// hint command. Ends on `q` (or Ctrl-C); returns 0.
int watch(const GradeOptions& options, const std::string& number);

}  // namespace lab::tool
