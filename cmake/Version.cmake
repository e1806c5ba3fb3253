# Version and git commit, baked into the binary for --version and provenance.
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  OUTPUT_VARIABLE MOESIM_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_QUIET RESULT_VARIABLE _git_rc)
if(NOT _git_rc EQUAL 0 OR MOESIM_GIT_COMMIT STREQUAL "")
  set(MOESIM_GIT_COMMIT "unknown")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/version.hpp.in
  ${CMAKE_BINARY_DIR}/generated/moesim/version.hpp @ONLY)
