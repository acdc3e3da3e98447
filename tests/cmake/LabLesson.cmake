# How a lesson is built, and how its tests are built twice.
#
#   lab_add_lesson(01_udp EXERCISE udp.cpp PROGRAMS server client)
#
# The lesson's lesson.manifest gives the per-case timeout ("timeout: 10").
#
# makes, for lesson 01:
#   lesson01            the student's exercise, lessons/01_udp/udp.cpp
#   solution01          the reference, solutions/01_udp/udp.cpp (if present)
#   build/<preset>/lessons/01_udp/{server,client}     linked with the student's exercise
#   build/<preset>/solutions/01_udp/{server,client}   linked with the reference
#   test01_grade        tests/01_udp/*.cpp against the student's files  (ctest label "grade")
#   test01_reference    tests/01_udp/*.cpp against the reference        (ctest label "reference")
# and, when the reference is present, the self-check that every graded case
# fails on the untouched stubs with "not implemented" (label "selfcheck").
#
# Every doctest TEST_CASE becomes its own ctest test with a TIMEOUT, so a
# hang or a crash costs one case, not the whole file.

include(WrongAnswers)

set(LAB_CASE_TIMEOUT 10 CACHE STRING "Seconds one graded test case may run")
set(LAB_EXTRA_TESTS "" CACHE PATH "An instructor's hidden tests: DIR/NN_topic/*.cpp (see docs/instructors.md)")

# Registers each TEST_CASE of doctest executable `target` as a ctest test
# named "<LABEL>/<case name>". The list is read from the executable when ctest
# runs (not when CMake configures), so a new TEST_CASE needs no reconfigure.
function(lab_add_doctest target)
  cmake_parse_arguments(arg "" "LABEL;TIMEOUT" "ENVIRONMENT;PROPERTIES" ${ARGN})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${LAB_CASE_TIMEOUT})
  endif()
  set(script "${CMAKE_CURRENT_BINARY_DIR}/${target}_cases.cmake")
  file(GENERATE OUTPUT "${script}" CONTENT
"set(lab_exe [==[$<TARGET_FILE:${target}>]==])
set(lab_label [==[${arg_LABEL}]==])
set(lab_timeout [==[${arg_TIMEOUT}]==])
set(lab_environment [==[${arg_ENVIRONMENT}]==])
set(lab_workdir [==[${CMAKE_CURRENT_BINARY_DIR}]==])
set(lab_cmake [==[${CMAKE_COMMAND}]==])
set(lab_properties [==[${arg_PROPERTIES}]==])
include([==[${PROJECT_SOURCE_DIR}/tests/cmake/AddDoctestCases.cmake]==])
")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
endfunction()

# A doctest executable from `sources`, with the shared test main and support.
function(lab_add_test_executable target)
  cmake_parse_arguments(arg "" "" "SOURCES;LIBRARIES;DEFINITIONS" ${ARGN})
  add_executable(${target} ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE lab_test_main lab_test_support ${arg_LIBRARIES})
  target_compile_definitions(${target} PRIVATE ${arg_DEFINITIONS})
endfunction()

function(lab_add_lesson dir)
  cmake_parse_arguments(arg "" "EXERCISE" "PROGRAMS" ${ARGN})
  string(SUBSTRING "${dir}" 0 2 nn)
  set(lesson_src "${PROJECT_SOURCE_DIR}/lessons/${dir}")
  set(solution_src "${PROJECT_SOURCE_DIR}/solutions/${dir}")
  set(tests_src "${PROJECT_SOURCE_DIR}/tests/${dir}")

  set(variants lesson)
  if(LAB_HAVE_SOLUTIONS AND EXISTS "${solution_src}/${arg_EXERCISE}")
    list(APPEND variants solution)
  endif()

  foreach(variant IN LISTS variants)
    if(variant STREQUAL "lesson")
      set(exercise_file "${lesson_src}/${arg_EXERCISE}")
      set(out_dir "${CMAKE_BINARY_DIR}/lessons/${dir}")
      set(test_label grade)
    else()
      set(exercise_file "${solution_src}/${arg_EXERCISE}")
      set(out_dir "${CMAKE_BINARY_DIR}/solutions/${dir}")
      set(test_label reference)
    endif()
    set(lib ${variant}${nn})
    add_library(${lib} STATIC "${exercise_file}")
    # The reference build looks in solutions/NN_topic first, so a header-only
    # exercise (a template) can have its reference header there. Include such
    # a header with <angle brackets>: "quotes" would find the lesson's copy
    # beside the including file first.
    if(variant STREQUAL "solution")
      target_include_directories(${lib} PUBLIC "${solution_src}")
    else()
      # A student writes one exercise at a time: a parameter of one not yet
      # written is unused, and that warning must not stop the others being
      # graded. It is still printed.
      target_compile_options(${lib} PRIVATE -Wno-error=unused-parameter)
    endif()
    target_include_directories(${lib} PUBLIC "${lesson_src}")
    target_link_libraries(${lib} PUBLIC lab::common)

    foreach(program IN LISTS arg_PROGRAMS)
      set(exe ${variant}${nn}_${program})
      add_executable(${exe} "${lesson_src}/${program}.cpp")
      target_link_libraries(${exe} PRIVATE ${lib})
      set_target_properties(${exe} PROPERTIES
        OUTPUT_NAME ${program}
        RUNTIME_OUTPUT_DIRECTORY "${out_dir}")
    endforeach()

    file(GLOB test_sources CONFIGURE_DEPENDS "${tests_src}/*.cpp")
    if(test_sources)
      set(test_exe test${nn}_${test_label})
      lab_add_test_executable(${test_exe}
        SOURCES ${test_sources}
        LIBRARIES ${lib}
        DEFINITIONS "LAB_PROGRAM_DIR=\"${out_dir}\"" "LAB_LESSON_DIR=\"lessons/${dir}\""
                    "LAB_EXERCISE_LIBRARY=\"$<TARGET_FILE:${lib}>\"")
      # The programs a test starts must be built with the test.
      foreach(program IN LISTS arg_PROGRAMS)
        add_dependencies(${test_exe} ${variant}${nn}_${program})
      endforeach()
      # The per-case timeout comes from the lesson's manifest ("timeout: 10").
      lab_manifest_value("${lesson_src}/lesson.manifest" timeout timeout)
      if(NOT timeout)
        set(timeout ${LAB_CASE_TIMEOUT})
      endif()
      lab_add_doctest(${test_exe} LABEL ${test_label} TIMEOUT ${timeout})
      # An instructor's hidden tests (lab grade --extra DIR sets LAB_EXTRA_TESTS):
      # DIR/NN_topic/*.cpp against the student's files, graded by the lab tool.
      if(variant STREQUAL "lesson" AND LAB_EXTRA_TESTS)
        file(GLOB extra_sources CONFIGURE_DEPENDS "${LAB_EXTRA_TESTS}/${dir}/*.cpp")
        if(extra_sources)
          lab_add_test_executable(test${nn}_extra
            SOURCES ${extra_sources}
            LIBRARIES ${lib}
            DEFINITIONS "LAB_PROGRAM_DIR=\"${out_dir}\"" "LAB_LESSON_DIR=\"lessons/${dir}\"")
        endif()
      endif()
      if(variant STREQUAL "lesson" AND LAB_HAVE_SOLUTIONS)
        add_test(NAME "selfcheck/${dir} stubs fail every graded case"
          COMMAND ${CMAKE_COMMAND}
            -DEXE=$<TARGET_FILE:${test_exe}>
            -DLESSON=${dir}
            -DTIMEOUT=${timeout}
            -P "${PROJECT_SOURCE_DIR}/tests/cmake/CheckStubs.cmake")
        set_tests_properties("selfcheck/${dir} stubs fail every graded case" PROPERTIES
          LABELS selfcheck TIMEOUT 300 SKIP_REGULAR_EXPRESSION "lab-skip:")
      endif()
      if(variant STREQUAL "solution")
        lab_add_wrong_answers(${dir} EXERCISE ${arg_EXERCISE} PROGRAMS ${arg_PROGRAMS}
          TIMEOUT ${timeout} TEST_SOURCES ${test_sources})
      endif()
    endif()
  endforeach()
endfunction()

# The value of `key` in a lesson's lesson.manifest ("key: value" lines), or "".
function(lab_manifest_value manifest key out_var)
  set(value "")
  if(EXISTS "${manifest}")
    file(STRINGS "${manifest}" lines REGEX "^${key}:")
    if(lines)
      list(GET lines 0 line)
      string(REGEX REPLACE "^${key}:[ \t]*" "" value "${line}")
      string(STRIP "${value}" value)
    endif()
  endif()
  set(${out_var} "${value}" PARENT_SCOPE)
endfunction()

# A benchmark: an executable that prints its figures, run by the "bench"
# preset (release build), never by the test suites.
#
#   lab_add_benchmark(bench_download SOURCES tests/04_struct_header/bench_download.cpp
#                     LIBRARIES solution04)
function(lab_add_benchmark name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBRARIES;ARGS" ${ARGN})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 900)
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE lab::common ${arg_LIBRARIES})
  add_test(NAME "bench/${name}" COMMAND ${name} ${arg_ARGS})
  set_tests_properties("bench/${name}" PROPERTIES LABELS bench TIMEOUT ${arg_TIMEOUT})
endfunction()
