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
# Re-run this when HEAD moves (a commit, a checkout), so an incremental build
# never stamps results files with an old commit. configure_file rewrites the
# header only when its text changes, so nothing else rebuilds.
if(EXISTS ${CMAKE_SOURCE_DIR}/.git/HEAD)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/.git/HEAD)
  file(READ ${CMAKE_SOURCE_DIR}/.git/HEAD _git_head)
  if(_git_head MATCHES "^ref: ([^\n]+)")
    set(_git_ref ${CMAKE_SOURCE_DIR}/.git/${CMAKE_MATCH_1})
    if(EXISTS ${_git_ref})
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_git_ref})
    endif()
  endif()
endif()
