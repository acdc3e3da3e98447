# Included by ctest (TEST_INCLUDE_FILES): registers each case of ${lab_exe}.
include("${CMAKE_CURRENT_LIST_DIR}/ListDoctestCases.cmake")

get_filename_component(lab_exe_name "${lab_exe}" NAME)
if(NOT EXISTS "${lab_exe}")
  # Not built (a build error, or ctest run before building): say so as a failing test.
  add_test("${lab_label}/${lab_exe_name} was not built" "${lab_cmake}" -E false)
  set_tests_properties("${lab_label}/${lab_exe_name} was not built" PROPERTIES LABELS "${lab_label}")
  return()
endif()

lab_list_doctest_cases("${lab_exe}" lab_cases lab_list_error)
if(lab_list_error)
  add_test("${lab_label}/${lab_exe_name} case list" "${lab_cmake}" -E echo "${lab_list_error}")
  set_tests_properties("${lab_label}/${lab_exe_name} case list" PROPERTIES
    LABELS "${lab_label}" WILL_FAIL TRUE)
endif()
foreach(lab_case IN LISTS lab_cases)
  # doctest splits --test-case filters at commas; "\," is a literal comma.
  string(REPLACE "," "\\," lab_filter "${lab_case}")
  add_test("${lab_label}/${lab_case}" "${lab_exe}" "--test-case=${lab_filter}")
  set_tests_properties("${lab_label}/${lab_case}" PROPERTIES
    LABELS "${lab_label}"
    TIMEOUT "${lab_timeout}"
    WORKING_DIRECTORY "${lab_workdir}")
  if(lab_properties)
    set_tests_properties("${lab_label}/${lab_case}" PROPERTIES ${lab_properties})
  endif()
  # Cases too heavy to share the machine run alone (RUN_SERIAL).
  if(NOT lab_serial_cases STREQUAL "" AND lab_case MATCHES "${lab_serial_cases}")
    set_tests_properties("${lab_label}/${lab_case}" PROPERTIES RUN_SERIAL TRUE)
  endif()
  # Cases that share something with tests elsewhere: their whole list of
  # locks (RESOURCE_LOCK), in place of the one PROPERTIES gave.
  if(NOT lab_locked_cases STREQUAL "" AND lab_case MATCHES "${lab_locked_cases}")
    set_tests_properties("${lab_label}/${lab_case}" PROPERTIES RESOURCE_LOCK "${lab_lock}")
  endif()
  if(lab_environment)
    set_tests_properties("${lab_label}/${lab_case}" PROPERTIES ENVIRONMENT "${lab_environment}")
  endif()
endforeach()
