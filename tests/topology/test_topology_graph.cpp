// Topology graph basics: vertices, links, efficiency, validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "sim/options.hpp"
#include "topology/topology.hpp"

using namespace moesim;

namespace {
VertexId gpu(Topology& t, std::int32_t node, const std::string& name) {
  return t.add_vertex(VertexInfo{VertexKind::kGpu, name, node, -1});
}
}  // namespace

TEST_CASE("Topology numbers GPUs in order of addition and counts servers", "[topology]") {
  Topology t;
  const VertexId a = gpu(t, 0, "a");
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kNvSwitch, "sw", 0, -1});
  const VertexId b = gpu(t, 2, "b");
  CHECK(t.gpu_count() == 2);
  CHECK(t.node_count() == 3);  // 1 + largest server index of a GPU
  CHECK(t.gpu_vertex(0) == a);
  CHECK(t.gpu_vertex(1) == b);
  CHECK(t.vertex(b).gpu == 1);
  CHECK(t.vertex(sw).gpu == -1);
  CHECK(t.node_of(1) == 2);
  CHECK(t.gpus_of_node(2) == std::vector<GpuId>{1});
  CHECK_THROWS_AS(t.gpu_vertex(2), std::out_of_range);
  CHECK_THROWS_AS(t.add_vertex(VertexInfo{VertexKind::kGpu, "c", -1, -1}), std::invalid_argument);
  CHECK_THROWS_AS(t.add_vertex(VertexInfo{VertexKind::kGpu, "c", 0, 7}), std::invalid_argument);
}

TEST_CASE("add_link and add_duplex record links and reject bad ones", "[topology]") {
  Topology t;
  const VertexId a = gpu(t, 0, "a");
  const VertexId b = gpu(t, 0, "b");
  const LinkId l = t.add_duplex(a, b, Bandwidth::gbytes_per_second(100.0), Duration::ns(100), LinkClass::kNvLink);
  CHECK(t.link_count() == 2);
  CHECK(t.link(l).from == a);
  CHECK(t.link(l).to == b);
  CHECK(t.link(l + 1).from == b);
  CHECK(t.link(l + 1).to == a);
  CHECK(t.out_links(a) == std::vector<LinkId>{l});
  CHECK_THROWS_AS(t.add_link(a, a, Bandwidth::gbytes_per_second(1.0), Duration::ns(1), LinkClass::kNvLink),
                  std::invalid_argument);
  CHECK_THROWS_AS(t.add_link(a, 9, Bandwidth::gbytes_per_second(1.0), Duration::ns(1), LinkClass::kNvLink),
                  std::invalid_argument);
  CHECK_THROWS_AS(t.add_link(a, b, Bandwidth::gbytes_per_second(0.0), Duration::ns(1), LinkClass::kNvLink),
                  std::invalid_argument);
  CHECK_THROWS_AS(t.add_link(a, b, Bandwidth::gbytes_per_second(1.0), Duration::ns(-1), LinkClass::kNvLink),
                  std::invalid_argument);
}

TEST_CASE("Link-class efficiency defaults follow calibration.md and set_efficiency updates routes", "[topology]") {
  Topology t;
  // calibration.md: H100 ring busbw ~370 of 450 GB/s; ConnectX-7 48-49 of 50 GB/s.
  CHECK(t.efficiency(LinkClass::kNvLink) == Approx(370.0 / 450.0).epsilon(0.01));
  CHECK(t.efficiency(LinkClass::kNic) == Approx(48.5 / 50.0).epsilon(0.01));
  const VertexId a = gpu(t, 0, "a");
  const VertexId b = gpu(t, 0, "b");
  const LinkId l = t.add_duplex(a, b, Bandwidth::gbytes_per_second(100.0), Duration::ns(100), LinkClass::kNvLink);
  CHECK(t.effective_bandwidth(l).gbytes_per_second() == Approx(82.0));
  const Route& r = t.route(0, 1);
  CHECK(r.bottleneck.gbytes_per_second() == Approx(82.0));
  t.set_efficiency(LinkClass::kNvLink, 0.5);
  CHECK(t.effective_bandwidth(l).gbytes_per_second() == Approx(50.0));
  CHECK(r.bottleneck.gbytes_per_second() == Approx(50.0));  // same cached route, recomputed
  CHECK(&t.route(0, 1) == &r);
  CHECK_THROWS_AS(t.set_efficiency(LinkClass::kNic, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(t.set_efficiency(LinkClass::kNic, 1.5), std::invalid_argument);
}

TEST_CASE("route to self is empty and route ids out of range throw", "[topology]") {
  Topology t;
  gpu(t, 0, "a");
  const Route& r = t.route(0, 0);
  CHECK(r.links.empty());
  CHECK(r.latency == Duration::zero());
  CHECK(std::isinf(r.bottleneck.bytes_per_second()));
  CHECK_THROWS_AS(t.route(0, 1), std::out_of_range);
  CHECK_THROWS_AS(t.route(-1, 0), std::out_of_range);
}

TEST_CASE("unreachable GPUs: route and validate throw InputError naming both", "[topology]") {
  Topology t;
  t.name = "oneway";
  const VertexId a = gpu(t, 0, "alpha");
  const VertexId b = gpu(t, 0, "beta");
  t.add_link(b, a, Bandwidth::gbytes_per_second(10.0), Duration::ns(10), LinkClass::kNvLink);
  CHECK(t.route(1, 0).links.size() == 1);
  CHECK_THROWS_AS(t.route(0, 1), InputError);
  CHECK_THROWS_WITH(t.route(0, 1), Catch::Contains("gpu 1 (beta) cannot be reached from gpu 0 (alpha)"));
  CHECK_THROWS_WITH(t.validate("here"), Catch::Contains("here: gpu 1 (beta) cannot be reached from gpu 0 (alpha)"));
  Topology empty;
  CHECK_THROWS_WITH(empty.validate("x"), Catch::Contains("no GPU"));
}

TEST_CASE("adding a link after routing invalidates the cached routes", "[topology]") {
  Topology t;
  const VertexId a = gpu(t, 0, "a");
  const VertexId b = gpu(t, 0, "b");
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kNvSwitch, "sw", 0, -1});
  t.add_duplex(a, sw, Bandwidth::gbytes_per_second(10.0), Duration::ns(10), LinkClass::kNvLink);
  t.add_duplex(b, sw, Bandwidth::gbytes_per_second(10.0), Duration::ns(10), LinkClass::kNvLink);
  CHECK(t.route(0, 1).links.size() == 2);
  t.add_duplex(a, b, Bandwidth::gbytes_per_second(10.0), Duration::ns(10), LinkClass::kNvLink);
  CHECK(t.route(0, 1).links.size() == 1);  // the new direct link is shorter
}
