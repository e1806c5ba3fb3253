#include "topology/presets.hpp"

#include "sim/options.hpp"  // InputError

namespace moesim {
namespace {

// Shared, derived or assumed figures (docs/topology.md, "Presets"):
// PCIe per direction, payload rate of an x16 link after 128b/130b encoding:
//   Gen5: 32 GT/s x 16 lanes x 128/130 / 8 = 63.0 GB/s; Gen4: 16 GT/s -> 31.5 GB/s.
constexpr double kPcieGen5GBps = 32.0 * 16.0 * 128.0 / 130.0 / 8.0;
constexpr double kPcieGen4GBps = 16.0 * 16.0 * 128.0 / 130.0 / 8.0;
// Per-hop latencies: the assumed class defaults (see default_link_latency).
constexpr Duration kNvLinkLatency = default_link_latency(LinkClass::kNvLink);
constexpr Duration kPcieLatency = default_link_latency(LinkClass::kPcie);
constexpr Duration kNicLatency = default_link_latency(LinkClass::kNic);
constexpr Duration kFabricLatency = default_link_latency(LinkClass::kFabric);

ScaleOutSpec scale_out(ScaleOutKind kind, Bandwidth nic, double pcie_gbps) {
  ScaleOutSpec s;
  s.kind = kind;
  s.nic_bandwidth = nic;
  s.nic_latency = kNicLatency;
  s.pcie_bandwidth = Bandwidth::gbytes_per_second(pcie_gbps);
  s.pcie_latency = kPcieLatency;
  s.fabric_latency = kFabricLatency;
  s.oversubscription = 1.0;
  return s;
}

struct PresetEntry {
  TopologyPresetInfo info;
  ScaleUpSpec scale_up;
  ScaleOutSpec scale_out;
};

const std::vector<PresetEntry>& entries() {
  static const std::vector<PresetEntry> table = [] {
    std::vector<PresetEntry> t;
    t.push_back(PresetEntry{
        {"default",
         "64 GB-GPU cluster after CINECA Leonardo booster: 4x A100 64GB per node, NVLink3 full mesh 100 GB/s per "
         "peer, 1x HDR100 (100 Gb/s) NIC per GPU, non-blocking leaf-spine",
         "CINECA Leonardo booster node (4x A100 64GB SXM; NVLink3 200 GB/s per GPU pair, i.e. 4 links x 25 GB/s = "
         "100 GB/s per direction; 2x dual-port ConnectX-6 HDR100 = 4x 100 Gb/s); PCIe Gen4 x16 31.5 GB/s [D]. "
         "Leonardo's Dragonfly+ fabric is approximated by a non-blocking leaf-spine (one ToR leaf per node).",
         16},
        ScaleUpSpec{ScaleUpKind::kFullMesh, 4, Bandwidth::gbytes_per_second(100.0), kNvLinkLatency},
        scale_out(ScaleOutKind::kTor, Bandwidth::gbits_per_second(100.0), kPcieGen4GBps)});
    t.push_back(PresetEntry{
        {"dgx-h100",
         "NVIDIA DGX H100: 8x H100 SXM, NVSwitch NVLink4 450 GB/s per GPU, 8x ConnectX-7 400 Gb/s, rail-optimized",
         "NVIDIA DGX H100 datasheet / DGX SuperPOD reference architecture (rail-optimized); NVLink4 900 GB/s "
         "bidirectional = 450 GB/s per direction (calibration.md H100 row); ConnectX-7 400 Gb/s = 50 GB/s; PCIe "
         "Gen5 x16 63 GB/s [D].",
         8},
        ScaleUpSpec{ScaleUpKind::kNvSwitch, 8, Bandwidth::gbytes_per_second(450.0), kNvLinkLatency},
        scale_out(ScaleOutKind::kRailOptimized, Bandwidth::gbits_per_second(400.0), kPcieGen5GBps)});
    t.push_back(PresetEntry{
        {"dgx-a100",
         "NVIDIA DGX A100: 8x A100 SXM 80GB, NVSwitch NVLink3 300 GB/s per GPU, 8x HDR 200 Gb/s NICs, "
         "rail-optimized",
         "NVIDIA DGX A100 datasheet / DGX SuperPOD A100 reference architecture; NVLink3 600 GB/s bidirectional = "
         "300 GB/s per direction (calibration.md A100 row); 8x ConnectX-6 HDR 200 Gb/s = 25 GB/s; PCIe Gen4 x16 "
         "31.5 GB/s [D].",
         8},
        ScaleUpSpec{ScaleUpKind::kNvSwitch, 8, Bandwidth::gbytes_per_second(300.0), kNvLinkLatency},
        scale_out(ScaleOutKind::kRailOptimized, Bandwidth::gbits_per_second(200.0), kPcieGen4GBps)});
    t.push_back(PresetEntry{
        {"hgx-h800",
         "NVIDIA HGX H800: 8x H800 SXM, NVSwitch 200 GB/s per GPU per direction (~160 GB/s achieved in EP "
         "all-to-all), 8x 400 Gb/s NICs, rail-optimized",
         "calibration.md H800 row: NVLink 400 GB/s bidirectional = 200 GB/s per direction, ~160 GB/s achieved in EP "
         "all-to-all (DeepEP README); 400 Gb/s InfiniBand NICs per GPU, rail-optimized (DeepSeek-V3 report); PCIe "
         "Gen5 x16 63 GB/s [D].",
         8},
        ScaleUpSpec{ScaleUpKind::kNvSwitch, 8, Bandwidth::gbytes_per_second(200.0), kNvLinkLatency},
        scale_out(ScaleOutKind::kRailOptimized, Bandwidth::gbits_per_second(400.0), kPcieGen5GBps)});
    t.push_back(PresetEntry{
        {"mi300x-8",
         "AMD MI300X platform: 8x MI300X, xGMI full mesh 64 GB/s per peer x 7, 8x 400 Gb/s NICs, rail-optimized",
         "calibration.md MI300X row (xGMI 64 GB/s per peer per direction x 7 peers, AMD Instinct MI300X platform); "
         "8x 400 Gb/s NICs, rail-optimized, and PCIe Gen5 x16 63 GB/s [D] are assumptions (typical MI300X "
         "cluster). The NVLink-class efficiency default was calibrated on NVLink, not xGMI.",
         8},
        ScaleUpSpec{ScaleUpKind::kFullMesh, 8, Bandwidth::gbytes_per_second(64.0), kNvLinkLatency},
        scale_out(ScaleOutKind::kRailOptimized, Bandwidth::gbits_per_second(400.0), kPcieGen5GBps)});
    return t;
  }();
  return table;
}

const PresetEntry& find_entry(const std::string& name) {
  for (const PresetEntry& e : entries()) {
    if (e.info.name == name) return e;
  }
  std::string known;
  for (const PresetEntry& e : entries()) known += (known.empty() ? "" : ", ") + e.info.name;
  throw InputError("unknown topology preset '" + name + "' (known presets: " + known +
                   "; or give a GraphViz .dot file)");
}

}  // namespace

const std::vector<TopologyPresetInfo>& topology_presets() {
  static const std::vector<TopologyPresetInfo> infos = [] {
    std::vector<TopologyPresetInfo> out;
    for (const PresetEntry& e : entries()) out.push_back(e.info);
    return out;
  }();
  return infos;
}

std::vector<std::string> topology_preset_names() {
  std::vector<std::string> out;
  for (const PresetEntry& e : entries()) out.push_back(e.info.name);
  return out;
}

ClusterSpec topology_preset_spec(const std::string& name, std::optional<std::int32_t> nodes) {
  const PresetEntry& e = find_entry(name);
  ClusterSpec spec;
  spec.name = e.info.name;
  spec.source = e.info.source;
  spec.nodes = nodes.value_or(e.info.default_nodes);
  if (spec.nodes < 1) throw InputError("topology.nodes must be >= 1, got " + std::to_string(spec.nodes));
  spec.scale_up = e.scale_up;
  spec.scale_out = e.scale_out;
  return spec;
}

Topology make_topology_preset(const std::string& name, int nodes, const TopologyOverrides& overrides) {
  ClusterSpec spec = topology_preset_spec(name, nodes > 0 ? std::optional<std::int32_t>(nodes) : std::nullopt);
  if (overrides.scale_out) spec.scale_out.kind = *overrides.scale_out;
  if (overrides.oversubscription) spec.scale_out.oversubscription = *overrides.oversubscription;
  if (overrides.nic_bandwidth) spec.scale_out.nic_bandwidth = *overrides.nic_bandwidth;
  if (overrides.nvlink_bandwidth) spec.scale_up.bandwidth = *overrides.nvlink_bandwidth;
  if (overrides.spines) spec.scale_out.spines = *overrides.spines;
  const bool modified = overrides.scale_out || overrides.oversubscription || overrides.nic_bandwidth ||
                        overrides.nvlink_bandwidth || overrides.spines;
  Topology t = build_cluster(spec);
  if (modified) t.source += " Modified by topology.* overrides.";
  return t;
}

}  // namespace moesim
