// The nccl-tests-like sweep behind `moesim collective`: sizes, rounding,
// algbw/busbw conventions, the sendrecv pattern and bad parameters.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sim/options.hpp"
#include "topology/collective_bench.hpp"
#include "topology/collectives.hpp"
#include "topology/presets.hpp"

using namespace moesim;
using namespace moesim::literals;

namespace {

// n GPUs on one ideal switch: duplex links of `bw`, no latency.
Topology ideal_switch(int n, Bandwidth bw) {
  Topology t;
  t.name = "test-switch";
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kNvSwitch, "sw", 0, -1});
  for (int g = 0; g < n; ++g) {
    t.add_duplex(t.add_vertex(VertexInfo{VertexKind::kGpu, "gpu" + std::to_string(g), 0, -1}), sw, bw,
                 Duration::zero(), LinkClass::kNvLink);
  }
  return t;
}

NetworkParams ideal(Duration alpha) {
  NetworkParams p;
  p.model = NetworkModelKind::kFlow;
  p.alpha = alpha;
  p.efficiency = {1.0, 1.0, 1.0, 1.0};
  return p;
}

}  // namespace

TEST_CASE("sweep sizes grow by the factor up to the maximum", "[network][bench]") {
  REQUIRE(bench_sizes(Bytes::mib(1), Bytes::mib(8), 2.0) ==
          std::vector<Bytes>{Bytes::mib(1), Bytes::mib(2), Bytes::mib(4), Bytes::mib(8)});
  REQUIRE(bench_sizes(Bytes::mib(1), Bytes::mib(7), 2.0).back() == Bytes::mib(4));  // never above max
  REQUIRE(bench_sizes(Bytes::kib(4), Bytes::kib(4), 1.0).size() == 1);               // one size: factor unused
  REQUIRE_THROWS_AS(bench_sizes(Bytes::mib(8), Bytes::mib(1), 2.0), InputError);
  REQUIRE_THROWS_AS(bench_sizes(Bytes::mib(1), Bytes::mib(8), 1.0), InputError);
  REQUIRE_THROWS_AS(bench_sizes(Bytes(0), Bytes::mib(8), 2.0), InputError);
  REQUIRE_THROWS_AS(bench_sizes(Bytes(1), Bytes::gib(1), 1.0001), InputError);  // > 4096 sizes
  REQUIRE(dtype_size("bfloat16") == 2);
  REQUIRE_THROWS_AS(dtype_size("float128"), InputError);
}

TEST_CASE("sweep rows follow the nccl-tests conventions", "[network][bench]") {
  // Ring all-reduce on 4 GPUs of an ideal 100 GB/s switch, alpha 2 us:
  // time = 2(n-1)(alpha + S/(n B)); algbw = S / time; busbw = algbw x 2(n-1)/n.
  const Topology topo = ideal_switch(4, Bandwidth::gbytes_per_second(100.0));
  CollectiveBenchConfig cfg;
  cfg.op = CollectiveOp::kAllReduce;
  cfg.min_bytes = Bytes::mib(4);
  cfg.max_bytes = Bytes::mib(16);
  cfg.factor = 4.0;
  const CollectiveBenchResult res = run_collective_bench(topo, ideal(2_us), cfg);
  REQUIRE(res.gpus == 4);
  REQUIRE(res.algorithm == CollectiveAlgorithm::kRing);
  REQUIRE(res.rows.size() == 2);
  for (const CollectiveBenchRow& r : res.rows) {
    const double s = r.bytes.as_double();
    const double t = 6.0 * (2e-6 + s / 4.0 / 100e9);
    REQUIRE(r.time.seconds() == Approx(t).epsilon(1e-9));
    REQUIRE(r.algbw_GBps == Approx(s / t * 1e-9).epsilon(1e-9));
    REQUIRE(r.busbw_GBps == Approx(r.algbw_GBps * 1.5).epsilon(1e-12));
    REQUIRE(r.count == r.bytes.count() / 4);  // float elements
    REQUIRE(r.transfers == 24);               // 2(n-1) steps x n ranks
  }
}

TEST_CASE("sendrecv sweeps every rank sending to the next at once", "[network][bench]") {
  // nccl-tests sendrecv_perf: rank r -> r+1 for all r simultaneously. On the
  // ideal switch each GPU's uplink and downlink carry one transfer:
  // time = alpha + S / B; busbw = algbw.
  const Topology topo = ideal_switch(4, Bandwidth::gbytes_per_second(50.0));
  CollectiveBenchConfig cfg;
  cfg.op = CollectiveOp::kSendRecv;
  cfg.min_bytes = Bytes::mib(32);
  cfg.max_bytes = Bytes::mib(32);
  const CollectiveBenchResult res = run_collective_bench(topo, ideal(1_us), cfg);
  REQUIRE(res.rows.size() == 1);
  REQUIRE(res.rows[0].time.seconds() == Approx(1e-6 + Bytes::mib(32).as_double() / 50e9).epsilon(1e-9));
  REQUIRE(res.rows[0].busbw_GBps == res.rows[0].algbw_GBps);
  REQUIRE(res.rows[0].transfers == 4);
}

TEST_CASE("sizes are rounded to whole elements per rank, as nccl-tests does", "[network][bench]") {
  // all_gather of 1000 bytes of float on 3 ranks: 1000 / (4 x 3) = 83 elements
  // per rank -> 996 bytes.
  const Topology topo = ideal_switch(3, Bandwidth::gbytes_per_second(50.0));
  const CollectiveBenchRow r = run_collective_size(topo, ideal(1_us), CollectiveOp::kAllGather,
                                                   CollectiveAlgorithm::kAuto, {0, 1, 2}, Bytes(1000), 4);
  REQUIRE(r.bytes == Bytes(996));
  REQUIRE(r.count == 249);
}

TEST_CASE("sweep parameters are checked before simulating", "[network][bench][input]") {
  const Topology topo = make_topology_preset("dgx-h100", 1);  // 8 GPUs
  const NetworkParams params = default_network_params(topo);
  CollectiveBenchConfig cfg;
  cfg.min_bytes = Bytes::mib(1);
  cfg.max_bytes = Bytes::mib(1);
  cfg.gpus = 9;  // more GPUs than the topology has
  REQUIRE_THROWS_AS(run_collective_bench(topo, params, cfg), InputError);
  cfg.gpus = 8;
  cfg.algorithm = CollectiveAlgorithm::kTwoHop;  // not an all-reduce algorithm
  REQUIRE_THROWS_AS(run_collective_bench(topo, params, cfg), InputError);
  cfg.algorithm = CollectiveAlgorithm::kAuto;
  cfg.op = CollectiveOp::kSendRecv;
  cfg.gpus = 1;
  REQUIRE_THROWS_AS(run_collective_bench(topo, params, cfg), InputError);
  cfg.gpus = 0;  // all 8
  cfg.op = CollectiveOp::kAllToAll;
  const CollectiveBenchResult res = run_collective_bench(topo, params, cfg);
  REQUIRE(res.gpus == 8);
  REQUIRE(res.rows.size() == 1);
  REQUIRE(res.rows[0].transfers == 56);  // 8 x 7 pairs
}
