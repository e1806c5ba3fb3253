// Argument handling shared by the subcommands: scenario options given as
// --section.key=value, their validation against the one option registry, and
// help text.
#include <algorithm>
#include <iostream>
#include <sstream>

#include "apps/commands.hpp"
#include "apps/scenario_options.hpp"

namespace moesim::cli {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Closest name among the subcommand's own long options (for "did you mean").
std::string closest_command_option(const po::options_description& desc, const std::string& name) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& opt : desc.options()) {
    const std::string& known = opt->long_name();
    if (known.empty()) continue;
    const std::size_t d = edit_distance(name, known);
    if (d < best_d) {
      best_d = d;
      best = known;
    }
  }
  return best_d <= std::max<std::size_t>(2, name.size() / 3) ? best : std::string();
}

}  // namespace

const OptionRegistry& scenario_registry() {
  static const OptionRegistry registry = [] {
    OptionRegistry r;
    register_all_scenario_options(r);
    return r;
  }();
  return registry;
}

ParsedArgs parse_command_args(const std::string& command, const std::vector<std::string>& args,
                              const po::options_description& desc, std::size_t max_positional) {
  ParsedArgs parsed;
  const OptionRegistry& registry = scenario_registry();

  // First pass: pull out --help and every --section.key[=value]; the rest goes
  // to Boost.Program_options with the subcommand's own description.
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      parsed.help = true;
      continue;
    }
    if (starts_with(a, "--") && a.find('.') != std::string::npos &&
        a.find('.') < a.find('=')) {  // a dotted long option: a scenario key
      std::string body = a.substr(2);
      std::string name = body;
      std::string value;
      bool has_value = false;
      if (const auto eq = body.find('='); eq != std::string::npos) {
        name = body.substr(0, eq);
        value = body.substr(eq + 1);
        has_value = true;
      }
      const OptionSpec* spec = registry.find(name);
      if (spec == nullptr) {
        std::string msg = "unknown option '--" + name + "'";
        const std::string guess = registry.closest(name);
        if (!guess.empty()) msg += "; did you mean '--" + guess + "'?";
        msg += " (moesim presets --options lists every scenario option)";
        throw InputError(msg);
      }
      if (!has_value) {
        if (i + 1 < args.size() && !starts_with(args[i + 1], "--")) {
          value = args[++i];
        } else if (spec->type == OptionType::kBool) {
          value = "true";
        } else {
          throw InputError("option '--" + name + "' needs a value (--" + name + "=VALUE)");
        }
      }
      // Checked here too, so that a bad value is reported even by a
      // subcommand that never builds a full scenario.
      if (const std::string err = OptionRegistry::validate(*spec, value); !err.empty()) {
        throw InputError("command line (--" + name + "): " + name + ": " + err);
      }
      parsed.overrides.emplace_back(name, value);
      continue;
    }
    rest.push_back(a);
  }

  po::options_description all;
  all.add(desc);
  all.add_options()("positional__", po::value<std::vector<std::string>>(), "");
  po::positional_options_description pos;
  pos.add("positional__", -1);
  try {
    po::store(po::command_line_parser(rest).options(all).positional(pos).run(), parsed.vm);
    po::notify(parsed.vm);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    while (starts_with(name, "-")) name.erase(0, 1);
    std::string msg = "unknown option '" + e.get_option_name() + "' for 'moesim " + command + "'";
    const std::string guess = closest_command_option(desc, name);
    if (!guess.empty()) msg += "; did you mean '--" + guess + "'?";
    msg += " (see moesim " + command + " --help)";
    throw InputError(msg);
  } catch (const po::error& e) {
    throw InputError(std::string(e.what()) + " (see moesim " + command + " --help)");
  }
  if (parsed.vm.count("positional__") != 0) {
    parsed.positional = parsed.vm["positional__"].as<std::vector<std::string>>();
  }
  if (!parsed.help && parsed.positional.size() > max_positional) {
    throw InputError("too many arguments for 'moesim " + command + "': unexpected '" +
                     parsed.positional[max_positional] + "' (see moesim " + command + " --help)");
  }
  return parsed;
}

Config make_config(const std::optional<std::string>& scenario_path,
                   const std::vector<std::pair<std::string, std::string>>& overrides) {
  Config config(scenario_registry());
  if (scenario_path) config.load_ini(*scenario_path);
  for (const auto& [name, value] : overrides) config.set(name, value, "command line (--" + name + ")");
  return config;
}

void print_command_help(const std::string& usage, const std::string& description,
                        const po::options_description& desc, bool with_scenario) {
  std::cout << "Usage: " << usage << "\n\n" << description << "\n\n" << desc << "\n";
  if (with_scenario) {
    std::cout << "Scenario options:\n"
                 "  Every scenario key can be set in the INI file ([section] / key = value) or\n"
                 "  on the command line as --section.key=value (the command line wins), e.g.\n"
                 "    --strategy.tp=4 --topology.nodes=8 --gpu.memory=64GiB --network.model=flow\n"
                 "  Sizes and rates take units: 64GiB, 80GB, 400Gbps, 50GB/s, 1us, 2.5ms.\n"
                 "  'moesim presets --options' lists every option with its type, unit, default\n"
                 "  and help; 'moesim presets --options SECTION' lists one section.\n";
  }
}

}  // namespace moesim::cli
