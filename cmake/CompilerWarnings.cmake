# moesim_warnings: an interface target every module links, so all our code
# builds with the same strict warnings (and -Werror unless switched off).
add_library(moesim_warnings INTERFACE)
target_compile_options(moesim_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wconversion -Wsign-conversion
  -Wnull-dereference -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(MOESIM_WARNINGS_AS_ERRORS)
  target_compile_options(moesim_warnings INTERFACE -Werror)
endif()
if(MOESIM_ENABLE_ASSERTS)
  target_compile_definitions(moesim_warnings INTERFACE MOESIM_ASSERTS=1)
  target_compile_options(moesim_warnings INTERFACE -UNDEBUG)
endif()
