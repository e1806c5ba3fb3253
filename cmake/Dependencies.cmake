# Every dependency comes from Debian packages (scripts/setup installs them).
find_package(Boost 1.74 REQUIRED COMPONENTS graph program_options)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
if(MOESIM_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()
