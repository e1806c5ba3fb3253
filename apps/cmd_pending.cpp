// Subcommands whose implementation has not landed yet: they accept --help and
// check their arguments, then say plainly that they are not available.
#include <iostream>

#include "apps/commands.hpp"

namespace moesim::cli {
namespace {
[[maybe_unused]] int pending(const std::string& name, const std::vector<std::string>& args, const char* what) {
  po::options_description desc("Options");
  desc.add_options()("json", "print one JSON document");
  const ParsedArgs parsed = parse_command_args(name, args, desc, 1);
  if (parsed.help) {
    print_command_help("moesim " + name + " [SCENARIO.ini] [--section.key=value ...]", what, desc, true);
    return 0;
  }
  // The arguments and the scenario are still checked in full.
  (void)make_config(parsed.positional.empty() ? std::nullopt : std::optional<std::string>(parsed.positional[0]),
                    parsed.overrides);
  std::cerr << "moesim " << name << ": not available yet in this build (" << what << ")\n";
  return 2;
}
}  // namespace

#ifndef MOESIM_HAVE_CMD_RUN
int cmd_run(const std::vector<std::string>& args) { return pending("run", args, "simulate a scenario"); }
#endif
#ifndef MOESIM_HAVE_CMD_VERIFY
int cmd_verify(const std::vector<std::string>& args) { return pending("verify", args, "verify claims"); }
#endif
#ifndef MOESIM_HAVE_CMD_SWEEP
int cmd_sweep(const std::vector<std::string>& args) { return pending("sweep", args, "sweeps and search"); }
#endif
#ifndef MOESIM_HAVE_CMD_COLLECTIVE
int cmd_collective(const std::vector<std::string>& args) { return pending("collective", args, "collectives"); }
#endif
#ifndef MOESIM_HAVE_CMD_TOPOLOGY
int cmd_topology(const std::vector<std::string>& args) { return pending("topology", args, "topologies"); }
#endif

}  // namespace moesim::cli
