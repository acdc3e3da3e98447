# Sets `lab_cases` to the TEST_CASE names of doctest executable `lab_exe`
# (and `lab_list_error` to a message if listing failed).
function(lab_list_doctest_cases exe out_var error_var)
  set(${error_var} "" PARENT_SCOPE)
  execute_process(
    COMMAND "${exe}" --list-test-cases --no-version=true
    OUTPUT_VARIABLE listing
    ERROR_VARIABLE listing_errors
    RESULT_VARIABLE status
    TIMEOUT 30)
  if(NOT status EQUAL 0)
    set(${error_var} "listing the cases of ${exe} failed (${status}): ${listing_errors}" PARENT_SCOPE)
    set(${out_var} "" PARENT_SCOPE)
    return()
  endif()
  # A name may hold any character but ';' (CMake's list separator) and '*' or
  # '?' (doctest wildcards): names are checked here so a bad one is caught at once.
  string(REPLACE ";" "<semicolon>" listing "${listing}")
  string(REPLACE "\n" ";" lines "${listing}")
  set(cases "")
  foreach(line IN LISTS lines)
    if(line STREQUAL "" OR line MATCHES "^\\[doctest\\]" OR line MATCHES "^=+$")
      continue()
    endif()
    if(line MATCHES "[*?]|<semicolon>")
      set(${error_var} "test case name may not contain ';', '*' or '?': ${line}" PARENT_SCOPE)
    endif()
    list(APPEND cases "${line}")
  endforeach()
  set(${out_var} "${cases}" PARENT_SCOPE)
endfunction()
