// Builders and presets: vertex/link counts and bandwidths against hand counts,
// bisection bandwidth against hand-computed cuts.
#include <catch2/catch.hpp>

#include "sim/options.hpp"
#include "topology/builders.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"

using namespace moesim;

namespace {
std::size_t kind_count(const TopologySummary& s, VertexKind k) { return s.vertices_by_kind[static_cast<std::size_t>(k)]; }
std::size_t class_count(const TopologySummary& s, LinkClass c) { return s.links_by_class[static_cast<std::size_t>(c)]; }

// Every link of a class has this line rate.
void check_class_bandwidth(const Topology& t, LinkClass c, double gbytes) {
  for (std::size_t l = 0; l < t.link_count(); ++l) {
    const LinkInfo& li = t.link(static_cast<LinkId>(l));
    if (li.link_class == c) CHECK(li.bandwidth.gbytes_per_second() == Approx(gbytes));
  }
}

ClusterSpec small_fat_tree(ScaleOutKind kind, double oversubscription) {
  // 4 servers x 2 GPUs on an NVSwitch (450 GB/s), one 400 Gb/s NIC per GPU.
  ClusterSpec s;
  s.name = "small";
  s.nodes = 4;
  s.scale_up = ScaleUpSpec{ScaleUpKind::kNvSwitch, 2, Bandwidth::gbytes_per_second(450.0), Duration::ns(100)};
  s.scale_out.kind = kind;
  s.scale_out.nic_bandwidth = Bandwidth::gbits_per_second(400.0);
  s.scale_out.oversubscription = oversubscription;
  return s;
}
}  // namespace

TEST_CASE("NVSwitch node: one switch, a duplex link per GPU", "[topology][builders]") {
  Topology t;
  const auto gpus = add_nvswitch_node(t, 0, 8, Bandwidth::gbytes_per_second(450.0), Duration::ns(100));
  CHECK(gpus.size() == 8);
  CHECK(t.vertex_count() == 9);   // 8 GPUs + 1 NVSwitch
  CHECK(t.link_count() == 16);    // 8 duplex links
  check_class_bandwidth(t, LinkClass::kNvLink, 450.0);
}

TEST_CASE("full-mesh node: a duplex link per GPU pair", "[topology][builders]") {
  Topology t;
  add_full_mesh_node(t, 0, 8, Bandwidth::gbytes_per_second(64.0), Duration::ns(100));
  CHECK(t.vertex_count() == 8);
  CHECK(t.link_count() == 8 * 7);  // 28 pairs x 2 directions
  check_class_bandwidth(t, LinkClass::kNvLink, 64.0);
  // Each GPU has 7 outgoing links = 7 x 64 = 448 GB/s of xGMI.
  CHECK(t.out_links(t.gpu_vertex(3)).size() == 7);
}

TEST_CASE("dgx-h100 x2, rail-optimized: counts and bandwidths", "[topology][builders]") {
  const Topology t = make_topology_preset("dgx-h100", 2);
  const TopologySummary s = summarize(t);
  CHECK(s.gpus == 16);
  CHECK(s.nodes == 2);
  CHECK(kind_count(s, VertexKind::kGpu) == 16);
  CHECK(kind_count(s, VertexKind::kNvSwitch) == 2);
  CHECK(kind_count(s, VertexKind::kNic) == 16);
  CHECK(kind_count(s, VertexKind::kLeafSwitch) == 8);   // one leaf per rail
  CHECK(kind_count(s, VertexKind::kSpineSwitch) == 2);  // ceil(2 downlinks per leaf / 1)
  CHECK(kind_count(s, VertexKind::kTorSwitch) == 0);
  CHECK(s.vertices == 44);
  CHECK(class_count(s, LinkClass::kNvLink) == 32);  // 16 GPUs x 2 directions
  CHECK(class_count(s, LinkClass::kPcie) == 32);
  CHECK(class_count(s, LinkClass::kNic) == 32);
  CHECK(class_count(s, LinkClass::kFabric) == 32);  // 8 leaves x 2 spines x 2 directions
  CHECK(s.links == 128);
  check_class_bandwidth(t, LinkClass::kNvLink, 450.0);
  check_class_bandwidth(t, LinkClass::kNic, 50.0);     // 400 Gb/s
  check_class_bandwidth(t, LinkClass::kFabric, 50.0);  // 2 x 50 GB/s down / 1 / 2 spines
  check_class_bandwidth(t, LinkClass::kPcie, 32.0 * 16.0 * 128.0 / 130.0 / 8.0);
  // NIC i of each server sits on leaf i.
  for (GpuId g = 0; g < 16; ++g) {
    const Route& r = t.route(g, (g + 8) % 16);  // same rail, other server
    REQUIRE(r.links.size() == 4);
    CHECK(t.vertex(t.link(r.links[1]).to).name == "leaf" + std::to_string(g % 8));
  }
}

TEST_CASE("ToR scale-out: one ToR per server, spines by downlinks", "[topology][builders]") {
  const Topology t = build_cluster(small_fat_tree(ScaleOutKind::kTor, 1.0));
  const TopologySummary s = summarize(t);
  CHECK(kind_count(s, VertexKind::kTorSwitch) == 4);
  CHECK(kind_count(s, VertexKind::kSpineSwitch) == 2);  // 2 downlinks per ToR
  CHECK(kind_count(s, VertexKind::kLeafSwitch) == 0);
  CHECK(class_count(s, LinkClass::kFabric) == 4 * 2 * 2);
  check_class_bandwidth(t, LinkClass::kFabric, 50.0);
}

TEST_CASE("oversubscription divides the leaf uplink capacity", "[topology][builders]") {
  const Topology t = build_cluster(small_fat_tree(ScaleOutKind::kTor, 2.0));
  const TopologySummary s = summarize(t);
  // ToR: 2 x 50 GB/s down; uplinks 100 / 2 = 50 GB/s in ceil(2/2) = 1 spine link.
  CHECK(kind_count(s, VertexKind::kSpineSwitch) == 1);
  CHECK(class_count(s, LinkClass::kFabric) == 4 * 1 * 2);
  check_class_bandwidth(t, LinkClass::kFabric, 50.0);

  ClusterSpec spec = small_fat_tree(ScaleOutKind::kTor, 4.0);
  spec.scale_out.spines = 2;  // 100 / 4 = 25 GB/s over 2 spines
  const Topology t4 = build_cluster(spec);
  check_class_bandwidth(t4, LinkClass::kFabric, 12.5);
}

TEST_CASE("bisection bandwidth of a small fat tree matches the hand calculation", "[topology][builders]") {
  // 4 servers x 2 GPUs; halves = servers {0,1} | {2,3}, 4 GPUs each side.
  // Non-blocking ToR tree: each side's 4 NICs (4 x 50 GB/s) can all cross:
  //   ToR uplinks of one side = 2 ToRs x 2 spines x 50 = 200 GB/s -> 200 GB/s.
  const TopologySummary nb = summarize(build_cluster(small_fat_tree(ScaleOutKind::kTor, 1.0)));
  CHECK(nb.bisection_bandwidth.gbytes_per_second() == Approx(200.0));
  // Oversubscription 2: each ToR has 50 GB/s up -> 2 x 50 = 100 GB/s: halved.
  const TopologySummary os = summarize(build_cluster(small_fat_tree(ScaleOutKind::kTor, 2.0)));
  CHECK(os.bisection_bandwidth.gbytes_per_second() == Approx(100.0));
  // Rail-optimized: NIC i of every server shares leaf i, so traffic between
  // the halves can stay on the leaves: 4 x 50 = 200 GB/s whatever the spine
  // tier (2 leaves x 2 NICs per side x 50 GB/s).
  const TopologySummary rail1 = summarize(build_cluster(small_fat_tree(ScaleOutKind::kRailOptimized, 1.0)));
  const TopologySummary rail2 = summarize(build_cluster(small_fat_tree(ScaleOutKind::kRailOptimized, 2.0)));
  CHECK(rail1.bisection_bandwidth.gbytes_per_second() == Approx(200.0));
  CHECK(rail2.bisection_bandwidth.gbytes_per_second() == Approx(200.0));
}

TEST_CASE("bisection of one server splits its GPUs", "[topology][builders]") {
  // NVSwitch: 4 GPUs per side x 450 GB/s each into the switch = 1800 GB/s.
  CHECK(summarize(make_topology_preset("dgx-h100", 1)).bisection_bandwidth.gbytes_per_second() == Approx(1800.0));
  // Full mesh of 8: 4 x 4 cross pairs x 64 GB/s = 1024 GB/s.
  CHECK(summarize(make_topology_preset("mi300x-8", 1)).bisection_bandwidth.gbytes_per_second() == Approx(1024.0));
  // One GPU: no cut.
  Topology t;
  t.add_vertex(VertexInfo{VertexKind::kGpu, "g", 0, -1});
  CHECK(summarize(t).bisection_bandwidth.bytes_per_second() == 0.0);
}

TEST_CASE("single-node clusters have no scale-out", "[topology][builders]") {
  const TopologySummary s = summarize(make_topology_preset("dgx-a100", 1));
  CHECK(s.gpus == 8);
  CHECK(kind_count(s, VertexKind::kNic) == 0);
  CHECK(s.links == 16);
}

TEST_CASE("default preset: Leonardo-like 16 x 4 A100 64GB", "[topology][presets]") {
  const Topology t = make_topology_preset("default");
  const TopologySummary s = summarize(t);
  CHECK(s.gpus == 64);
  CHECK(s.nodes == 16);
  CHECK(class_count(s, LinkClass::kNvLink) == 16 * 4 * 3);  // full mesh: 3 peers per GPU
  check_class_bandwidth(t, LinkClass::kNvLink, 100.0);
  check_class_bandwidth(t, LinkClass::kNic, 12.5);  // HDR100
  // Non-blocking: half the GPUs (32) at 12.5 GB/s each = 400 GB/s across the cut.
  CHECK(s.bisection_bandwidth.gbytes_per_second() == Approx(32 * 12.5));
  CHECK_FALSE(t.source.empty());
}

TEST_CASE("every preset builds and validates; unknown names are listed", "[topology][presets]") {
  REQUIRE(topology_presets().size() == 5);
  CHECK(topology_presets().front().name == "default");
  for (const auto& p : topology_presets()) {
    INFO(p.name);
    const Topology t = make_topology_preset(p.name, 2);
    CHECK(t.node_count() == 2);
    CHECK(t.name == p.name);
    CHECK_FALSE(p.description.empty());
    CHECK_FALSE(p.source.empty());
  }
  CHECK_THROWS_AS(make_topology_preset("dgx-h900"), InputError);
  CHECK_THROWS_WITH(make_topology_preset("dgx-h900"), Catch::Contains("dgx-h100") && Catch::Contains("dgx-h900"));
}

TEST_CASE("builder parameters are checked", "[topology][builders]") {
  CHECK_THROWS_AS(build_cluster(small_fat_tree(ScaleOutKind::kTor, 0.5)), InputError);
  ClusterSpec s = small_fat_tree(ScaleOutKind::kTor, 1.0);
  s.nodes = 0;
  CHECK_THROWS_WITH(build_cluster(s), Catch::Contains("topology.nodes"));
  s = small_fat_tree(ScaleOutKind::kTor, 1.0);
  s.scale_out.nic_bandwidth = Bandwidth::bytes_per_second(0.0);
  CHECK_THROWS_AS(build_cluster(s), InputError);
  TopologyOverrides ov;
  ov.oversubscription = 2.0;
  const Topology t = make_topology_preset("dgx-h100", 4, ov);
  CHECK(t.source.find("override") != std::string::npos);
}
