// `moesim presets`: the names moesim knows (models, GPUs, topologies) and the
// full list of scenario options with their type, unit, default and help.
#include <iomanip>
#include <iostream>

#include "apps/commands.hpp"
#include "apps/preset_listing.hpp"

namespace moesim::cli {

int cmd_presets(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("options", "list every scenario option (optionally of one SECTION given as argument)")(
      "json", "print one JSON document");
  const ParsedArgs parsed = parse_command_args("presets", args, desc, 1);
  if (parsed.help) {
    print_command_help("moesim presets [--options [SECTION]] [--json]",
                       "Lists the models, GPUs and topologies known by name (each with its source), or,\n"
                       "with --options, every scenario option: name, type, unit, default and help.",
                       desc, false);
    return 0;
  }
  if (parsed.vm.count("options") != 0) {
    const std::string section = parsed.positional.empty() ? "" : parsed.positional[0];
    bool any = false;
    for (const OptionSpec* spec : scenario_registry().all()) {
      if (!section.empty() && spec->name.rfind(section + ".", 0) != 0) continue;
      any = true;
      std::cout << "--" << spec->name << "  (" << to_string(spec->type);
      if (!spec->unit.empty()) std::cout << ", " << spec->unit;
      std::cout << ", default: " << (spec->default_value.empty() ? "unset" : spec->default_value) << ")\n";
      if (!spec->choices.empty()) {
        std::cout << "      one of:";
        for (const auto& c : spec->choices) std::cout << " " << c;
        std::cout << "\n";
      }
      std::cout << "      " << spec->help << "\n";
    }
    if (!any) throw InputError("no scenario options in section '" + section + "'");
    return 0;
  }
  if (!parsed.positional.empty()) {
    throw InputError("unexpected argument '" + parsed.positional[0] + "' (did you mean --options " +
                     parsed.positional[0] + "?)");
  }
  print_preset_listing(std::cout, parsed.vm.count("json") != 0);
  return 0;
}

}  // namespace moesim::cli
