// The support helpers that make doctest checks themselves. A separate object
// file, so that programs without doctest (the benchmarks) can link the rest.
#include <doctest/doctest.h>

#include <algorithm>

#include "lab/testing.hpp"

namespace lab::testing {

ProgramResult run_refused_client(const std::string& client, const std::vector<std::string>& extra) {
  // Bound but never listening, for the whole run: a connect there is refused.
  const RefusingPort refusing;
  std::vector<std::string> argv{client, "--port", std::to_string(refusing.port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ProgramResult result = run(argv);
  INFO(result.describe());
  CHECK(result.status.code == 1);
  CHECK(result.err.find("Connection refused") != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  return result;
}

}  // namespace lab::testing
