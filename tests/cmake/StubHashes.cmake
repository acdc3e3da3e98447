# The SHA-256 of every file a student edits, as the lab ships it
# (tests/stubs.sha256), so that the checks about the untouched stubs can tell
# a student's work from a maintainer's change, and find the shipped copies
# in git history once the student has edited them (PristineStubs.cmake).
#
#   cmake -P tests/cmake/StubHashes.cmake        rewrites tests/stubs.sha256
#                                                 (maintainers, after changing a stub)
#   include(StubHashes) + lab_shipped_stubs_for(...)   in a check
get_filename_component(lab_stub_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(lab_stub_list "${lab_stub_root}/tests/stubs.sha256")

# The files of `lesson`'s manifest (its `files:` line).
function(lab_stub_files lesson out_var)
  file(STRINGS "${lab_stub_root}/lessons/${lesson}/lesson.manifest" line REGEX "^files:")
  string(REGEX REPLACE "^files:[ \t]*" "" line "${line}")
  separate_arguments(files UNIX_COMMAND "${line}")
  set(${out_var} "${files}" PARENT_SCOPE)
endfunction()

# Sets `out_var` to the files of `lesson` whose content is not the shipped one.
function(lab_stub_changes lesson out_var)
  file(STRINGS "${lab_stub_list}" shipped)
  lab_stub_files("${lesson}" files)
  set(changed "")
  foreach(name IN LISTS files)
    file(SHA256 "${lab_stub_root}/lessons/${lesson}/${name}" hash)
    list(FIND shipped "${hash}  lessons/${lesson}/${name}" found)
    if(found EQUAL -1)
      list(APPEND changed "lessons/${lesson}/${name}")
    endif()
  endforeach()
  set(${out_var} "${changed}" PARENT_SCOPE)
endfunction()

# For a check about the untouched stubs of `lesson`. While the student's
# copies are the shipped ones, sets `out_var` to "": check them. Once the
# student has edited them, sets it to the folder of the shipped copies that
# the build made from git history (`pristine`/source/lessons/LESSON, see
# PristineStubs.cmake), if `needed` (a file under `pristine`) exists; if it
# does not, says why in one line and sets `out_var` to "skip" (ctest shows
# the check as skipped: SKIP_REGULAR_EXPRESSION "lab-skip:"). In CI a
# changed stub is a maintainer's change, which must refresh
# tests/stubs.sha256: an error.
function(lab_shipped_stubs_for lesson pristine needed out_var)
  lab_stub_changes("${lesson}" changed)
  if(changed AND DEFINED ENV{CI})
    message(FATAL_ERROR "the shipped stubs changed (${changed}): check them, then refresh tests/stubs.sha256 "
      "with: cmake -P tests/cmake/StubHashes.cmake")
  endif()
  set(${out_var} "" PARENT_SCOPE)
  if(NOT changed)
    return()
  endif()
  list(JOIN changed " " changed)
  if(EXISTS "${pristine}/missing/${lesson}.txt")
    file(STRINGS "${pristine}/missing/${lesson}.txt" why LIMIT_COUNT 1)
    message(STATUS "lab-skip: you have edited ${changed}, and the shipped copies cannot be found: ${why}")
    set(${out_var} skip PARENT_SCOPE)
  elseif(NOT EXISTS "${pristine}/${needed}")
    message(STATUS "lab-skip: you have edited ${changed}; build again (cmake --build --preset default) "
      "to build the shipped stubs beside your work for this check")
    set(${out_var} skip PARENT_SCOPE)
  else()
    message(STATUS "you have edited ${changed}: checking the shipped stubs, from git history, instead")
    set(${out_var} "${pristine}/source/lessons/${lesson}" PARENT_SCOPE)
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  file(GLOB lessons RELATIVE "${lab_stub_root}/lessons" "${lab_stub_root}/lessons/[0-9][0-9]_*")
  list(SORT lessons)
  set(text "")
  foreach(lesson IN LISTS lessons)
    if(EXISTS "${lab_stub_root}/lessons/${lesson}/lesson.manifest")
      lab_stub_files("${lesson}" files)
      foreach(name IN LISTS files)
        file(SHA256 "${lab_stub_root}/lessons/${lesson}/${name}" hash)
        string(APPEND text "${hash}  lessons/${lesson}/${name}\n")
      endforeach()
    endif()
  endforeach()
  file(WRITE "${lab_stub_list}" "${text}")
  message(STATUS "wrote ${lab_stub_list}")
endif()
