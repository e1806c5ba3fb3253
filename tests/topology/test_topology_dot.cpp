// DOT input/output: round trips, fixtures, and each bad-input case.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "sim/options.hpp"
#include "topology/dot_io.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"

using namespace moesim;

namespace {
std::string data(const std::string& name) { return std::string(MOESIM_TOPOLOGY_TEST_DATA) + "/" + name; }

void check_same(const Topology& a, const Topology& b) {
  REQUIRE(a.gpu_count() == b.gpu_count());
  REQUIRE(a.vertex_count() == b.vertex_count());
  REQUIRE(a.link_count() == b.link_count());
  CHECK(a.node_count() == b.node_count());
  for (GpuId g = 0; g < a.gpu_count(); ++g) {
    CHECK(a.node_of(g) == b.node_of(g));
    CHECK(a.vertex(a.gpu_vertex(g)).name == b.vertex(b.gpu_vertex(g)).name);
  }
  // Links by (from name, to name): same line rate (bit for bit), latency, class.
  for (std::size_t l = 0; l < a.link_count(); ++l) {
    const LinkInfo& x = a.link(static_cast<LinkId>(l));
    bool found = false;
    for (std::size_t k = 0; k < b.link_count() && !found; ++k) {
      const LinkInfo& y = b.link(static_cast<LinkId>(k));
      if (b.vertex(y.from).name == a.vertex(x.from).name && b.vertex(y.to).name == a.vertex(x.to).name) {
        found = true;
        CHECK(y.bandwidth.bytes_per_second() == x.bandwidth.bytes_per_second());
        CHECK(y.latency == x.latency);
        CHECK(y.link_class == x.link_class);
      }
    }
    CHECK(found);
  }
  const TopologySummary sa = summarize(a);
  const TopologySummary sb = summarize(b);
  CHECK(sa.vertices_by_kind == sb.vertices_by_kind);
  CHECK(sa.links_by_class == sb.links_by_class);
  // Summed in another link order: equal up to rounding.
  CHECK(sa.total_link_capacity.bytes_per_second() == Approx(sb.total_link_capacity.bytes_per_second()).epsilon(1e-12));
  CHECK(sa.bisection_bandwidth.bytes_per_second() == sb.bisection_bandwidth.bytes_per_second());
}

Topology round_trip(const Topology& t) {
  std::ostringstream out;
  write_dot(t, out);
  return read_dot_text(out.str(), "roundtrip.dot");
}
}  // namespace

TEST_CASE("DOT round trip of presets keeps counts, bandwidths and routes", "[topology][dot]") {
  for (const char* name : {"dgx-h100", "default", "mi300x-8"}) {
    INFO(name);
    const Topology t = make_topology_preset(name, 2);
    const Topology back = round_trip(t);
    check_same(t, back);
    // Each vertex keeps its out-links in the same order, so ECMP picks the same paths.
    for (GpuId s = 0; s < t.gpu_count(); ++s) {
      for (GpuId d = 0; d < t.gpu_count(); ++d) {
        const Route& r1 = t.route(s, d);
        const Route& r2 = back.route(s, d);
        REQUIRE(r1.links.size() == r2.links.size());
        CHECK(r1.latency == r2.latency);
        for (std::size_t h = 0; h < r1.links.size(); ++h) {
          CHECK(t.vertex(t.link(r1.links[h]).to).name == back.vertex(back.link(r2.links[h]).to).name);
        }
      }
    }
  }
}

TEST_CASE("DOT output is a drawable digraph with the documented attributes", "[topology][dot]") {
  std::ostringstream out;
  write_dot(make_topology_preset("dgx-h100", 1), out);
  const std::string s = out.str();
  CHECK(s.find("digraph \"dgx-h100\" {") != std::string::npos);
  CHECK(s.find("\"node0.gpu0\" [kind=gpu, server=0, gpu=0") != std::string::npos);
  CHECK(s.find("\"node0.gpu0\" -> \"node0.nvswitch\" [bandwidth=\"450GB/s\", latency=\"100ns\", class=nvlink, "
               "duplex=true, dir=both") != std::string::npos);
  CHECK(s.find("\"node0.nvswitch\" -> \"node0.gpu0\"") == std::string::npos);  // folded into the duplex edge
  CHECK(s.rfind("}\n") == s.size() - 2);
}

TEST_CASE("reading an undirected DOT fixture: duplex links, servers, inferred numbering", "[topology][dot]") {
  const Topology t = read_dot(data("two_servers.dot"));
  CHECK(t.gpu_count() == 4);
  CHECK(t.node_count() == 2);
  CHECK(t.node_of(2) == 1);
  CHECK(t.vertex_count() == 11);
  CHECK(t.link_count() == 24);  // 12 undirected edges, two links each
  // Cross-server: gpu0 -> nic0 -> leaf -> nic2 -> gpu2.
  const Route& r = t.route(0, 2);
  REQUIRE(r.links.size() == 4);
  CHECK(t.link(r.links[1]).bandwidth.gbytes_per_second() == Approx(50.0));  // 400Gbps
  CHECK(t.link(r.links[1]).link_class == LinkClass::kNic);
  CHECK(r.latency == Duration::ns(150 + 500 + 500 + 150));
  CHECK(t.route(0, 1).links.size() == 2);  // through sw0
}

TEST_CASE("DOT: gpu attribute numbers GPUs; servers inferred from NVLink groups", "[topology][dot]") {
  const std::string text = R"(graph g {
    b [kind=gpu, gpu=0]; a [kind=gpu, gpu=1]; c [kind=gpu, gpu=2]; d [kind=gpu, gpu=3];
    s [kind=nvswitch]; leaf [kind=leaf]; na [kind=nic]; nc [kind=nic];
    a -- s [bandwidth="100GB/s"]; b -- s [bandwidth="100GB/s"]; c -- d [bandwidth="100GB/s"];
    a -- na [bandwidth="32GB/s"]; c -- nc [bandwidth="32GB/s"];
    na -- leaf [bandwidth="200Gbps"]; nc -- leaf [bandwidth="200Gbps"];
  })";
  const Topology t = read_dot_text(text, "inline.dot");
  CHECK(t.vertex(t.gpu_vertex(0)).name == "b");
  CHECK(t.vertex(t.gpu_vertex(1)).name == "a");
  // {a, b} share NVSwitch s -> server 0 (contains GPU 0); {c, d} -> server 1.
  CHECK(t.node_of(0) == 0);
  CHECK(t.node_of(1) == 0);
  CHECK(t.node_of(2) == 1);
  CHECK(t.node_of(3) == 1);
  // Classes inferred from the kinds at both ends.
  const Route& r = t.route(1, 2);  // a -> na -> leaf -> nc -> c
  REQUIRE(r.links.size() == 4);
  CHECK(t.link(r.links[0]).link_class == LinkClass::kPcie);
  CHECK(t.link(r.links[1]).link_class == LinkClass::kNic);
  CHECK(t.link(r.links[1]).bandwidth.gbytes_per_second() == Approx(25.0));
}

TEST_CASE("DOT: the quoted \"node\" attribute is an alias of server", "[topology][dot]") {
  const Topology t = read_dot_text(R"(digraph g {
    x [kind=gpu, "node"=7]; y [kind=gpu, "node"=3];
    x -> y [bandwidth="1GB/s", class=nvlink]; y -> x [bandwidth="1GB/s", class=nvlink];
  })",
                                   "alias.dot");
  CHECK(t.node_count() == 2);  // servers 3 and 7 renumbered 0 and 1
  CHECK(t.node_of(0) == 1);    // x (server 7)
  CHECK(t.node_of(1) == 0);    // y (server 3)
}

TEST_CASE("DOT bad input: each case is an InputError naming the file and the fault", "[topology][dot]") {
  CHECK_THROWS_AS(read_dot(data("does_not_exist.dot")), InputError);
  CHECK_THROWS_WITH(read_dot(data("does_not_exist.dot")),
                    Catch::Contains("cannot open topology file") && Catch::Contains("does_not_exist.dot"));
  CHECK_THROWS_WITH(read_dot(data("missing_bandwidth.dot")),
                    Catch::Contains("missing_bandwidth.dot") && Catch::Contains("edge 'b' -> 'a' has no bandwidth"));
  CHECK_THROWS_WITH(read_dot(data("negative_bandwidth.dot")),
                    Catch::Contains("negative_bandwidth.dot") && Catch::Contains("edge 'b' -> 'a'") &&
                        Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(read_dot(data("disconnected.dot")),
                    Catch::Contains("disconnected.dot") && Catch::Contains("gpu 2 (gpu2) cannot be reached from gpu 0 (gpu0)"));
  CHECK_THROWS_WITH(read_dot(data("one_way.dot")),
                    Catch::Contains("gpu 1 (gpu1) cannot be reached from gpu 0 (gpu0)"));
  CHECK_THROWS_WITH(read_dot(data("unknown_kind.dot")),
                    Catch::Contains("node 'b' has unknown kind 'tpu'") && Catch::Contains("gpu, nvswitch, nic"));
  CHECK_THROWS_WITH(read_dot(data("unknown_class.dot")),
                    Catch::Contains("edge 'a' -> 'b' has unknown class 'infiniband'"));
  CHECK_THROWS_WITH(read_dot(data("syntax_error.dot")),
                    Catch::Contains("syntax_error.dot") && Catch::Contains("syntax error"));
  CHECK_THROWS_WITH(read_dot(data("no_gpu.dot")), Catch::Contains("no GPU"));
  CHECK_THROWS_WITH(read_dot(data("no_unit.dot")), Catch::Contains("'450' needs a unit"));
}

TEST_CASE("DOT bad input: kinds, attributes and numbering", "[topology][dot]") {
  CHECK_THROWS_WITH(read_dot_text("digraph { a [kind=gpu]; a -> b [bandwidth=\"1GB/s\"]; }", "t.dot"),
                    Catch::Contains("t.dot: node 'b' has no kind"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu]; l [kind=leaf]; a -- l [bandwidth=\"1GB/s\"]; }", "t.dot"),
                    Catch::Contains("set its class"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu, gpu=0]; b [kind=gpu, gpu=0]; a -- b [bandwidth=\"1GB/s\"]; }",
                                  "t.dot"),
                    Catch::Contains("both have gpu=0"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu, gpu=0]; b [kind=gpu]; a -- b [bandwidth=\"1GB/s\"]; }", "t.dot"),
                    Catch::Contains("node 'b' has no gpu attribute"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu, server=0]; b [kind=gpu]; a -- b [bandwidth=\"1GB/s\"]; }",
                                  "t.dot"),
                    Catch::Contains("node 'b' has no server attribute"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu, server=x]; b [kind=gpu, server=0]; a -- b [bandwidth=\"1GB/s\"]; }",
                                  "t.dot"),
                    Catch::Contains("server must be a non-negative integer"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu]; b [kind=gpu]; a -- b [bandwidth=\"1GB/s\", latency=\"3\"]; }",
                                  "t.dot"),
                    Catch::Contains("latency '3' needs a unit"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu]; b [kind=gpu]; a -- b [bandwidth=\"1GB/s\", latency=\"-3ns\"]; }",
                                  "t.dot"),
                    Catch::Contains("negative"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu]; b [kind=gpu]; a -- a [bandwidth=\"1GB/s\"]; }", "t.dot"),
                    Catch::Contains("self loop"));
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu]; b [kind=gpu]; a -- b [bandwidth=\"fast\"]; }", "t.dot"),
                    Catch::Contains("'fast' is not a valid bandwidth"));
}

TEST_CASE("the example topology under experiments/ reads", "[topology][dot]") {
  const Topology t = read_dot(std::string(MOESIM_TOPOLOGY_TEST_DATA) + "/../../../experiments/topologies/example.dot");
  CHECK(t.gpu_count() == 8);
  CHECK(t.node_count() == 2);
  // Rail-optimized, non-blocking: 4 GPUs x 50 GB/s across the server halves.
  CHECK(summarize(t).bisection_bandwidth.gbytes_per_second() == Approx(200.0));
}

TEST_CASE("DOT round trip keeps asymmetric links and odd rates exact", "[topology][dot]") {
  Topology t;
  t.name = "asym";
  const VertexId a = t.add_vertex(VertexInfo{VertexKind::kGpu, "a", 0, -1});
  const VertexId b = t.add_vertex(VertexInfo{VertexKind::kGpu, "b", 1, -1});
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kLeafSwitch, "sw", -1, -1});
  const VertexId na = t.add_vertex(VertexInfo{VertexKind::kNic, "na", 0, -1});
  t.add_link(a, b, Bandwidth::gbytes_per_second(10.0), Duration::ps(1234567), LinkClass::kNvLink);
  t.add_link(b, a, Bandwidth::gbytes_per_second(20.0), Duration::ns(3), LinkClass::kNvLink);
  t.add_duplex(a, na, Bandwidth::bytes_per_second(1e9 / 3.0), Duration::us(2), LinkClass::kPcie);
  t.add_duplex(na, sw, Bandwidth::gbits_per_second(0.1), Duration::ns(5), LinkClass::kNic);
  const Topology back = round_trip(t);
  check_same(t, back);
  CHECK(back.link_count() == 6);
}

TEST_CASE("DOT: duplex=true in a digraph makes two links; bad values are named", "[topology][dot]") {
  const Topology t = read_dot_text(
      "digraph { a [kind=gpu]; b [kind=gpu]; a -> b [bandwidth=\"1GB/s\", duplex=true]; }", "d.dot");
  CHECK(t.link_count() == 2);
  CHECK(t.route(1, 0).links.size() == 1);
  CHECK_THROWS_WITH(read_dot_text("digraph { a [kind=gpu]; b [kind=gpu]; a -> b [bandwidth=\"1GB/s\", duplex=maybe]; }",
                                  "d.dot"),
                    Catch::Contains("duplex must be true or false"));
}

TEST_CASE("DOT: an unquoted node attribute gets a hint", "[topology][dot]") {
  CHECK_THROWS_WITH(read_dot_text("graph { a [kind=gpu, node=0]; }", "k.dot"),
                    Catch::Contains("k.dot: GraphViz syntax error") && Catch::Contains("server=N"));
}
