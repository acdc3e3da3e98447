# Self-check (cmake -P): `lab handout` writes a copy without solutions/ that
# configures and builds on its own, whose grader works (every case failing on
# the stubs, hidden tests included, a compile error shown where it is), and
# whose test preset says plainly that the project's own suite needs the
# solutions.
file(REMOVE_RECURSE "${HANDOUT}" "${HANDOUT}-hidden")

# The handout carries the student's files: once lesson 01 is started, the
# handout gets the shipped stubs instead, which the build found in git
# history (PRISTINE, see tests/cmake/PristineStubs.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/StubHashes.cmake")
lab_shipped_stubs_for(01_udp "${PRISTINE}" "source/lessons/01_udp/lesson.manifest" shipped)
if(shipped STREQUAL "skip")
  return()
endif()

function(step)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
  set(step_out "${out}${err}" PARENT_SCOPE)
  set(step_status "${status}" PARENT_SCOPE)
endfunction()

step("${LAB}" handout "${HANDOUT}")
if(NOT step_status EQUAL 0)
  message(FATAL_ERROR "lab handout failed:\n${step_out}")
endif()
if(EXISTS "${HANDOUT}/solutions")
  message(FATAL_ERROR "the handout contains solutions/")
endif()
if(shipped)
  lab_stub_files(01_udp files)
  foreach(name IN LISTS files)
    file(COPY_FILE "${shipped}/${name}" "${HANDOUT}/lessons/01_udp/${name}")
  endforeach()
endif()

set(build "${HANDOUT}/build/default")
step(${CMAKE_COMMAND} -S "${HANDOUT}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLAB_LESSONS=01)
if(NOT step_status EQUAL 0 OR NOT step_out MATCHES "solutions/ is absent")
  message(FATAL_ERROR "the handout does not configure, or does not say solutions/ is absent:\n${step_out}")
endif()
# Lesson 01 only: enough to prove the build, the grader and `lab run --mine`
# work. The handout's own `lab` is the same sources and flags as the lab that
# runs this check, which the main build compiled: the check asks Ninja for its
# plan (-n) instead of compiling it again, and runs this one on the handout.
# That halves the check's share of the suite's time.
step(${CMAKE_COMMAND} --build "${build}" --target lesson01_server lesson01_client test01_grade)
if(NOT step_status EQUAL 0)
  message(FATAL_ERROR "the handout does not build:\n${step_out}")
endif()
step(${CMAKE_COMMAND} --build "${build}" --target lab -- -n)
if(NOT step_status EQUAL 0)
  message(FATAL_ERROR "the handout's lab tool has no build plan:\n${step_out}")
endif()
# A plan names sources, not the headers they include: every file of the
# repository that the main build's compiler read for `lab` (Ninja's record of
# its dependencies) must be in the handout too.
# (With another generator than Ninja, there is no such record to read.)
if(NINJA MATCHES "ninja[^/]*$")
  step("${NINJA}" -C "${MAIN_BUILD}" -t deps)
  if(NOT step_status EQUAL 0)
    message(FATAL_ERROR "ninja -t deps failed in ${MAIN_BUILD}:\n${step_out}")
  endif()
  string(REPLACE "\n" ";" deps_lines "${step_out}")
  set(in_lab FALSE)
  set(lacking "")
  foreach(line IN LISTS deps_lines)
    if(line MATCHES "^([^ ].*): #deps")
      string(FIND "${CMAKE_MATCH_1}" "tests/lab/CMakeFiles/lab.dir/" at)
      set(in_lab FALSE)
      if(at EQUAL 0)
        set(in_lab TRUE)
      endif()
    elseif(in_lab AND line MATCHES "^    (/.*)$")
      set(file "${CMAKE_MATCH_1}")
      string(FIND "${file}" "${SOURCE}/" in_source)
      string(FIND "${file}" "${MAIN_BUILD}/" in_build)
      if(in_source EQUAL 0 AND NOT in_build EQUAL 0)
        file(RELATIVE_PATH relative "${SOURCE}" "${file}")
        if(NOT EXISTS "${HANDOUT}/${relative}")
          list(APPEND lacking "${relative}")
        endif()
      endif()
    endif()
  endforeach()
  if(lacking)
    list(REMOVE_DUPLICATES lacking)
    message(FATAL_ERROR "the lab tool needs files the handout lacks: ${lacking}")
  endif()
endif()
set(lab_in_handout "${LAB}" --source-dir "${HANDOUT}" --build-dir "${build}")
if(SANITIZER)
  # A sanitizer build's lab cannot grade a plain build: the memory limit it
  # sets for each case leaves its own runtime, in `lab _case`, no room. Here
  # the handout's lab is compiled and graded with, as a student would.
  step(${CMAKE_COMMAND} --build "${build}" --target lab)
  if(NOT step_status EQUAL 0)
    message(FATAL_ERROR "the handout's lab tool does not build:\n${step_out}")
  endif()
  set(lab_in_handout "${build}/lab")
endif()

step(${lab_in_handout} grade 01 --no-build)
if(NOT step_status EQUAL 1 OR NOT step_out MATCHES "NOT STARTED not implemented: exercise 01.1"
   OR NOT step_out MATCHES "0.00 / 12")
  message(FATAL_ERROR "grading the handout's stubs did not give 0 / 12 with 'not implemented':\n${step_out}")
endif()

step(${lab_in_handout} run 01 --mine)
if(NOT step_out MATCHES "not implemented: exercise 01")
  message(FATAL_ERROR "lab run 01 --mine in the handout did not reach the student's stub:\n${step_out}")
endif()

# Hidden tests from outside the repository, with their own points. A copy:
# graded as root, the grader makes the hidden tests' folder its own alone.
file(COPY "${EXTRA}/" DESTINATION "${HANDOUT}-hidden")
step(${lab_in_handout} grade 01 --extra "${HANDOUT}-hidden" --json "${HANDOUT}-results.json")
if(NOT step_out MATCHES "01.h hidden tests" OR NOT step_out MATCHES "0.00 / 14")
  message(FATAL_ERROR "lab grade --extra did not grade the hidden tests:\n${step_out}")
endif()
# Gradescope shows a hidden test's result only once the grades are published.
file(READ "${HANDOUT}-results.json" results)
if(NOT results MATCHES "\"01.h hidden: uppercase leaves digits alone\"[^}]*\"visibility\": \"after_published\"")
  message(FATAL_ERROR "the hidden test is not marked after_published in results.json:\n${results}")
endif()
file(REMOVE "${HANDOUT}-results.json")

step(${CMAKE_CTEST_COMMAND} --test-dir "${build}" -LE "grade|bench")
if(step_status EQUAL 0 OR NOT step_out MATCHES "needs the reference solutions")
  message(FATAL_ERROR "the handout's own-suite tests do not say they need solutions/:\n${step_out}")
endif()

# A compile error in the student's file: lab grade shows the compiler's
# first error, placed from lessons/ on, with the source line under it.
file(APPEND "${HANDOUT}/lessons/01_udp/udp.cpp" "\nint lab_broken() { return 1 }\n")
step(${lab_in_handout} grade 01)
if(NOT step_status EQUAL 1 OR NOT step_out MATCHES "lessons/01_udp/udp\\.cpp:[0-9]+:[0-9]+: error: expected [^ ]*;"
   OR NOT step_out MATCHES "return 1 }")
  message(FATAL_ERROR "lab grade does not show a compile error in lessons/01_udp/udp.cpp with its place and line:\n${step_out}")
endif()

file(REMOVE_RECURSE "${HANDOUT}" "${HANDOUT}-hidden")
message(STATUS "handout: configures, builds, grades (with hidden tests) and runs without solutions/")
