#pragma once
// The subcommands of `moesim` and the helpers they share. Each subcommand
// lives in its own apps/cmd_<name>.cpp, receives the arguments that follow its
// name, writes tables (or one JSON document with --json) to stdout and
// progress/warnings to stderr, and returns the exit code:
//   0 success, 1 `verify` found a claim that does not hold, 2 bad input.
// Bad input is reported by throwing moesim::InputError (sim/options.hpp); the
// dispatcher prints "moesim <cmd>: error: <message>" and exits with 2.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/options.hpp"

namespace moesim::cli {

namespace po = boost::program_options;

int cmd_run(const std::vector<std::string>& args);
int cmd_verify(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);
int cmd_collective(const std::vector<std::string>& args);
int cmd_topology(const std::vector<std::string>& args);
int cmd_presets(const std::vector<std::string>& args);

/// The registry of every scenario option of every module (built once).
const OptionRegistry& scenario_registry();

/// Result of parsing a subcommand's arguments.
struct ParsedArgs {
  po::variables_map vm;                 // the subcommand's own options
  std::vector<std::string> positional;  // e.g. the scenario file
  /// `--section.key=value` / `--section.key value` scenario overrides, in order.
  std::vector<std::pair<std::string, std::string>> overrides;
  bool help = false;                    // --help / -h was given
};

/// Parses `args` against the subcommand's own options `desc` (add --help
/// yourself is not needed: it is always accepted). Any `--section.key[=value]`
/// that is a scenario option is collected into `overrides` (a bool option may
/// omit its value); any other unknown option is an InputError that suggests
/// the closest known name. `max_positional` bounds the positional arguments.
ParsedArgs parse_command_args(const std::string& command, const std::vector<std::string>& args,
                              const po::options_description& desc, std::size_t max_positional);

/// Builds the scenario Config: loads the INI file (when given), then applies
/// the command-line overrides (which win). Throws InputError on bad input.
Config make_config(const std::optional<std::string>& scenario_path,
                   const std::vector<std::pair<std::string, std::string>>& overrides);

/// Prints "Usage: ...", the subcommand's options and, when `with_scenario`,
/// how scenario options are given (and where to list them).
void print_command_help(const std::string& usage, const std::string& description,
                        const po::options_description& desc, bool with_scenario);

}  // namespace moesim::cli
