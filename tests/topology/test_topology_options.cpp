// [topology] scenario options -> Topology.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "sim/options.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"
#include "topology/topology_options.hpp"

using namespace moesim;

namespace {
OptionRegistry registry() {
  OptionRegistry r;
  register_topology_options(r);
  return r;
}
const std::string kExample = std::string(MOESIM_TOPOLOGY_TEST_DATA) + "/../../../experiments/topologies/example.dot";
}  // namespace

TEST_CASE("every topology option has a type, unit or choices, and help", "[topology][options]") {
  const OptionRegistry r = registry();
  for (const char* name : {"topology.preset", "topology.file", "topology.nodes", "topology.scale_out",
                           "topology.oversubscription", "topology.spines", "topology.nic_bandwidth",
                           "topology.nvlink_bandwidth", "topology.routing"}) {
    INFO(name);
    const OptionSpec* spec = r.find(name);
    REQUIRE(spec != nullptr);
    CHECK_FALSE(spec->help.empty());
  }
  CHECK(r.find("network.model") == nullptr);  // the network engineer's
}

TEST_CASE("the default scenario topology is the default preset", "[topology][options]") {
  const OptionRegistry r = registry();
  const Config c(r);
  const Topology t = topology_from_config(c);
  CHECK(t.name == "default");
  CHECK(t.gpu_count() == 64);
  CHECK(t.routing_policy() == RoutingPolicy::kBalanced);
  Config e(r);
  e.set("topology.routing", "ecmp", "test");
  CHECK(topology_from_config(e).routing_policy() == RoutingPolicy::kEcmpHash);
  e.set("topology.file", kExample, "test");
  CHECK(topology_from_config(e).routing_policy() == RoutingPolicy::kEcmpHash);  // applies to DOT files too
}

TEST_CASE("preset, nodes and overrides from options", "[topology][options]") {
  const OptionRegistry r = registry();
  Config c(r);
  c.set("topology.preset", "dgx-h100", "test");
  c.set("topology.nodes", "4", "test");
  const Topology t = topology_from_config(c);
  CHECK(t.gpu_count() == 32);
  const double nonblocking = summarize(t).bisection_bandwidth.gbytes_per_second();
  // Rail-optimized keeps half-to-half traffic on the leaves: 16 GPUs x 50 GB/s.
  CHECK(nonblocking == Approx(16 * 50.0));

  c.set("topology.scale_out", "tor", "test");
  c.set("topology.oversubscription", "2", "test");
  c.set("topology.nic_bandwidth", "200Gbps", "test");
  c.set("topology.nvlink_bandwidth", "300GB/s", "test");
  const Topology o = topology_from_config(c);
  // ToR per server, 8 x 25 GB/s down, uplinks 200/2 = 100 GB/s per ToR; two
  // ToRs per half -> 200 GB/s across.
  CHECK(summarize(o).bisection_bandwidth.gbytes_per_second() == Approx(200.0));
  CHECK(o.route(0, 1).bottleneck.gbytes_per_second() == Approx(300.0 * 0.82));
}

TEST_CASE("DOT files from options, and what cannot be combined with them", "[topology][options]") {
  const OptionRegistry r = registry();
  Config by_preset(r);
  by_preset.set("topology.preset", kExample, "command line");
  CHECK(topology_from_config(by_preset).gpu_count() == 8);

  Config by_file(r);
  by_file.set("topology.file", kExample, "command line");
  CHECK(topology_from_config(by_file).gpu_count() == 8);

  by_file.set("topology.nodes", "4", "command line");
  CHECK_THROWS_WITH(topology_from_config(by_file), Catch::Contains("topology.nodes") && Catch::Contains("DOT file"));

  Config both(r);
  both.set("topology.file", kExample, "a.ini:3");
  both.set("topology.preset", "dgx-h100", "a.ini:2");
  CHECK_THROWS_WITH(topology_from_config(both), Catch::Contains("both set"));

  Config unknown(r);
  unknown.set("topology.preset", "dgx-z100", "command line");
  CHECK_THROWS_AS(topology_from_config(unknown), InputError);
  CHECK_THROWS_WITH(topology_from_config(unknown), Catch::Contains("unknown topology preset 'dgx-z100'"));
}

TEST_CASE("a relative DOT path in a scenario file is relative to that file", "[topology][options]") {
  const auto dir = std::filesystem::temp_directory_path() / "moesim_topology_options_test";
  std::filesystem::create_directories(dir / "topos");
  std::filesystem::copy_file(kExample, dir / "topos" / "x.dot", std::filesystem::copy_options::overwrite_existing);
  const auto ini = dir / "scenario.ini";
  {
    std::ofstream out(ini);
    out << "[topology]\nfile = topos/x.dot\n";
  }
  const OptionRegistry r = registry();
  Config c(r);
  c.load_ini(ini.string());
  CHECK(topology_from_config(c).gpu_count() == 8);
  std::filesystem::remove_all(dir);
}

TEST_CASE("option values out of range are rejected by the registry", "[topology][options]") {
  const OptionRegistry r = registry();
  Config c(r);
  CHECK_THROWS_AS(c.set("topology.nodes", "0", "command line"), InputError);
  CHECK_THROWS_AS(c.set("topology.oversubscription", "0.5", "command line"), InputError);
  CHECK_THROWS_AS(c.set("topology.scale_out", "mesh", "command line"), InputError);
  CHECK_THROWS_AS(c.set("topology.nic_bandwidth", "-1Gbps", "command line"), InputError);
}
