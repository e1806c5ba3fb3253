// Routing: shortest paths, ECMP spread and determinism, latency sums.
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include "sim/options.hpp"
#include "topology/builders.hpp"
#include "topology/dot_io.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"

using namespace moesim;

namespace {
// The vertex kinds a route visits, starting at the source GPU.
std::vector<VertexKind> kinds_along(const Topology& t, const Route& r, GpuId src) {
  std::vector<VertexKind> out{t.vertex(t.gpu_vertex(src)).kind};
  for (const LinkId l : r.links) out.push_back(t.vertex(t.link(l).to).kind);
  return out;
}
// Links are contiguous: each starts where the previous ended.
void check_contiguous(const Topology& t, const Route& r, GpuId src, GpuId dst) {
  VertexId at = t.gpu_vertex(src);
  for (const LinkId l : r.links) {
    CHECK(t.link(l).from == at);
    at = t.link(l).to;
  }
  CHECK(at == t.gpu_vertex(dst));
}
using K = VertexKind;
}  // namespace

TEST_CASE("intra-node NVSwitch route is GPU -> switch -> GPU", "[topology][routing]") {
  const Topology t = make_topology_preset("dgx-h100", 2);
  const Route& r = t.route(1, 6);
  CHECK(kinds_along(t, r, 1) == std::vector<K>{K::kGpu, K::kNvSwitch, K::kGpu});
  check_contiguous(t, r, 1, 6);
  // Latency: 2 NVLink hops x 100 ns. Bottleneck: 450 GB/s x 0.82.
  CHECK(r.latency == Duration::ns(200));
  CHECK(r.bottleneck.gbytes_per_second() == Approx(450.0 * 0.82));
}

TEST_CASE("full-mesh route is the direct link", "[topology][routing]") {
  const Topology t = make_topology_preset("mi300x-8", 1);
  const Route& r = t.route(2, 5);
  REQUIRE(r.links.size() == 1);
  check_contiguous(t, r, 2, 5);
  CHECK(r.bottleneck.gbytes_per_second() == Approx(64.0 * 0.82));
}

TEST_CASE("rail-optimized cross-node routes: same rail via the leaf, other rails via a spine", "[topology][routing]") {
  const Topology t = make_topology_preset("dgx-h100", 4);
  // GPU 3 (server 0, rail 3) -> GPU 19 (server 2, rail 3): same rail.
  const Route& same = t.route(3, 19);
  CHECK(kinds_along(t, same, 3) == std::vector<K>{K::kGpu, K::kNic, K::kLeafSwitch, K::kNic, K::kGpu});
  check_contiguous(t, same, 3, 19);
  // Latency by hand: PCIe 150 + NIC 500 + NIC 500 + PCIe 150 = 1300 ns.
  CHECK(same.latency == Duration::ns(1300));
  // Bottleneck: NIC 50 GB/s x 0.97 = 48.5 GB/s (PCIe 63 x 1.0 is wider).
  CHECK(same.bottleneck.gbytes_per_second() == Approx(48.5));

  // GPU 3 -> GPU 20 (server 2, rail 4): leaf3 -> spine -> leaf4.
  const Route& other = t.route(3, 20);
  CHECK(kinds_along(t, other, 3) ==
        std::vector<K>{K::kGpu, K::kNic, K::kLeafSwitch, K::kSpineSwitch, K::kLeafSwitch, K::kNic, K::kGpu});
  check_contiguous(t, other, 3, 20);
  // + two fabric hops of 150 ns = 1600 ns.
  CHECK(other.latency == Duration::ns(1600));
  CHECK(t.vertex(t.link(other.links[2]).from).name == "leaf3");
  CHECK(t.vertex(t.link(other.links[3]).to).name == "leaf4");
}

TEST_CASE("ToR cross-node route goes through the ToRs and a spine", "[topology][routing]") {
  const Topology t = make_topology_preset("default", 4);
  const Route& r = t.route(0, 5);
  CHECK(kinds_along(t, r, 0) ==
        std::vector<K>{K::kGpu, K::kNic, K::kTorSwitch, K::kSpineSwitch, K::kTorSwitch, K::kNic, K::kGpu});
  // Bottleneck: HDR100 12.5 GB/s x 0.97.
  CHECK(r.bottleneck.gbytes_per_second() == Approx(12.5 * 0.97));
  // Inside a server the full mesh is one hop.
  CHECK(t.route(0, 3).links.size() == 1);
}

TEST_CASE("ECMP spreads cross-rail pairs evenly over the spines, deterministically", "[topology][routing]") {
  // 8 servers x 8 GPUs rail-optimized: 8 leaves, each with 8 downlinks -> 8 spines.
  const Topology t = make_topology_preset("dgx-h100", 8);
  std::map<std::string, int> per_spine;
  int pairs = 0;
  for (GpuId s = 0; s < 64; ++s) {
    for (GpuId d = 0; d < 64; ++d) {
      if (t.node_of(s) == t.node_of(d) || s % 8 == d % 8) continue;  // cross-node, cross-rail only
      const Route& r = t.route(s, d);
      REQUIRE(r.links.size() == 6);
      ++per_spine[t.vertex(t.link(r.links[2]).to).name];
      ++pairs;
    }
  }
  // 64 sources x (56 other-rail GPUs - 7 in the same server) = 3136 pairs.
  REQUIRE(pairs == 64 * 49);
  REQUIRE(per_spine.size() == 8);
  // Even share 392 per spine; a binomial spread has sd ~ sqrt(3136/8 * 7/8) = 18.5,
  // so +-15 % (59, ~3 sd) holds for any decent hash.
  for (const auto& [spine, n] : per_spine) {
    INFO(spine << " carries " << n);
    CHECK(n >= 333);
    CHECK(n <= 451);
  }
  // Deterministic: a second, independently built topology picks the same links,
  // and asking twice returns the same cached route.
  const Topology again = make_topology_preset("dgx-h100", 8);
  for (GpuId s = 0; s < 64; s += 5) {
    for (GpuId d = 0; d < 64; d += 3) {
      CHECK(again.route(s, d).links == t.route(s, d).links);
      CHECK(&t.route(s, d) == &t.route(s, d));
    }
  }
}

TEST_CASE("a route relays through GPUs only when nothing else connects", "[topology][routing]") {
  const Topology ring = read_dot(std::string(MOESIM_TOPOLOGY_TEST_DATA) + "/gpu_ring.dot");
  // Natural order: gpu1=0, gpu2=1, gpu3=2, gpu10=3; ring 1->2->3->10->1.
  REQUIRE(ring.vertex(ring.gpu_vertex(3)).name == "gpu10");
  const Route& r = ring.route(1, 0);  // gpu2 -> gpu3 -> gpu10 -> gpu1
  CHECK(r.links.size() == 3);
  CHECK(r.latency == Duration::us(3));
  check_contiguous(ring, r, 1, 0);
}

TEST_CASE("routes for a 256-GPU all-to-all have the hand-counted hops, cached or not", "[topology][routing]") {
  // (Route cost is measured by bench_network_alltoall, not asserted here.)
  const Topology t = make_topology_preset("dgx-h100", 32);
  std::size_t hops = 0;
  for (GpuId s = 0; s < 256; ++s) {
    for (GpuId d = 0; d < 256; ++d) hops += t.route(s, d).links.size();
  }
  // Hand count per source: 7 NVSwitch peers x 2 hops, 31 same-rail x 4, 31 x 7 other-rail x 6.
  CHECK(hops == 256U * (7U * 2U + 31U * 4U + 31U * 7U * 6U));
  std::size_t hops2 = 0;
  for (GpuId s = 0; s < 256; ++s) {
    for (GpuId d = 0; d < 256; ++d) hops2 += t.route(s, d).links.size();
  }
  CHECK(hops2 == hops);
}

TEST_CASE("append_route gives the same links, latency and bottleneck as route", "[topology][routing]") {
  const Topology a = make_topology_preset("dgx-h100", 4);
  const Topology b = make_topology_preset("dgx-h100", 4);
  std::vector<LinkId> store;
  for (GpuId s = 0; s < 32; ++s) {
    for (GpuId d = 0; d < 32; ++d) {
      const std::size_t before = store.size();
      const RouteMetrics m = b.append_route(s, d, store);
      const Route& r = a.route(s, d);
      REQUIRE(m.hops == r.links.size());
      CHECK(std::vector<LinkId>(store.begin() + static_cast<std::ptrdiff_t>(before), store.end()) == r.links);
      CHECK(m.latency == r.latency);
      CHECK(m.bottleneck.bytes_per_second() == r.bottleneck.bytes_per_second());
    }
  }
  // Repeated calls after the per-destination tables were released still agree.
  std::vector<LinkId> again;
  b.append_route(3, 20, again);
  CHECK(again == a.route(3, 20).links);
}

namespace {
// Flows of a uniform all-to-all (every ordered GPU pair) on each link.
std::vector<int> all_to_all_flows(const Topology& t) {
  std::vector<int> flows(t.link_count(), 0);
  for (GpuId s = 0; s < t.gpu_count(); ++s) {
    for (GpuId d = 0; d < t.gpu_count(); ++d) {
      for (const LinkId l : t.route(s, d).links) ++flows[static_cast<std::size_t>(l)];
    }
  }
  return flows;
}
int max_flows(const Topology& t, const std::vector<int>& flows, LinkClass cls) {
  int m = 0;
  for (std::size_t l = 0; l < flows.size(); ++l) {
    if (t.link(static_cast<LinkId>(l)).link_class == cls) m = std::max(m, flows[l]);
  }
  return m;
}
}  // namespace

TEST_CASE("balanced routing loads no fabric link above the NIC links in a uniform all-to-all", "[topology][routing]") {
  // dgx-h100 x 8, rail-optimized: a GPU's NIC link carries its flows to the
  // 56 GPUs of other servers. A leaf's 8 uplinks share the 8 x 49 cross-rail
  // cross-server flows of its 8 GPUs: 49 each if perfectly even. Balanced
  // routing must keep every fabric link at or below the NIC links' 56 (then
  // the NICs, not the spines, limit a uniform all-to-all).
  Topology rail = make_topology_preset("dgx-h100", 8);
  rail.set_routing_policy(RoutingPolicy::kBalanced);
  const auto flows = all_to_all_flows(rail);
  CHECK(max_flows(rail, flows, LinkClass::kNic) == 56);
  CHECK(max_flows(rail, flows, LinkClass::kFabric) >= 49);
  CHECK(max_flows(rail, flows, LinkClass::kFabric) <= 56);
  // Static hash ECMP on the same tree: pairs collide, some spine link carries
  // more flows than any NIC link.
  const Topology hashed = make_topology_preset("dgx-h100", 8);
  CHECK(max_flows(hashed, all_to_all_flows(hashed), LinkClass::kFabric) > 56);

  // default x 16 (ToR per server, 4 spines): NIC link 60 cross-server flows;
  // a ToR uplink carries 4 local GPUs x 15 of the 60 remote GPUs = 60.
  Topology tor = make_topology_preset("default", 16);
  tor.set_routing_policy(RoutingPolicy::kBalanced);
  const auto tflows = all_to_all_flows(tor);
  CHECK(max_flows(tor, tflows, LinkClass::kNic) == 60);
  CHECK(max_flows(tor, tflows, LinkClass::kFabric) == 60);
}

TEST_CASE("balanced routes do not depend on the order routes are asked for", "[topology][routing]") {
  Topology a = make_topology_preset("dgx-h100", 7);
  Topology b = make_topology_preset("dgx-h100", 7);
  a.set_routing_policy(RoutingPolicy::kBalanced);
  b.set_routing_policy(RoutingPolicy::kBalanced);
  const std::vector<LinkId> first = a.route(5, 50).links;
  for (GpuId s = 55; s >= 0; --s) (void)b.route(s, (s * 7 + 3) % 56);
  CHECK(b.route(5, 50).links == first);
  // Routing is per destination: every source reaching the spine tier towards
  // GPU 50 from leaf 5 takes the same uplink.
  std::vector<LinkId> mine;
  CHECK(a.append_route(13, 50, mine).hops == 6);  // GPU 13 is on rail 5 too
  CHECK(mine[2] == first[2]);
  CHECK(a.routing_policy() == RoutingPolicy::kBalanced);
  CHECK(to_string(RoutingPolicy::kEcmpHash) == "ecmp");
}
