#pragma once
// Parameterised builders of cluster topologies: the scale-up fabric inside a
// server (NVSwitch or full mesh) and the scale-out network between servers
// (one NIC per GPU, rail-optimized or per-node ToR leaves, a leaf-spine second
// tier with an oversubscription ratio). See docs/topology.md.
//
// Every builder checks its parameters and throws InputError naming the
// offending one (these come from presets overridden by user options).

#include <cstdint>
#include <string>
#include <vector>

#include "sim/units.hpp"
#include "topology/topology.hpp"

namespace moesim {

enum class ScaleUpKind : std::uint8_t {
  kNvSwitch,  // every GPU has one duplex link to the node's (aggregated) NVSwitch
  kFullMesh,  // one duplex link per GPU pair (AMD xGMI, Huawei HCCS, A100 4-GPU boards)
};

enum class ScaleOutKind : std::uint8_t {
  kRailOptimized,  // NIC i of every server on leaf i (one leaf per rail)
  kTor,            // every NIC of a server on that server's ToR switch
};

std::string_view to_string(ScaleOutKind kind);  // "rail", "tor"

/// Per-hop latency assumed for a link class when nothing more specific is
/// known (presets, DOT edges without `latency`). Assumed orders of magnitude,
/// not measurements: they matter only for small messages, where the network
/// model's per-collective alpha (calibrated against measured collectives)
/// dominates. NVLink hop 100 ns; PCIe hop 150 ns; NIC link 500 ns (NIC
/// processing + cable + switch port); leaf<->spine 150 ns (InfiniBand switch
/// port-to-port ~130 ns, e.g. Mellanox Quantum datasheets, + cable).
constexpr Duration default_link_latency(LinkClass cls) {
  switch (cls) {
    case LinkClass::kNvLink: return Duration::ns(100);
    case LinkClass::kPcie: return Duration::ns(150);
    case LinkClass::kNic: return Duration::ns(500);
    case LinkClass::kFabric: return Duration::ns(150);
  }
  return Duration::zero();
}

struct ScaleUpSpec {
  ScaleUpKind kind = ScaleUpKind::kNvSwitch;
  std::int32_t gpus_per_node = 8;
  /// NVSwitch: per GPU per direction. Full mesh: per peer link per direction.
  Bandwidth bandwidth = Bandwidth::gbytes_per_second(450.0);
  /// Per hop (see default_link_latency).
  Duration latency = default_link_latency(LinkClass::kNvLink);
};

struct ScaleOutSpec {
  ScaleOutKind kind = ScaleOutKind::kRailOptimized;
  /// Per NIC per direction (the NIC <-> leaf link).
  Bandwidth nic_bandwidth = Bandwidth::gbits_per_second(400.0);
  Duration nic_latency = default_link_latency(LinkClass::kNic);
  /// GPU <-> NIC (PCIe) per direction.
  Bandwidth pcie_bandwidth = Bandwidth::gbytes_per_second(63.0);
  Duration pcie_latency = default_link_latency(LinkClass::kPcie);
  /// Leaf <-> spine link latency.
  Duration fabric_latency = default_link_latency(LinkClass::kFabric);
  /// Leaf uplink capacity = leaf downlink capacity / oversubscription (>= 1).
  double oversubscription = 1.0;
  /// Spine switches; 0 = one per leaf uplink port, i.e. ceil(downlinks / oversubscription).
  std::int32_t spines = 0;
};

struct ClusterSpec {
  std::string name;
  std::string source;
  std::int32_t nodes = 1;
  ScaleUpSpec scale_up;
  ScaleOutSpec scale_out;  // ignored for a single node (no scale-out)
};

/// Adds one server's GPUs (numbered after the existing ones) and its scale-up
/// fabric; returns the GPU vertices in order.
std::vector<VertexId> add_nvswitch_node(Topology& t, std::int32_t node, std::int32_t gpus, Bandwidth per_gpu,
                                        Duration latency);
std::vector<VertexId> add_full_mesh_node(Topology& t, std::int32_t node, std::int32_t gpus, Bandwidth per_peer,
                                         Duration latency);

/// Adds the scale-out network: one NIC per GPU, GPU<->NIC over PCIe, NIC<->leaf
/// over the NIC link, and (when there is more than one leaf) a spine tier.
/// `gpus_by_node[n]` are the GPU vertices of server n, each server the same size.
void add_scale_out(Topology& t, const std::vector<std::vector<VertexId>>& gpus_by_node, const ScaleOutSpec& spec);

/// Builds a whole cluster: `nodes` servers of the scale-up kind, joined by the
/// scale-out network when nodes > 1. Validates the result.
Topology build_cluster(const ClusterSpec& spec);

}  // namespace moesim
