#include "topology/topology_options.hpp"

#include <filesystem>
#include <string>

#include "topology/dot_io.hpp"
#include "topology/presets.hpp"

namespace moesim {
namespace {

bool looks_like_dot_path(const std::string& s) {
  return s.find('/') != std::string::npos ||
         (s.size() > 4 && (s.compare(s.size() - 4, 4, ".dot") == 0 || s.compare(s.size() - 3, 3, ".gv") == 0));
}

// A relative path written in a scenario file is relative to that file.
std::string resolve_path(const Config& config, std::string_view option, const std::string& path) {
  const std::filesystem::path p(path);
  const std::string& scenario = config.scenario_path();
  if (p.is_absolute() || scenario.empty()) return path;
  if (config.source(option).rfind(scenario + ":", 0) != 0) return path;  // command line or default
  return (std::filesystem::path(scenario).parent_path() / p).lexically_normal().string();
}

RoutingPolicy routing_from_config(const Config& config) {
  RoutingPolicy p = RoutingPolicy::kBalanced;
  if (!parse_routing_policy(config.get_string("topology.routing"), p)) {
    throw InputError("topology.routing must be balanced or ecmp, got '" + config.get_string("topology.routing") + "'");
  }
  return p;
}

std::string preset_list() {
  std::string s;
  for (const auto& name : topology_preset_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

void register_topology_options(OptionRegistry& r) {
  r.add(OptionSpec{"topology.preset", OptionType::kString, "", "default",
                   "cluster topology: a preset name (" + preset_list() +
                       "; `moesim presets` describes them) or a GraphViz .dot file",
                   std::nullopt, std::nullopt, {}});
  r.add(OptionSpec{"topology.file", OptionType::kString, "path", "",
                   "GraphViz .dot file describing the cluster (docs/topology.md); replaces topology.preset",
                   std::nullopt, std::nullopt, {}});
  r.add(OptionSpec{"topology.nodes", OptionType::kInt, "servers", "",
                   "number of servers (nodes) of a preset; unset: the preset's default (default: 16 x 4 GPUs; the "
                   "8-GPU presets: 8 x 8 GPUs)",
                   1.0, 65536.0, {}});
  r.add(OptionSpec{"topology.scale_out", OptionType::kChoice, "", "",
                   "scale-out wiring of a preset: rail (NIC i of every server on leaf i) or tor (one leaf per server); "
                   "unset: the preset's",
                   std::nullopt, std::nullopt, {"rail", "tor"}});
  r.add(OptionSpec{"topology.oversubscription", OptionType::kDouble, "ratio", "",
                   "leaf downlink / uplink capacity of a preset's leaf-spine tier (1 = non-blocking, 2 = half the "
                   "uplink capacity); unset: the preset's (1)",
                   1.0, 1024.0, {}});
  r.add(OptionSpec{"topology.spines", OptionType::kInt, "switches", "",
                   "spine switches of a preset's leaf-spine tier (0 or unset: one per leaf uplink port, i.e. "
                   "ceil(leaf downlinks / oversubscription))",
                   0.0, 65536.0, {}});
  r.add(OptionSpec{"topology.routing", OptionType::kChoice, "", "balanced",
                   "choice among equal-cost paths: balanced (per destination, each switch uses the equal-cost link "
                   "carrying the fewest destinations, as InfiniBand subnet managers route; a uniform all-to-all on a "
                   "non-blocking tree then loads no fabric link above its NIC links) or ecmp (static per-pair hash, "
                   "as Ethernet/RoCE ECMP; pairs collide on spine links)",
                   std::nullopt, std::nullopt, {"balanced", "ecmp"}});
  r.add(OptionSpec{"topology.nic_bandwidth", OptionType::kBandwidth, "bytes/s", "",
                   "NIC line rate per GPU per direction, overriding the preset's (e.g. 400Gbps, 50GB/s)",
                   std::nullopt, std::nullopt, {}});
  r.add(OptionSpec{"topology.nvlink_bandwidth", OptionType::kBandwidth, "bytes/s", "",
                   "scale-up line rate per direction overriding the preset's: per GPU for NVSwitch presets, per peer "
                   "link for full-mesh presets (e.g. 450GB/s)",
                   std::nullopt, std::nullopt, {}});
}

Topology topology_from_config(const Config& config) {
  static constexpr const char* kPresetOnly[] = {"topology.nodes",         "topology.scale_out",
                                                "topology.oversubscription", "topology.spines",
                                                "topology.nic_bandwidth", "topology.nvlink_bandwidth"};
  std::string file;
  std::string file_option;
  if (config.is_set("topology.file")) {
    if (config.is_set("topology.preset")) {
      throw InputError("topology.preset (" + config.source("topology.preset") + ") and topology.file (" +
                       config.source("topology.file") + ") are both set: give one of them");
    }
    file = config.get_string("topology.file");
    file_option = "topology.file";
  } else {
    const std::string preset = config.get_string("topology.preset");
    if (looks_like_dot_path(preset)) {
      file = preset;
      file_option = "topology.preset";
    }
  }

  if (!file.empty()) {
    for (const char* opt : kPresetOnly) {
      if (config.is_set(opt)) {
        throw InputError(std::string(opt) + " (" + config.source(opt) +
                         ") applies to topology presets, not to a DOT file: edit the file '" + file + "' instead");
      }
    }
    Topology t = read_dot(resolve_path(config, file_option, file));
    t.set_routing_policy(routing_from_config(config));
    return t;
  }

  TopologyOverrides ov;
  if (config.is_set("topology.scale_out")) {
    ov.scale_out = config.get_string("topology.scale_out") == "tor" ? ScaleOutKind::kTor : ScaleOutKind::kRailOptimized;
  }
  if (config.is_set("topology.oversubscription")) ov.oversubscription = config.get_double("topology.oversubscription");
  if (config.is_set("topology.spines")) ov.spines = static_cast<std::int32_t>(config.get_int("topology.spines"));
  if (config.is_set("topology.nic_bandwidth")) ov.nic_bandwidth = config.get_bandwidth("topology.nic_bandwidth");
  if (config.is_set("topology.nvlink_bandwidth")) ov.nvlink_bandwidth = config.get_bandwidth("topology.nvlink_bandwidth");
  const int nodes = config.is_set("topology.nodes") ? static_cast<int>(config.get_int("topology.nodes")) : 0;
  Topology t = make_topology_preset(config.get_string("topology.preset"), nodes, ov);
  t.set_routing_policy(routing_from_config(config));
  return t;
}

}  // namespace moesim
