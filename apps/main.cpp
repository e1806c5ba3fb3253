// The moesim command line: see apps/cli.hpp for the subcommands.
#include "apps/cli.hpp"

int main(int argc, char** argv) { return moesim::cli::main(argc, argv); }
