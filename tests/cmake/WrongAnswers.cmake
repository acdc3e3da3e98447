# Wrong answers: does every realistic bug lose points?
#
# tests/NN_topic/wrong/<name>.patch is one student bug, kept as a unified
# diff against solutions/NN_topic/ (paths a/<file> and b/<file>). Its first
# lines, before the diff, are "# " comments that patch(1) skips as leading
# text:
#
#   # task: 10.2
#   # breaks: "close sets the flag under the mutex and wakes every waiter"
#   # programs: rebuilt      (optional: see below)
#   # needs: tsan            (optional: a data race, checked in the tsan preset only)
#
# For each patch, lab_add_wrong_answers (called by lab_add_lesson) makes, at
# build time, a copy of solutions/NN_topic with the patch applied and builds
# the lesson's test executable against it. The self-check
# "selfcheck/NN_topic wrong answer <name> loses points in NN.k" then runs that
# task's graded cases one by one and passes as soon as one of them fails: a
# wrong answer that passes every case of its task would get full marks.
#
# To keep the build short, the test sources are compiled once per lesson, for
# the reference tests, and linked with each wrong answer and a file naming
# its programs and library (lab_test_paths_source); only a patch to a header
# (a template, as in lesson 10) compiles them again, and only the sources
# holding its task's cases. The tests start the reference programs (server,
# client) unless the patch says "# programs: rebuilt": then the lesson's
# programs are linked with the wrong answer too, for a task whose cases run
# the programs (07.2's daemon, for instance). Wrong answers are compiled
# without debug information and, with g++, with a precompiled header.
#
# Run as a script (cmake -P) with EXE, TASK, NAME, WHY and TIMEOUT, this file
# is the self-check itself.

if(CMAKE_SCRIPT_MODE_FILE)
  include("${CMAKE_CURRENT_LIST_DIR}/ListDoctestCases.cmake")
  lab_list_doctest_cases("${EXE}" cases list_error)
  if(list_error)
    message(FATAL_ERROR "${list_error}")
  endif()
  string(REPLACE "." "\\." task_pattern "${TASK}")
  set(task_cases "")
  foreach(name IN LISTS cases)
    if(name MATCHES "^${task_pattern} ")
      list(APPEND task_cases "${name}")
    endif()
  endforeach()
  list(LENGTH task_cases count)
  if(count EQUAL 0)
    message(FATAL_ERROR "wrong answer ${NAME}: no graded case is named '${TASK} ...'")
  endif()
  foreach(name IN LISTS task_cases)
    string(REPLACE "," "\\," filter "${name}")
    execute_process(
      COMMAND "${EXE}" "--test-case=${filter}"
      OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status
      TIMEOUT ${TIMEOUT})
    if(NOT status EQUAL 0)
      message(STATUS "wrong answer ${NAME} loses points in ${TASK}: '${name}' fails (${status})")
      return()
    endif()
  endforeach()
  message(FATAL_ERROR "wrong answer ${NAME} GOT THROUGH: all ${count} cases of ${TASK} pass, "
    "although it breaks ${WHY}\n  cases: ${task_cases}")
endif()

option(LAB_WRONG_ANSWERS "Build and run the wrong-answer self-checks (tests/NN_topic/wrong/)" ON)
find_program(LAB_PATCH_PROGRAM patch)

# lab_add_wrong_answers(03_sticky_packets EXERCISE line_splitter.cpp
#                       PROGRAMS server client TIMEOUT 10 TEST_SOURCES ...)
function(lab_add_wrong_answers dir)
  cmake_parse_arguments(arg "" "EXERCISE;TIMEOUT;OBJECTS" "PROGRAMS;TEST_SOURCES" ${ARGN})
  file(GLOB patches CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/${dir}/wrong/*.patch")
  if(LAB_SANITIZER)
    # The suite checks the tests' power, which the plain build shows; a
    # sanitizer build runs only the wrong answers that need it (a data race
    # for ThreadSanitizer), not every one twice more.
    set(needed "")
    foreach(patch IN LISTS patches)
      file(STRINGS "${patch}" needs REGEX "^# needs: tsan")
      if(needs AND LAB_SANITIZER STREQUAL "thread")
        list(APPEND needed "${patch}")
      endif()
    endforeach()
    set(patches "${needed}")
  endif()
  if(NOT LAB_WRONG_ANSWERS OR NOT patches)
    return()
  endif()
  if(NOT LAB_PATCH_PROGRAM)
    message(STATUS "${dir}: patch(1) not found, so the wrong-answer self-checks are skipped")
    return()
  endif()
  string(SUBSTRING "${dir}" 0 2 nn)
  set(lesson_src "${PROJECT_SOURCE_DIR}/lessons/${dir}")
  set(solution_src "${PROJECT_SOURCE_DIR}/solutions/${dir}")
  file(GLOB solution_files RELATIVE "${solution_src}" CONFIGURE_DEPENDS "${solution_src}/*")

  # Nobody debugs a wrong answer: without debug information its objects
  # compile about a sixth faster.
  set(no_debug_info -g0)
  # Most of a wrong answer's compile time is spent reading the standard
  # library's, fmt's and common/'s headers: with g++ they are read once, into
  # a precompiled header every wrong answer's exercise reuses (0.7 s -> 0.3 s
  # each). Only those headers: the lesson's own come from the patched copy.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT TARGET lab_wrong_pch)
    file(CONFIGURE OUTPUT "${CMAKE_BINARY_DIR}/wrong/pch.cpp" CONTENT "// The precompiled header's own translation unit.\n")
    add_library(lab_wrong_pch OBJECT "${CMAKE_BINARY_DIR}/wrong/pch.cpp")
    target_link_libraries(lab_wrong_pch PRIVATE lab::common)
    target_compile_options(lab_wrong_pch PRIVATE ${no_debug_info})
    target_precompile_headers(lab_wrong_pch PRIVATE
      <algorithm> <array> <atomic> <cerrno> <charconv> <chrono> <condition_variable> <cstdint>
      <cstring> <functional> <memory> <mutex> <optional> <stdexcept> <string> <string_view>
      <system_error> <thread> <utility> <vector> <fmt/core.h>
      "${PROJECT_SOURCE_DIR}/common/include/lab/error.hpp" "${PROJECT_SOURCE_DIR}/common/include/lab/io.hpp"
      "${PROJECT_SOURCE_DIR}/common/include/lab/socket.hpp" "${PROJECT_SOURCE_DIR}/common/include/lab/stop.hpp"
      "${PROJECT_SOURCE_DIR}/common/include/lab/text.hpp")
  endif()

  # The test sources are compiled once, for the reference tests
  # (${arg_OBJECTS}_tests, see LabLesson.cmake), and so are the programs
  # (${arg_OBJECTS}_<program>_object): a wrong answer links with those.

  foreach(patch IN LISTS patches)
    get_filename_component(name "${patch}" NAME_WE)
    file(STRINGS "${patch}" task_line REGEX "^# task: ")
    file(STRINGS "${patch}" why_line REGEX "^# breaks: ")
    file(STRINGS "${patch}" programs_line REGEX "^# programs: rebuilt")
    file(STRINGS "${patch}" tsan_line REGEX "^# needs: tsan")
    if(tsan_line AND NOT LAB_SANITIZER STREQUAL "thread")
      continue()  # a data race: only a ThreadSanitizer build sees it
    endif()
    file(STRINGS "${patch}" target_line REGEX "^\\+\\+\\+ b/")
    string(REGEX REPLACE "^# task: *" "" task "${task_line}")
    string(REGEX REPLACE "^# breaks: *" "" why "${why_line}")
    if(NOT task MATCHES "^${nn}\\.[0-9]+$" OR NOT why OR NOT target_line)
      message(FATAL_ERROR "${patch}: needs '# task: ${nn}.k', '# breaks: ...' and a diff of one file (+++ b/FILE)")
    endif()
    list(LENGTH target_line files_patched)
    if(NOT files_patched EQUAL 1)
      message(FATAL_ERROR "${patch}: a wrong answer changes one file")
    endif()
    string(REGEX REPLACE "^\\+\\+\\+ b/([^\t ]+).*" "\\1" patched_file "${target_line}")

    set(work "${CMAKE_BINARY_DIR}/wrong/${dir}/${name}")
    set(copied "")
    foreach(file IN LISTS solution_files)
      list(APPEND copied "${work}/src/${file}")
    endforeach()
    add_custom_command(OUTPUT ${copied}
      COMMAND "${CMAKE_COMMAND}" -E rm -rf "${work}/src"
      COMMAND "${CMAKE_COMMAND}" -E copy_directory "${solution_src}" "${work}/src"
      COMMAND "${LAB_PATCH_PROGRAM}" --batch --silent --no-backup-if-mismatch -p1 -d "${work}/src" -i "${patch}"
      DEPENDS "${patch}" ${solution_files}
      WORKING_DIRECTORY "${solution_src}"
      COMMENT "wrong answer ${dir}/${name}: patching the reference"
      VERBATIM)

    # An object library: linked straight into the test, with no archive step.
    set(lib wrong${nn}_${name})
    add_library(${lib} OBJECT "${work}/src/${arg_EXERCISE}")
    target_include_directories(${lib} PUBLIC "${work}/src" "${lesson_src}")
    target_link_libraries(${lib} PUBLIC lab::common)
    target_compile_options(${lib} PRIVATE ${no_debug_info})
    if(TARGET lab_wrong_pch)
      target_precompile_headers(${lib} REUSE_FROM lab_wrong_pch)
    endif()

    set(exe wrong${nn}_${name}_test)
    if(patched_file STREQUAL arg_EXERCISE)
      add_executable(${exe} $<TARGET_OBJECTS:${arg_OBJECTS}_tests>)
    else()
      # A header: the tests instantiate it, so they are compiled against the
      # copy; only the sources holding the task's cases, which are all the
      # self-check runs (lesson 10 keeps one test file per exercise for this).
      set(task_sources "")
      string(REPLACE "." "\\." task_pattern "${task}")
      foreach(source IN LISTS arg_TEST_SOURCES)
        file(STRINGS "${source}" task_cases REGEX "TEST_CASE\\(\"${task_pattern} ")
        if(task_cases)
          list(APPEND task_sources "${source}")
        endif()
      endforeach()
      if(NOT task_sources)
        message(FATAL_ERROR "${patch}: no test source holds a TEST_CASE(\"${task} ...\")")
      endif()
      add_executable(${exe} ${task_sources})
      lab_test_object_settings(${exe} ${dir} NO_DEBUG_INFO)
    endif()
    target_link_libraries(${exe} PRIVATE lab_test_main lab_test_support ${lib})
    set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${work}")

    set(program_dir "${CMAKE_BINARY_DIR}/solutions/${dir}")
    if(programs_line)
      set(program_dir "${work}/bin")
      foreach(program IN LISTS arg_PROGRAMS)
        add_executable(${lib}_${program} $<TARGET_OBJECTS:${arg_OBJECTS}_${program}_object>)
        target_link_libraries(${lib}_${program} PRIVATE ${lib})
        set_target_properties(${lib}_${program} PROPERTIES
          OUTPUT_NAME ${program} RUNTIME_OUTPUT_DIRECTORY "${program_dir}")
        add_dependencies(${exe} ${lib}_${program})
      endforeach()
    else()
      foreach(program IN LISTS arg_PROGRAMS)
        add_dependencies(${exe} solution${nn}_${program})
      endforeach()
    endif()

    lab_test_paths_source(paths ${exe} "${program_dir}" ${lib})
    target_sources(${exe} PRIVATE "${paths}")

    set(test_name "selfcheck/${dir} wrong answer ${name} loses points in ${task}")
    add_test(NAME "${test_name}"
      COMMAND "${CMAKE_COMMAND}"
        -DEXE=$<TARGET_FILE:${exe}> -DTASK=${task} -DNAME=${name} -DWHY=${why}
        -DTIMEOUT=${arg_TIMEOUT}
        -P "${PROJECT_SOURCE_DIR}/tests/cmake/WrongAnswers.cmake")
    # COST: a wrong answer may hang until its lesson's timeout; the longest
    # start first, so that a parallel run does not end waiting for them.
    set_tests_properties("${test_name}" PROPERTIES LABELS selfcheck TIMEOUT 300 COST ${arg_TIMEOUT})
  endforeach()
endfunction()
