#include "topology/builders.hpp"

#include <cmath>
#include <string>

#include "sim/options.hpp"  // InputError
#include "sim/unit_parse.hpp"

namespace moesim {

std::string_view to_string(ScaleOutKind kind) {
  switch (kind) {
    case ScaleOutKind::kRailOptimized: return "rail";
    case ScaleOutKind::kTor: return "tor";
  }
  return "?";
}

namespace {

void check_bandwidth(Bandwidth bw, const std::string& what) {
  if (!(bw.bytes_per_second() > 0.0) || !std::isfinite(bw.bytes_per_second())) {
    throw InputError(what + " must be a positive bandwidth (e.g. 450GB/s, 400Gbps)");
  }
}

void check_latency(Duration d, const std::string& what) {
  if (d < Duration::zero()) throw InputError(what + " must not be negative");
}

std::string node_prefix(std::int32_t node) { return "node" + std::to_string(node) + "."; }

VertexId add_gpu(Topology& t, std::int32_t node, std::int32_t local) {
  return t.add_vertex(VertexInfo{VertexKind::kGpu, node_prefix(node) + "gpu" + std::to_string(local), node, -1});
}

void check_node_args(std::int32_t node, std::int32_t gpus) {
  if (node < 0) throw InputError("server index must be >= 0, got " + std::to_string(node));
  if (gpus < 1) throw InputError("GPUs per server must be >= 1, got " + std::to_string(gpus));
}

}  // namespace

std::vector<VertexId> add_nvswitch_node(Topology& t, std::int32_t node, std::int32_t gpus, Bandwidth per_gpu,
                                        Duration latency) {
  check_node_args(node, gpus);
  check_bandwidth(per_gpu, "NVLink bandwidth per GPU");
  check_latency(latency, "NVLink latency");
  std::vector<VertexId> out;
  out.reserve(static_cast<std::size_t>(gpus));
  for (std::int32_t i = 0; i < gpus; ++i) out.push_back(add_gpu(t, node, i));
  // The physical NVSwitch chips of a node (4 on a DGX H100, 6 on a DGX A100)
  // are aggregated into one non-blocking switch vertex: each GPU's NVLinks
  // spread over all chips, so what limits a GPU is its own total NVLink rate.
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kNvSwitch, node_prefix(node) + "nvswitch", node, -1});
  for (const VertexId g : out) t.add_duplex(g, sw, per_gpu, latency, LinkClass::kNvLink);
  return out;
}

std::vector<VertexId> add_full_mesh_node(Topology& t, std::int32_t node, std::int32_t gpus, Bandwidth per_peer,
                                         Duration latency) {
  check_node_args(node, gpus);
  check_bandwidth(per_peer, "scale-up bandwidth per peer");
  check_latency(latency, "scale-up latency");
  std::vector<VertexId> out;
  out.reserve(static_cast<std::size_t>(gpus));
  for (std::int32_t i = 0; i < gpus; ++i) out.push_back(add_gpu(t, node, i));
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t j = i + 1; j < out.size(); ++j) t.add_duplex(out[i], out[j], per_peer, latency, LinkClass::kNvLink);
  }
  return out;
}

void add_scale_out(Topology& t, const std::vector<std::vector<VertexId>>& gpus_by_node, const ScaleOutSpec& spec) {
  if (gpus_by_node.empty()) throw InputError("scale-out network needs at least one server");
  const std::size_t per_node = gpus_by_node.front().size();
  for (const auto& g : gpus_by_node) {
    if (g.size() != per_node || per_node == 0) {
      throw InputError("scale-out network needs servers with the same, non-zero number of GPUs");
    }
  }
  check_bandwidth(spec.nic_bandwidth, "topology.nic_bandwidth (NIC bandwidth)");
  check_bandwidth(spec.pcie_bandwidth, "PCIe bandwidth");
  check_latency(spec.nic_latency, "NIC latency");
  check_latency(spec.pcie_latency, "PCIe latency");
  check_latency(spec.fabric_latency, "fabric latency");
  if (!(spec.oversubscription >= 1.0) || !std::isfinite(spec.oversubscription)) {
    throw InputError("topology.oversubscription must be a number >= 1 (1 = non-blocking), got " +
                     std::to_string(spec.oversubscription));
  }
  if (spec.spines < 0) throw InputError("the number of spine switches must be >= 0 (0 = automatic)");

  const std::size_t nodes = gpus_by_node.size();
  const bool rail = spec.kind == ScaleOutKind::kRailOptimized;
  const std::size_t leaves = rail ? per_node : nodes;
  const std::size_t downlinks = rail ? nodes : per_node;  // NICs per leaf

  std::vector<VertexId> leaf(leaves);
  for (std::size_t l = 0; l < leaves; ++l) {
    const std::string nm = (rail ? "leaf" : "tor") + std::to_string(l);
    leaf[l] = t.add_vertex(VertexInfo{rail ? VertexKind::kLeafSwitch : VertexKind::kTorSwitch, nm, -1, -1});
  }
  for (std::size_t n = 0; n < nodes; ++n) {
    for (std::size_t i = 0; i < per_node; ++i) {
      const auto node = static_cast<std::int32_t>(n);
      const VertexId nic = t.add_vertex(
          VertexInfo{VertexKind::kNic, node_prefix(node) + "nic" + std::to_string(i), node, -1});
      t.add_duplex(gpus_by_node[n][i], nic, spec.pcie_bandwidth, spec.pcie_latency, LinkClass::kPcie);
      t.add_duplex(nic, leaf[rail ? i : n], spec.nic_bandwidth, spec.nic_latency, LinkClass::kNic);
    }
  }
  if (leaves < 2) return;  // one leaf joins everything: no second tier

  // Second tier: every leaf has one uplink to every spine; the uplinks of a
  // leaf together carry its downlink capacity / oversubscription.
  const double uplink_total = static_cast<double>(downlinks) * spec.nic_bandwidth.bytes_per_second() /
                              spec.oversubscription;
  const auto spines = spec.spines > 0
                          ? static_cast<std::size_t>(spec.spines)
                          : static_cast<std::size_t>(std::ceil(static_cast<double>(downlinks) / spec.oversubscription));
  const Bandwidth uplink = Bandwidth::bytes_per_second(uplink_total / static_cast<double>(spines));
  std::vector<VertexId> spine(spines);
  for (std::size_t s = 0; s < spines; ++s) {
    spine[s] = t.add_vertex(VertexInfo{VertexKind::kSpineSwitch, "spine" + std::to_string(s), -1, -1});
  }
  for (std::size_t l = 0; l < leaves; ++l) {
    for (std::size_t s = 0; s < spines; ++s) t.add_duplex(leaf[l], spine[s], uplink, spec.fabric_latency, LinkClass::kFabric);
  }
}

Topology build_cluster(const ClusterSpec& spec) {
  if (spec.nodes < 1) throw InputError("topology.nodes must be >= 1, got " + std::to_string(spec.nodes));
  const ScaleUpSpec& up = spec.scale_up;
  if (up.gpus_per_node < 1) throw InputError("GPUs per server must be >= 1");
  Topology t;
  t.name = spec.name;
  t.source = spec.source;
  std::vector<std::vector<VertexId>> gpus(static_cast<std::size_t>(spec.nodes));
  for (std::int32_t n = 0; n < spec.nodes; ++n) {
    gpus[static_cast<std::size_t>(n)] =
        up.kind == ScaleUpKind::kNvSwitch ? add_nvswitch_node(t, n, up.gpus_per_node, up.bandwidth, up.latency)
                                          : add_full_mesh_node(t, n, up.gpus_per_node, up.bandwidth, up.latency);
  }
  if (spec.nodes > 1) add_scale_out(t, gpus, spec.scale_out);
  t.validate(spec.name.empty() ? "topology" : "topology '" + spec.name + "'");
  return t;
}

}  // namespace moesim
