// Where a lesson's test executable finds the programs it starts and the
// exercise library it inspects. The tests' objects are shared by the
// reference build, the student's build and the wrong answers; each
// executable links its own definitions (tests/cmake/LabLesson.cmake writes
// them), and the tests use them as LAB_PROGRAM_DIR and LAB_EXERCISE_LIBRARY.
#pragma once

extern const char* const lab_program_dir;
extern const char* const lab_exercise_library;
