# Self-check (cmake -P): every graded case of EXE fails, and says
# "not implemented: exercise NN.k", when run against the untouched stubs of
# lessons/LESSON. A graded case that passes on a stub would give points for
# nothing; one that fails for another reason would hide the stub's message.
#
# This check is about the lab as shipped. Once a student edits the stubs it
# no longer applies, and says so: students grade with `lab grade`.
include("${CMAKE_CURRENT_LIST_DIR}/ListDoctestCases.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/StubHashes.cmake")

# Once a student has started the lesson, its stubs are theirs: the check
# does not apply (ctest shows it as skipped). In CI a changed stub is a
# maintainer's change, which must refresh tests/stubs.sha256.
lab_skip_if_stubs_edited("${LESSON}" "this check is about the untouched stubs" skip)
if(skip)
  return()
endif()

lab_list_doctest_cases("${EXE}" cases list_error)
if(list_error)
  message(FATAL_ERROR "${list_error}")
endif()
list(LENGTH cases count)
if(count LESS 3)
  message(FATAL_ERROR "${EXE}: only ${count} graded cases; a lesson needs at least 3 per exercise")
endif()

string(SUBSTRING "${LESSON}" 0 2 nn)
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
  message(FATAL_ERROR "graded cases of ${LESSON} that misbehave on the stubs "
    "(if you edited lessons/${LESSON}, this maintainers' check no longer applies):\n${problems}")
endif()
message(STATUS "${LESSON}: all ${count} graded cases fail on the stubs with 'not implemented'")
