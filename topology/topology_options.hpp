#pragma once
// The [topology] scenario options and the topology they describe.
//
//   topology.preset            preset name (moesim presets) or a GraphViz .dot file   [default: default]
//   topology.file              GraphViz .dot file (instead of a preset)
//   topology.nodes             servers (preset's default when unset)
//   topology.scale_out         rail | tor
//   topology.oversubscription  leaf downlink / uplink capacity ratio (>= 1)
//   topology.spines            spine switches (0 = one per leaf uplink port)
//   topology.routing           balanced | ecmp (choice among equal-cost paths)   [default: balanced]
//   topology.nic_bandwidth     per NIC per direction (override)
//   topology.nvlink_bandwidth  per GPU (NVSwitch) or per peer (full mesh), per direction (override)
// The `network.*` options belong to the network model, not here.

#include "sim/options.hpp"
#include "topology/topology.hpp"

namespace moesim {

void register_topology_options(OptionRegistry& registry);

/// Builds the scenario's topology. Throws InputError on an unknown preset, an
/// unreadable/invalid DOT file, or preset-only options combined with a file.
/// A relative DOT path set in a scenario file is resolved against that file's
/// directory; one given on the command line, against the working directory.
Topology topology_from_config(const Config& config);

}  // namespace moesim
