#pragma once
// Cluster topologies known by name (`topology.preset`, `moesim presets`), each
// with the source of its numbers. See docs/topology.md for the full citations.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "topology/builders.hpp"
#include "topology/topology.hpp"

namespace moesim {

struct TopologyPresetInfo {
  std::string name;         // "dgx-h100"
  std::string description;  // one line, for `moesim presets`
  std::string source;       // where the numbers come from
  std::int32_t default_nodes = 1;
};

/// Every preset, in a fixed order ("default" first).
const std::vector<TopologyPresetInfo>& topology_presets();

/// Preset names, in the same order.
std::vector<std::string> topology_preset_names();

/// The ClusterSpec of a preset with `nodes` servers (nullopt: its default).
/// Throws InputError for an unknown name (listing the known ones) or nodes < 1.
ClusterSpec topology_preset_spec(const std::string& name, std::optional<std::int32_t> nodes = std::nullopt);

/// Optional overrides applied on top of a preset (from topology.* options).
struct TopologyOverrides {
  std::optional<ScaleOutKind> scale_out;
  std::optional<double> oversubscription;
  std::optional<Bandwidth> nic_bandwidth;
  std::optional<Bandwidth> nvlink_bandwidth;  // NVSwitch: per GPU; full mesh: per peer (per direction)
  std::optional<std::int32_t> spines;
};

/// Builds a preset. `nodes` <= 0 means the preset's default node count.
Topology make_topology_preset(const std::string& name, int nodes = 0, const TopologyOverrides& overrides = {});

}  // namespace moesim
