#pragma once
// The cluster graph: GPUs, NVSwitches, NICs, leaf/spine/ToR switches, joined by
// directed links that carry a bandwidth, a latency and a link class. Stored as
// a Boost.Graph adjacency_list (vertex bundle VertexInfo, edge bundle LinkId
// into a flat LinkInfo table); routing is shortest-path (hop count), with the
// choice among equal-cost next hops made by a RoutingPolicy (static hash ECMP
// of (src, dst, hop), or balanced per destination), cached. See docs/topology.md.
//
// Thread safety: route() is const but fills a cache, so one Topology must not
// be routed from several threads at once (each simulation owns its Topology).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/communication.hpp"  // GpuId
#include "sim/units.hpp"

namespace moesim {

using VertexId = std::int32_t;
using LinkId = std::int32_t;

enum class VertexKind : std::uint8_t { kGpu, kNvSwitch, kNic, kLeafSwitch, kSpineSwitch, kTorSwitch };
/// kNvLink is the GPU scale-up class in general: NVLink, AMD xGMI, Huawei HCCS.
/// kPcie: GPU <-> NIC. kNic: NIC <-> first switch. kFabric: switch <-> switch.
enum class LinkClass : std::uint8_t { kNvLink, kPcie, kNic, kFabric };

inline constexpr std::size_t kVertexKindCount = 6;
inline constexpr std::size_t kLinkClassCount = 4;

/// "gpu", "nvswitch", "nic", "leaf", "spine", "tor" (the DOT `kind` values).
std::string_view to_string(VertexKind kind);
/// "nvlink", "pcie", "nic", "fabric" (the DOT `class` values).
std::string_view to_string(LinkClass cls);
/// Inverse of to_string (exact, lower case); false when unknown.
bool parse_vertex_kind(std::string_view text, VertexKind& out);
bool parse_link_class(std::string_view text, LinkClass& out);

struct VertexInfo {
  VertexKind kind = VertexKind::kGpu;
  std::string name;        // "gpu3", "node1.nvswitch", "leaf2", ...
  std::int32_t node = -1;  // server (node) index for devices inside a server, -1 for fabric switches
  GpuId gpu = -1;          // GPU index for kGpu vertices (assigned by add_vertex)
};

struct LinkInfo {
  VertexId from = 0;
  VertexId to = 0;
  Bandwidth bandwidth;  // line rate, one direction
  Duration latency;     // per-hop latency
  LinkClass link_class = LinkClass::kNvLink;
};

/// A route from one GPU to another: the directed links in order.
struct Route {
  std::vector<LinkId> links;
  Duration latency;      // sum of link latencies
  Bandwidth bottleneck;  // min over links of bandwidth x class efficiency (+inf for src == dst)
};

/// How a route picks among equal-cost next hops (docs/topology.md, "Routing").
enum class RoutingPolicy : std::uint8_t {
  /// Per pair: hash(src, dst, hop) mod count (static ECMP, as Ethernet/RoCE
  /// switches hash flows). Deterministic; pairs can collide on a link.
  kEcmpHash,
  /// Per destination, balanced: destinations in GPU order, each switch sends
  /// a destination out of the equal-cost link that carries the fewest
  /// destinations so far (InfiniBand subnet-manager style). Computed for all
  /// destinations on the first route: O(GPUs x links).
  kBalanced,
};
std::string_view to_string(RoutingPolicy policy);  // "ecmp", "balanced"
bool parse_routing_policy(std::string_view text, RoutingPolicy& out);

/// Hop count, latency and bottleneck of a route (see Topology::append_route).
struct RouteMetrics {
  std::size_t hops = 0;
  Duration latency;      // sum of link latencies
  Bandwidth bottleneck;  // min over links of bandwidth x class efficiency (+inf for src == dst)
};

/// Default achievable fraction of line rate per link class, from calibration.md:
///  - NVLink 0.82: H100 ring all-reduce busbw ~370 GB/s of 450 GB/s (nccl-tests #212);
///    8x H200 ring busbw 365.6 GB/s of 450 (0.81, stas00/ml-engineering).
///  - PCIe 1.0: the GPU<->NIC PCIe path is provisioned above the NIC rate and the
///    measured end-to-end NIC figure (below) already includes it; no separate data.
///  - NIC 0.97: ConnectX-7 400 Gb/s = 50 GB/s line, 48-49 GB/s achieved (nccl-tests #267).
///  - Fabric 0.97: switch-to-switch links are the same InfiniBand/Ethernet
///    technology as the NIC links; no separate measurement, so the NIC figure.
/// The network model may recalibrate these with Topology::set_efficiency.
inline constexpr std::array<double, kLinkClassCount> kDefaultEfficiency = {0.82, 1.0, 0.97, 0.97};

class Topology {
 public:
  Topology();
  ~Topology();
  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  /// Adds a vertex. A kGpu vertex gets the next GpuId (info.gpu must be -1 or
  /// equal to gpu_count()) and must name its server (info.node >= 0); violations
  /// throw std::invalid_argument (a programming error: builders and the DOT
  /// reader check user input before).
  VertexId add_vertex(VertexInfo info);
  /// Adds one directed link. Throws std::invalid_argument on unknown vertices,
  /// a self loop, a non-positive or non-finite bandwidth or a negative latency.
  LinkId add_link(VertexId from, VertexId to, Bandwidth bw, Duration latency, LinkClass cls);
  /// Two directed links, one each way; returns the first (the second is +1).
  LinkId add_duplex(VertexId a, VertexId b, Bandwidth bw, Duration latency, LinkClass cls);

  [[nodiscard]] std::int32_t gpu_count() const;
  [[nodiscard]] std::int32_t node_count() const;          // servers: 1 + largest node index of a GPU
  [[nodiscard]] std::int32_t node_of(GpuId gpu) const;    // server index of a GPU
  [[nodiscard]] VertexId gpu_vertex(GpuId gpu) const;
  /// The GPUs of server `node`, ascending.
  [[nodiscard]] std::vector<GpuId> gpus_of_node(std::int32_t node) const;
  [[nodiscard]] std::size_t vertex_count() const;
  [[nodiscard]] std::size_t link_count() const;
  [[nodiscard]] const VertexInfo& vertex(VertexId v) const;
  [[nodiscard]] const LinkInfo& link(LinkId l) const;
  /// Outgoing links of a vertex, ascending link id.
  [[nodiscard]] std::vector<LinkId> out_links(VertexId v) const;

  /// Achievable fraction of line rate for a link class (see kDefaultEfficiency).
  [[nodiscard]] double efficiency(LinkClass cls) const;
  /// Sets it; `fraction` must be in (0, 1] (else std::invalid_argument).
  /// Cached routes keep their identity and get their bottleneck recomputed.
  void set_efficiency(LinkClass cls, double fraction);
  /// Effective bandwidth of a link: line rate x class efficiency.
  [[nodiscard]] Bandwidth effective_bandwidth(LinkId l) const;

  [[nodiscard]] RoutingPolicy routing_policy() const;
  /// Changes the policy; clears the route cache (earlier Route references dangle).
  void set_routing_policy(RoutingPolicy policy);

  /// Route between two GPUs (cached; the reference stays valid until the graph
  /// is modified by add_vertex/add_link/set_routing_policy). Shortest in hops;
  /// a GPU is never a transit hop unless no path avoids it; among equal-cost
  /// next hops the routing policy chooses (default kEcmpHash: hash(src, dst,
  /// hop) mod count), deterministically.
  /// Throws InputError naming both GPUs when `dst` cannot be reached from `src`,
  /// std::out_of_range for a GPU id outside [0, gpu_count()).
  [[nodiscard]] const Route& route(GpuId src, GpuId dst) const;

  /// The same route's links appended to `links`, without keeping a Route in
  /// the cache: for models that store paths themselves (no second copy of 1M
  /// routes). Same links, latency, bottleneck and errors as route().
  RouteMetrics append_route(GpuId src, GpuId dst, std::vector<LinkId>& links) const;

  /// Throws InputError when the cluster has no GPU or some GPU cannot reach
  /// another (naming both); `context` (e.g. a file name) prefixes the message.
  void validate(const std::string& context = "topology") const;

  /// Human-readable name of a GPU for messages: "gpu 3 (node1.gpu3)".
  [[nodiscard]] std::string describe_gpu(GpuId gpu) const;

  std::string name;    // preset name or DOT file
  std::string source;  // where its numbers come from (datasheets, ...), for reports

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Counts and capacities of a topology, for `moesim topology` and reports.
struct TopologySummary {
  std::string name;
  std::string source;
  std::int32_t gpus = 0;
  std::int32_t nodes = 0;
  std::array<std::size_t, kVertexKindCount> vertices_by_kind{};  // indexed by VertexKind
  std::size_t vertices = 0;
  std::size_t links = 0;                                      // directed links
  std::array<std::size_t, kLinkClassCount> links_by_class{};  // indexed by LinkClass
  std::array<double, kLinkClassCount> efficiency{};
  /// Sum of the line rates of all directed links.
  Bandwidth total_link_capacity;
  /// Line-rate capacity of the cheapest cut between the two halves of the GPUs
  /// (the smaller of both directions), minimised over the candidate halvings
  /// (contiguous halves of the servers, and even/odd servers; one server: its
  /// GPUs split in halves). Each candidate is a max-flow from a super-source on
  /// one half to a super-sink on the other. Zero for a single GPU.
  Bandwidth bisection_bandwidth;
  /// Which halving gave the minimum, in words.
  std::string bisection_cut;
};

TopologySummary summarize(const Topology& topology);

}  // namespace moesim
