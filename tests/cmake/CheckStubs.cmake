# Self-check (cmake -P): every graded case of EXE fails, and says
# "not implemented: exercise NN.k", when run against the untouched stubs of
# lessons/LESSON. A graded case that passes on a stub would give points for
# nothing; one that fails for another reason would hide the stub's message.
#
# This check is about the lab as shipped. Once a student edits the stubs,
# it runs the test program built from the shipped stubs beside the student's
# work (PRISTINE, see PristineStubs.cmake): it keeps checking the lab, and
# stays green, however many lessons the student has solved.
include("${CMAKE_CURRENT_LIST_DIR}/ListDoctestCases.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/StubHashes.cmake")

string(SUBSTRING "${LESSON}" 0 2 nn)
lab_shipped_stubs_for("${LESSON}" "${PRISTINE}" "build/lessons/${LESSON}/test${nn}_grade" shipped)
if(shipped STREQUAL "skip")
  return()
elseif(shipped)
  set(EXE "${PRISTINE}/build/lessons/${LESSON}/test${nn}_grade")
endif()

lab_list_doctest_cases("${EXE}" cases list_error)
if(list_error)
  message(FATAL_ERROR "${list_error}")
endif()
list(LENGTH cases count)
if(count LESS 3)
  message(FATAL_ERROR "${EXE}: only ${count} graded cases; a lesson needs at least 3 per exercise")
endif()

set(problems "")
foreach(name IN LISTS cases)
  if(NOT name MATCHES "^${nn}\\.([0-9]+|p) ")
    string(APPEND problems "  '${name}': a graded case's name starts with its exercise, e.g. '${nn}.1 '\n")
    continue()
  endif()
  string(REPLACE "," "\\," filter "${name}")
  execute_process(
    COMMAND "${EXE}" "--test-case=${filter}"
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status
    TIMEOUT ${TIMEOUT})
  if(status EQUAL 0)
    string(APPEND problems "  '${name}': PASSED on the stub\n")
  elseif(NOT "${out}${err}" MATCHES "not implemented: exercise ${nn}\\.[0-9]+")
    string(APPEND problems "  '${name}': failed without a 'not implemented' message (${status})\n")
  endif()
endforeach()

if(problems)
  message(FATAL_ERROR "graded cases of ${LESSON} that misbehave on the stubs (${EXE}):\n${problems}")
endif()
message(STATUS "${LESSON}: all ${count} graded cases fail on the stubs with 'not implemented'")
