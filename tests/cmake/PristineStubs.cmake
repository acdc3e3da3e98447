# The shipped stubs of a lesson the student has started, built beside the
# student's work, so that the self-checks about the untouched stubs keep
# checking them ("selfcheck/NN_topic stubs fail every graded case", the
# grader's "the untouched stubs get zero" and the handout check).
#
# The lab's own copy of a stub is in git history: the blob of
# lessons/NN_topic/FILE whose SHA-256 is the one tests/stubs.sha256 lists.
# For a lesson whose stubs the student has edited, configuring writes
#
#   build/<preset>/pristine/source/lessons/NN_topic/  the lesson's files, its stubs as shipped
#   build/<preset>/pristine/source/tests              a link to tests/ (the grader reads the case names there)
#   build/<preset>/pristine/build/lessons/NN_topic/   its programs and test<NN>_grade, built from them
#   build/<preset>/pristine/build/lab-lessons.txt     the lessons built there
#   build/<preset>/pristine/missing/NN_topic.txt      instead, why they could not be found (no git history)
#
# laid out as a lab of its own for `lab --source-dir S --build-dir B grade`.
# The programs and tests reuse the objects already compiled for the
# student's build, unless the student edited a header they include: only
# the stub itself is compiled again, and only for a lesson that is started.
# Until then, its stubs are inputs of the configuration, so that the first
# edit configures again and adds the lesson here.
include(StubHashes)

set(LAB_PRISTINE "${CMAKE_BINARY_DIR}/pristine")
# Written afresh by each configuration, as lab_add_pristine_stubs adds lessons.
file(MAKE_DIRECTORY "${LAB_PRISTINE}/build" "${LAB_PRISTINE}/source")
file(WRITE "${LAB_PRISTINE}/build/lab-lessons.txt" "")
if(NOT EXISTS "${LAB_PRISTINE}/source/tests")
  file(CREATE_LINK "${PROJECT_SOURCE_DIR}/tests" "${LAB_PRISTINE}/source/tests" SYMBOLIC)
endif()
set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${lab_stub_list}")

# Writes to `dest` the blob of `path` (relative to the repository) whose
# SHA-256 is `hash`, searched from the newest commit back. Sets `error_var`
# to why not, or to "".
function(lab_write_shipped_stub path hash dest error_var)
  find_program(LAB_GIT git)
  if(NOT LAB_GIT)
    set(${error_var} "git is not installed" PARENT_SCOPE)
    return()
  endif()
  # Every version the history holds, newest first: --raw lists each change
  # of the file as ":MODE MODE BLOB BLOB STATUS", the blobs before and after.
  execute_process(
    COMMAND "${LAB_GIT}" -C "${lab_stub_root}" log --all --format= --raw --no-abbrev --no-renames -- "${path}"
    OUTPUT_VARIABLE changes ERROR_VARIABLE problem RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    string(REGEX REPLACE "\n.*" "" problem "${problem}")
    set(${error_var} "git cannot read this folder's history (${problem})" PARENT_SCOPE)
    return()
  endif()
  string(REPLACE "\n" ";" lines "${changes}")
  set(blobs "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^:[0-7]+ [0-7]+ ([0-9a-f]+) ([0-9a-f]+) ")
      list(APPEND blobs "${CMAKE_MATCH_2}" "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES blobs)
  set(candidate "${dest}.from-git")
  foreach(blob IN LISTS blobs)
    if(blob MATCHES "^0+$")
      continue()  # "none": the file did not exist on that side of the change
    endif()
    execute_process(COMMAND "${LAB_GIT}" -C "${lab_stub_root}" cat-file blob "${blob}"
      OUTPUT_FILE "${candidate}" RESULT_VARIABLE status)
    if(status EQUAL 0)
      file(SHA256 "${candidate}" found)
      if(found STREQUAL hash)
        # Only when it differs: an unchanged copy is not compiled again.
        file(COPY_FILE "${candidate}" "${dest}" ONLY_IF_DIFFERENT)
        file(REMOVE "${candidate}")
        set(${error_var} "" PARENT_SCOPE)
        return()
      endif()
    endif()
  endforeach()
  file(REMOVE "${candidate}")
  set(${error_var} "the git history here does not hold the shipped ${path}" PARENT_SCOPE)
endfunction()

# The stubs `files` of the lesson in `lesson_src` become inputs of the
# configuration: the next edit of one configures again and looks again.
function(lab_reconfigure_on_edit lesson_src files)
  foreach(name IN LISTS files)
    set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${lesson_src}/${name}")
  endforeach()
endfunction()

# For lab_add_lesson: the shipped stubs of lesson `dir`, built as described
# above when the student has edited them. OBJECTS names the object libraries
# of the student's build (<OBJECTS>_<program>_object, <OBJECTS>_tests).
function(lab_add_pristine_stubs dir)
  cmake_parse_arguments(arg "" "EXERCISE;OBJECTS" "PROGRAMS;TEST_SOURCES" ${ARGN})
  string(SUBSTRING "${dir}" 0 2 nn)
  set(lesson_src "${PROJECT_SOURCE_DIR}/lessons/${dir}")
  set(source "${LAB_PRISTINE}/source/lessons/${dir}")
  set(build "${LAB_PRISTINE}/build/lessons/${dir}")
  set(missing "${LAB_PRISTINE}/missing/${dir}.txt")
  file(REMOVE "${missing}")
  lab_stub_files("${dir}" files)
  lab_stub_changes("${dir}" changed)
  # In CI a changed stub is a maintainer's change, which the checks report.
  if(NOT changed OR DEFINED ENV{CI})
    file(REMOVE_RECURSE "${source}" "${build}")
    lab_reconfigure_on_edit("${lesson_src}" "${files}")
    return()
  endif()

  file(MAKE_DIRECTORY "${source}")
  file(STRINGS "${lab_stub_list}" shipped)
  foreach(name IN LISTS files)
    if(NOT "lessons/${dir}/${name}" IN_LIST changed)
      configure_file("${lesson_src}/${name}" "${source}/${name}" COPYONLY)
      continue()
    endif()
    set(entry "${shipped}")
    list(FILTER entry INCLUDE REGEX "  lessons/${dir}/${name}$")
    string(SUBSTRING "${entry}" 0 64 hash)
    lab_write_shipped_stub("lessons/${dir}/${name}" "${hash}" "${source}/${name}" error)
    if(error)
      file(REMOVE_RECURSE "${source}" "${build}")
      file(WRITE "${missing}" "${error}\n")
      # The next edit looks again (git may be there by then, or the folder
      # configured by its owner rather than by root).
      lab_reconfigure_on_edit("${lesson_src}" "${files}")
      return()
    endif()
  endforeach()
  # The rest of the lesson's folder, for the grader (lesson.manifest) and for
  # programs compiled again (a header included with "quotes" is found beside
  # the file that includes it first).
  file(GLOB others "${lesson_src}/*.cpp" "${lesson_src}/*.hpp")
  foreach(other IN LISTS others ITEMS "${lesson_src}/lesson.manifest")
    get_filename_component(name "${other}" NAME)
    if(NOT name IN_LIST files)
      configure_file("${other}" "${source}/${name}" COPYONLY)
    endif()
  endforeach()

  set(lib pristine${nn})
  add_library(${lib} STATIC "${source}/${arg_EXERCISE}")
  # A stub leaves its parameters unused (as in the student's build).
  target_compile_options(${lib} PRIVATE -Wno-error=unused-parameter)
  target_include_directories(${lib} PUBLIC "${source}")
  target_link_libraries(${lib} PUBLIC lab::common)
  # The student's objects were compiled with the student's headers: with an
  # edited header they are not the shipped lesson's, and are compiled again.
  set(objects ${arg_OBJECTS})
  if(changed MATCHES "\\.hpp(;|$)")
    set(objects ${lib})
  endif()
  foreach(program IN LISTS arg_PROGRAMS)
    if(objects STREQUAL lib)
      add_library(${lib}_${program}_object OBJECT "${source}/${program}.cpp")
      target_link_libraries(${lib}_${program}_object PRIVATE ${lib})
    endif()
    add_executable(${lib}_${program} $<TARGET_OBJECTS:${objects}_${program}_object>)
    target_link_libraries(${lib}_${program} PRIVATE ${lib})
    set_target_properties(${lib}_${program} PROPERTIES OUTPUT_NAME ${program} RUNTIME_OUTPUT_DIRECTORY "${build}")
  endforeach()
  if(objects STREQUAL lib)
    add_library(${lib}_tests OBJECT ${arg_TEST_SOURCES})
    lab_test_object_settings(${lib}_tests ${dir})
    target_link_libraries(${lib}_tests PRIVATE ${lib})
  endif()
  set(test_exe test${nn}_pristine)
  lab_test_paths_source(paths ${test_exe} "${build}" ${lib})
  lab_add_test_executable(${test_exe} SOURCES $<TARGET_OBJECTS:${objects}_tests> "${paths}" LIBRARIES ${lib})
  set_target_properties(${test_exe} PROPERTIES OUTPUT_NAME test${nn}_grade RUNTIME_OUTPUT_DIRECTORY "${build}")
  foreach(program IN LISTS arg_PROGRAMS)
    add_dependencies(${test_exe} ${lib}_${program})
  endforeach()
  file(APPEND "${LAB_PRISTINE}/build/lab-lessons.txt" "${dir}\n")
endfunction()
