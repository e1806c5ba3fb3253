#include "apps/cli.hpp"

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "apps/commands.hpp"
#include "moesim/version.hpp"
#include "sim/unit_parse.hpp"

namespace moesim::cli {
namespace {

struct Subcommand {
  const char* name;
  int (*fn)(const std::vector<std::string>&);
  const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"run", &cmd_run, "simulate a scenario: serving under load (default) or one batch iteration"},
    {"verify", &cmd_verify, "check each claim of a deployment scenario: holds / fails / unchecked"},
    {"sweep", &cmd_sweep, "run a scenario over a range of values, or search the parallel strategies"},
    {"collective", &cmd_collective, "nccl-tests-like table of one collective on a topology"},
    {"topology", &cmd_topology, "summarize a topology preset or DOT file; write it as DOT"},
    {"presets", &cmd_presets, "list the models, GPUs and topologies known by name, and every option"},
};

void print_top_help() {
  std::cout << "moesim " << kVersion
            << " - discrete-event simulator of GPU clusters running Mixture-of-Experts models\n\n"
               "Usage: moesim <command> [arguments] [--section.key=value ...]\n"
               "       moesim <command> --help\n"
               "       moesim --version\n\n"
               "Commands:\n";
  for (const auto& c : kSubcommands) {
    std::string name = c.name;
    name.resize(12, ' ');
    std::cout << "  " << name << c.summary << "\n";
  }
  std::cout << "\nExamples:\n"
               "  moesim run                                  # the built-in default scenario\n"
               "  moesim run scenario.ini --strategy.ep=16 --json\n"
               "  moesim verify experiments/seeds/004_original.ini\n"
               "  moesim collective --op all_reduce --gpus 8 --topology dgx-h100\n"
               "  moesim topology dgx-h100 --topology.nodes=4 --dot cluster.dot\n\n"
               "Exit codes: 0 success; 1 verify found a claim that does not hold; 2 bad input or usage.\n"
               "Units: simulated time in picoseconds internally; sizes in bytes (GB = 1e9, GiB = 2^30);\n"
               "bandwidths in bytes/s (400Gbps = 50 GB/s). See docs/units.md.\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_top_help();
    return 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "moesim " << kVersion << " (git " << kGitCommit << ")\n";
    return 0;
  }
  const std::string command = args[0];
  for (const auto& c : kSubcommands) {
    if (command != c.name) continue;
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    try {
      return c.fn(rest);
    } catch (const InputError& e) {
      std::cerr << "moesim " << command << ": error: " << e.what() << "\n";
      return 2;
    } catch (const ParseError& e) {
      std::cerr << "moesim " << command << ": error: " << e.what() << "\n";
      return 2;
    } catch (const UnitError& e) {
      std::cerr << "moesim " << command << ": error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "moesim " << command << ": internal error: " << e.what()
                << "\n(this is a bug in moesim, not in your input; please report it with the scenario)\n";
      return 3;
    }
  }
  std::string msg = "moesim: error: unknown command '" + command + "'";
  std::string best;
  std::size_t best_d = 99;
  for (const auto& c : kSubcommands) {
    const std::size_t d = edit_distance(command, c.name);
    if (d < best_d) {
      best_d = d;
      best = c.name;
    }
  }
  if (best_d <= 3) msg += "; did you mean '" + best + "'?";
  std::cerr << msg << " (see moesim --help)\n";
  return 2;
}

}  // namespace moesim::cli
