#include "apps/cli.hpp"

#include <iostream>

#include "moesim/version.hpp"

namespace moesim::cli {
int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::cout << "moesim " << kVersion << " (" << kGitCommit << ")\n";
  return 0;
}
}  // namespace moesim::cli
