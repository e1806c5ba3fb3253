// Network models and collectives over Topology graphs: closed forms of the
// alpha-beta model (written out beside each check), analytical vs flow, the
// calibration against measured NCCL all-reduce, determinism and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/options.hpp"
#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "topology/collectives.hpp"
#include "topology/flow_network.hpp"
#include "topology/network.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"

using namespace moesim;
using namespace moesim::literals;

namespace {

NetworkParams ideal_params(NetworkModelKind model, Duration alpha) {
  NetworkParams p;
  p.model = model;
  p.alpha = alpha;
  p.efficiency = {1.0, 1.0, 1.0, 1.0};
  p.provenance = "test: ideal links";
  return p;
}

// n GPUs, each with a duplex link of `bw` to one NVSwitch; no latency.
Topology ideal_nvswitch(int n, Bandwidth bw) {
  Topology t;
  t.name = "test-nvswitch";
  const VertexId sw = t.add_vertex(VertexInfo{VertexKind::kNvSwitch, "nvswitch", 0, -1});
  for (int g = 0; g < n; ++g) {
    const VertexId v = t.add_vertex(VertexInfo{VertexKind::kGpu, "gpu" + std::to_string(g), 0, -1});
    t.add_duplex(v, sw, bw, Duration::zero(), LinkClass::kNvLink);
  }
  return t;
}

// Two-tier fat-tree: `leaves` leaves of `per_leaf` GPUs (one GPU per server),
// each GPU on its leaf by a NIC link of `nic`; every leaf to one spine by a
// fabric link of per_leaf x nic / oversubscription. Every hop `hop` latency.
Topology fat_tree(int leaves, int per_leaf, Bandwidth nic, double oversubscription, Duration hop) {
  Topology t;
  t.name = "test-fat-tree";
  const VertexId spine = t.add_vertex(VertexInfo{VertexKind::kSpineSwitch, "spine", -1, -1});
  int gpu = 0;
  for (int l = 0; l < leaves; ++l) {
    const VertexId leaf = t.add_vertex(VertexInfo{VertexKind::kLeafSwitch, "leaf" + std::to_string(l), -1, -1});
    t.add_duplex(leaf, spine, nic * (per_leaf / oversubscription), hop, LinkClass::kFabric);
    for (int i = 0; i < per_leaf; ++i, ++gpu) {
      const VertexId v = t.add_vertex(VertexInfo{VertexKind::kGpu, "gpu" + std::to_string(gpu), gpu, -1});
      t.add_duplex(v, leaf, nic, hop, LinkClass::kNic);
    }
  }
  return t;
}

std::vector<GpuId> first_gpus(int n) {
  std::vector<GpuId> g;
  for (int i = 0; i < n; ++i) g.push_back(i);
  return g;
}

// Runs one collective alone and returns its time.
Duration run_collective(const Topology& topo, const NetworkParams& params, CollectiveRequest req,
                        NetworkStats* stats = nullptr) {
  Simulator sim;
  auto net = make_network(params, sim, topo);
  CollectiveEngine engine(sim, *net);
  Duration time = Duration::max();
  engine.start(std::move(req), [&](const CollectiveResult& r) { time = r.time; });
  sim.run();
  if (stats != nullptr) *stats = net->stats();
  REQUIRE(engine.in_flight() == 0);
  return time;
}

CollectiveRequest request(CollectiveOp op, CollectiveAlgorithm algorithm, std::vector<GpuId> group, Bytes bytes) {
  CollectiveRequest r;
  r.op = op;
  r.algorithm = algorithm;
  r.group = std::move(group);
  r.bytes = bytes;
  return r;
}

}  // namespace

TEST_CASE("analytical and flow agree for a transfer alone", "[network][models]") {
  // One transfer, nothing else on the network: both models give
  // alpha + route latency + bytes / bottleneck (to the picosecond).
  const Topology topo = make_topology_preset("dgx-h100", 2);
  for (const auto& [src, dst] : {std::pair<GpuId, GpuId>{0, 5}, {3, 12}, {7, 7}}) {
    std::vector<std::int64_t> times;
    for (NetworkModelKind kind : {NetworkModelKind::kAnalytical, NetworkModelKind::kFlow}) {
      Simulator sim;
      auto net = make_network(default_network_params(topo, kind), sim, topo);
      std::int64_t at = -1;
      net->start_transfer(src, dst, Bytes::mib(48), [&] { at = sim.now().count_ps(); });
      sim.run();
      REQUIRE(at == net->uncontended_time(src, dst, Bytes::mib(48)).count_ps());
      times.push_back(at);
    }
    REQUIRE(times[0] == times[1]);
  }
}

TEST_CASE("ring all-reduce through an ideal NVSwitch matches the closed form", "[network][collectives]") {
  // T = 2(n-1)/n * S/B + 2(n-1) * alpha (each of the 2(n-1) steps moves S/n
  // over a GPU's own NVSwitch link, uncontended, and pays alpha).
  const Bandwidth bw = Bandwidth::gbytes_per_second(100.0);
  const Duration alpha = 5_us;
  for (int n : {2, 4, 8}) {
    for (Bytes s : {Bytes::mib(1), Bytes::mib(64), Bytes::gib(1)}) {
      const Topology topo = ideal_nvswitch(n, bw);
      const double dn = n;
      const double closed = 2.0 * (dn - 1.0) / dn * s.as_double() / bw.bytes_per_second() +
                            2.0 * (dn - 1.0) * alpha.seconds();
      for (NetworkModelKind kind : {NetworkModelKind::kFlow, NetworkModelKind::kAnalytical}) {
        const Duration t = run_collective(
            topo, ideal_params(kind, alpha),
            request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kRing, first_gpus(n), s));
        REQUIRE(t.seconds() == Approx(closed).epsilon(1e-3));
      }
    }
  }
}

TEST_CASE("all-gather, reduce-scatter and broadcast match their closed forms", "[network][collectives]") {
  const int n = 4;
  const Bandwidth bw = Bandwidth::gbytes_per_second(100.0);
  const Duration alpha = 3_us;
  const Topology topo = ideal_nvswitch(n, bw);
  const NetworkParams params = ideal_params(NetworkModelKind::kFlow, alpha);
  const Bytes s = Bytes::mib(64);
  // All-gather / reduce-scatter: (n-1) steps of S/n: (n-1)(alpha + S/(n B)).
  const double ring = (n - 1) * (alpha.seconds() + s.as_double() / n / bw.bytes_per_second());
  REQUIRE(run_collective(topo, params, request(CollectiveOp::kAllGather, CollectiveAlgorithm::kAuto, first_gpus(n), s))
              .seconds() == Approx(ring).epsilon(1e-6));
  REQUIRE(run_collective(topo, params,
                         request(CollectiveOp::kReduceScatter, CollectiveAlgorithm::kRing, first_gpus(n), s))
              .seconds() == Approx(ring).epsilon(1e-6));
  // Broadcast: chain of n-1 hops, C = S / 512 KiB = 128 chunks (capped at 256):
  // (n - 2 + C)(alpha + S/(C B)).
  const double chunks = 128.0;
  const double bcast = (n - 2 + chunks) * (alpha.seconds() + s.as_double() / chunks / bw.bytes_per_second());
  REQUIRE(run_collective(topo, params, request(CollectiveOp::kBroadcast, CollectiveAlgorithm::kAuto, first_gpus(n), s))
              .seconds() == Approx(bcast).epsilon(1e-6));
  // Send/recv: one transfer, alpha + S/B.
  REQUIRE(run_collective(topo, params, request(CollectiveOp::kSendRecv, CollectiveAlgorithm::kAuto, {1, 3}, s))
              .seconds() == Approx(alpha.seconds() + s.as_double() / bw.bytes_per_second()).epsilon(1e-9));
}

TEST_CASE("all-to-all on a non-blocking fat-tree takes (n-1) M / B_nic", "[network][collectives][alltoall]") {
  // 4 leaves x 4 GPUs, NIC 50 GB/s, spine links 4 x 50 GB/s (non-blocking).
  // Each GPU's NIC link carries n-1 = 15 flows of M: every flow gets B/15
  // (a leaf uplink carries 4 x 12 = 48 flows on 4B: B/12 > B/15, not a
  // bottleneck), all drain at alpha + 15 M / B, the last delivery adds the
  // 4-hop latency of a cross-leaf route.
  const Bandwidth nic = Bandwidth::gbytes_per_second(50.0);
  const Duration hop = 500_ns;
  const Duration alpha = 2_us;
  const Topology topo = fat_tree(4, 4, nic, 1.0, hop);
  const int n = 16;
  const Bytes m = Bytes::mib(1);
  const double closed = alpha.seconds() + (n - 1) * m.as_double() / nic.bytes_per_second() + 4 * hop.seconds();
  NetworkStats stats;
  const Duration t = run_collective(topo, ideal_params(NetworkModelKind::kFlow, alpha),
                                    request(CollectiveOp::kAllToAll, CollectiveAlgorithm::kDirect, first_gpus(n), m * n),
                                    &stats);
  REQUIRE(t.seconds() == Approx(closed).epsilon(1e-6));
  REQUIRE(stats.transfers_delivered == static_cast<std::uint64_t>(n * (n - 1)));
  REQUIRE(stats.bytes_delivered == m * (n * (n - 1)));
}

TEST_CASE("a skewed all-to-allv coflow takes its most loaded link's time; per-transfer is never faster",
          "[network][collectives][alltoall][coflow]") {
  // 4 leaves x 4 GPUs, NIC B = 50 GB/s, non-blocking spine (leaf uplink 4B),
  // every hop 500 ns, alpha 2 us. Rank i sends m_ij = (1 + (j mod 4)) x
  // (1 + (i mod 3)) x 256 KiB to rank j != i: destinations 3, 7, 11, 15 are
  // hot. Coflow sharing: the collective ends at
  //   alpha + max over links of (bytes on the link / its capacity) + 4 hops,
  // over the NIC uplinks (row sums / B), NIC downlinks (column sums / B) and
  // leaf uplinks / downlinks (cross-leaf sums / 4B). Per-transfer max-min
  // sharing cannot beat that bound, and moves the same bytes over the same
  // links.
  const Bandwidth nic = Bandwidth::gbytes_per_second(50.0);
  const Duration hop = 500_ns;
  const Duration alpha = 2_us;
  const Topology topo = fat_tree(4, 4, nic, 1.0, hop);
  const int n = 16;
  CollectiveRequest req = request(CollectiveOp::kAllToAllV, CollectiveAlgorithm::kDirect, first_gpus(n), Bytes());
  std::vector<double> row(n, 0.0), col(n, 0.0), leaf_out(4, 0.0), leaf_in(4, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const Bytes m = i == j ? Bytes(0) : Bytes::kib(256) * ((1 + j % 4) * (1 + i % 3));
      req.matrix.push_back(m);
      if (i == j) continue;
      row[static_cast<std::size_t>(i)] += m.as_double();
      col[static_cast<std::size_t>(j)] += m.as_double();
      if (i / 4 != j / 4) {
        leaf_out[static_cast<std::size_t>(i / 4)] += m.as_double();
        leaf_in[static_cast<std::size_t>(j / 4)] += m.as_double();
      }
    }
  }
  const double b = nic.bytes_per_second();
  const double worst = std::max({*std::max_element(row.begin(), row.end()) / b,
                                 *std::max_element(col.begin(), col.end()) / b,
                                 *std::max_element(leaf_out.begin(), leaf_out.end()) / (4 * b),
                                 *std::max_element(leaf_in.begin(), leaf_in.end()) / (4 * b)});
  const double closed = alpha.seconds() + worst + 4 * hop.seconds();
  NetworkParams params = ideal_params(NetworkModelKind::kFlow, alpha);
  NetworkStats coflow_stats;
  const Duration coflow = run_collective(topo, params, req, &coflow_stats);
  REQUIRE(coflow.seconds() == Approx(closed).epsilon(1e-9));
  params.alltoall_sharing = AllToAllSharing::kPerTransfer;
  NetworkStats per_stats;
  const Duration per_transfer = run_collective(topo, params, req, &per_stats);
  REQUIRE(per_transfer >= coflow - 1_ns);
  INFO("per-transfer / coflow = " << per_transfer.seconds() / coflow.seconds());
  REQUIRE(per_transfer.seconds() < 1.5 * coflow.seconds());
  REQUIRE(coflow_stats.transfers_delivered == per_stats.transfers_delivered);
  REQUIRE(coflow_stats.transfers_delivered == static_cast<std::uint64_t>(n * (n - 1)));
  REQUIRE(coflow_stats.bytes_delivered == per_stats.bytes_delivered);
  // The analytical model ignores the setting: no contention there.
  params.model = NetworkModelKind::kAnalytical;
  const Duration analytical_a = run_collective(topo, params, req);
  params.alltoall_sharing = AllToAllSharing::kCoflow;
  REQUIRE(run_collective(topo, params, req) == analytical_a);
}

TEST_CASE("a 2:1 oversubscribed spine halves cross-leaf all-to-all throughput", "[network][collectives][alltoall]") {
  // Only cross-leaf pairs exchange M (a 16 x 16 matrix, zero inside a leaf).
  // Non-blocking: a GPU's 12 cross-leaf flows share its NIC (B/12 each) and a
  // leaf uplink carries 48 flows on 4B (B/12): T = 12 M / B. With 2:1 the
  // uplink has 2B for 48 flows (B/24): T = 24 M / B, twice as long.
  const Bandwidth nic = Bandwidth::gbytes_per_second(50.0);
  const int n = 16;
  const Bytes m = Bytes::mib(4);
  CollectiveRequest req = request(CollectiveOp::kAllToAllV, CollectiveAlgorithm::kDirect, first_gpus(n), Bytes());
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) req.matrix.push_back(i / 4 != j / 4 ? m : Bytes(0));
  }
  const NetworkParams params = ideal_params(NetworkModelKind::kFlow, Duration::zero());
  const Duration full = run_collective(fat_tree(4, 4, nic, 1.0, Duration::zero()), params, req);
  const Duration half = run_collective(fat_tree(4, 4, nic, 2.0, Duration::zero()), params, req);
  REQUIRE(full.seconds() == Approx(12 * m.as_double() / nic.bytes_per_second()).epsilon(1e-6));
  REQUIRE(half.seconds() == Approx(24 * m.as_double() / nic.bytes_per_second()).epsilon(1e-6));
  // Throughput (bytes / time) of the 2:1 tree is half the non-blocking one.
  REQUIRE(full.seconds() / half.seconds() == Approx(0.5).epsilon(1e-6));
}

TEST_CASE("hierarchical all-reduce matches its closed form", "[network][collectives]") {
  // K = 4 nodes x L = 4 GPUs; NVSwitch B_nv per GPU inside a node; GPU j of
  // every node on rail leaf j by a NIC link B_nic. No latency.
  //   reduce-scatter in node: (L-1)(alpha + S/(L B_nv))
  //   all-reduce per rail of S/L among K: 2(K-1)(alpha + S/(L K B_nic))
  //   all-gather in node: (L-1)(alpha + S/(L B_nv))
  const int k = 4;
  const int l = 4;
  const Bandwidth nv = Bandwidth::gbytes_per_second(200.0);
  const Bandwidth nic = Bandwidth::gbytes_per_second(25.0);
  Topology topo;
  topo.name = "test-rails";
  std::vector<VertexId> leaves;
  for (int j = 0; j < l; ++j) {
    leaves.push_back(topo.add_vertex(VertexInfo{VertexKind::kLeafSwitch, "leaf" + std::to_string(j), -1, -1}));
  }
  for (int a = 0; a < k; ++a) {
    const VertexId sw = topo.add_vertex(VertexInfo{VertexKind::kNvSwitch, "sw" + std::to_string(a), a, -1});
    for (int j = 0; j < l; ++j) {
      const VertexId g = topo.add_vertex(VertexInfo{VertexKind::kGpu, "gpu" + std::to_string(a * l + j), a, -1});
      topo.add_duplex(g, sw, nv, Duration::zero(), LinkClass::kNvLink);
      topo.add_duplex(g, leaves[static_cast<std::size_t>(j)], nic, Duration::zero(), LinkClass::kNic);
    }
  }
  const Duration alpha = 4_us;
  const Bytes s = Bytes::mib(64);
  const double t_nv = (l - 1) * (alpha.seconds() + s.as_double() / l / nv.bytes_per_second());
  const double t_rail = 2 * (k - 1) * (alpha.seconds() + s.as_double() / (l * k) / nic.bytes_per_second());
  const CollectiveRequest req = request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kAuto, first_gpus(k * l), s);
  REQUIRE(resolve_algorithm(req, topo) == CollectiveAlgorithm::kHierarchical);
  const Duration t = run_collective(topo, ideal_params(NetworkModelKind::kFlow, alpha), req);
  REQUIRE(t.seconds() == Approx(2 * t_nv + t_rail).epsilon(1e-3));
}

TEST_CASE("two-hop all-to-all aggregates per node pair and rail", "[network][collectives][alltoall]") {
  SECTION("full nodes: the PXN plan") {
    // dgx-h100, 2 nodes x 8 GPUs, M per pair. Cross-node: each source gathers
    // M for rail r's GPU of the other node at its own rail-r GPU (7 gathers of
    // M each, per source), then one rail transfer per (node pair, rail) of 8M;
    // no scatter (the rail-r GPU is the destination). Inside a node: 7 direct.
    const Topology topo = make_topology_preset("dgx-h100", 2);
    const Bytes m = Bytes::kib(256);
    CollectiveRequest req = request(CollectiveOp::kAllToAll, CollectiveAlgorithm::kTwoHop, first_gpus(16), m * 16);
    const TransferPlan plan = plan_collective(req, topo);
    int rails = 0;
    int gathers = 0;
    int direct = 0;
    for (std::size_t t = 0; t < plan.size(); ++t) {
      const bool cross = topo.node_of(plan.src[t]) != topo.node_of(plan.dst[t]);
      if (cross) {
        ++rails;
        REQUIRE(plan.src[t] % 8 == plan.dst[t] % 8);  // same rail
        REQUIRE(plan.bytes[t] == (m * 8).count());
        REQUIRE(plan.predecessors[t] == 7);  // the 7 gathers into its sender
      } else if (plan.predecessors[t] == 0 && plan.successor_begin[t + 1] > plan.successor_begin[t]) {
        ++gathers;
        REQUIRE(plan.bytes[t] == m.count());
      } else {
        ++direct;
      }
    }
    REQUIRE(rails == 2 * 8);        // 2 ordered node pairs x 8 rails
    REQUIRE(gathers == 16 * 7);     // every source to 7 other rails
    REQUIRE(direct == 16 * 7);      // intra-node pairs
    // Cross-node bytes on rails: 2 x 8 x 8 x M = all cross-node pairs.
    const Duration t = run_collective(topo, default_network_params(topo), req);
    REQUIRE(t > Duration::zero());
  }
  SECTION("partial nodes: relays and the scatter on arrival") {
    // Ranks: 0 = gpu0 (node 0, rail 0); 1 = gpu9 (node 1, rail 1); 2 = gpu10
    // (node 1, rail 2); 1000 bytes between every pair.
    //  node 0 -> node 1: node 0 has only rank 0, the relay of every rail; rank 1
    //    (first of node 1) stands in for rail 0 there: one rail transfer
    //    gpu0 -> gpu9 of 2000 bytes, then a scatter gpu9 -> gpu10 of 1000.
    //  node 1 -> node 0: rail 0 of node 1 is covered by rank 1 (position 0):
    //    rank 2 gathers its 1000 at gpu9, then gpu9 -> gpu0 carries 2000.
    //  inside node 1: gpu9 -> gpu10 and gpu10 -> gpu9, 1000 each.
    const Topology topo = make_topology_preset("dgx-h100", 2);
    CollectiveRequest req = request(CollectiveOp::kAllToAllV, CollectiveAlgorithm::kTwoHop, {0, 9, 10}, Bytes());
    req.matrix = {Bytes(0), Bytes(1000), Bytes(1000), Bytes(1000), Bytes(0), Bytes(1000), Bytes(1000), Bytes(1000),
                  Bytes(0)};
    const TransferPlan plan = plan_collective(req, topo);
    REQUIRE(plan.size() == 6);
    struct Expect {
      GpuId src, dst;
      std::int64_t bytes;
      std::int32_t preds;
    };
    const std::vector<Expect> expected = {{0, 9, 2000, 0},  {9, 10, 1000, 1},  {9, 10, 1000, 0},
                                          {10, 9, 1000, 0}, {10, 9, 1000, 0}, {9, 0, 2000, 1}};
    for (const Expect& e : expected) {
      int matches = 0;
      for (std::size_t t = 0; t < plan.size(); ++t) {
        if (plan.src[t] == e.src && plan.dst[t] == e.dst && plan.bytes[t] == e.bytes &&
            plan.predecessors[t] == e.preds) {
          ++matches;
        }
      }
      REQUIRE(matches >= 1);
    }
    REQUIRE(plan.total_bytes().count() == 2000 + 1000 + 1000 + 1000 + 1000 + 2000);
    NetworkStats stats;
    run_collective(topo, default_network_params(topo), req, &stats);
    REQUIRE(stats.transfers_delivered == 6);
  }
}

TEST_CASE("calibration: 8-GPU all-reduce against the measured NCCL table", "[network][calibration]") {
  // calibration.md, measured 8-GPU all-reduce (microsoft/vidur profiling data),
  // median times; the requirement: within 15 % for sizes >= 16 MiB.
  struct Row {
    const char* preset;
    Bytes size;
    double measured_ms;
  };
  const std::vector<Row> rows = {{"dgx-h100", Bytes::mib(16), 0.115},
                                 {"dgx-h100", Bytes::mib(64), 0.322},
                                 {"dgx-a100", Bytes::mib(16), 0.275},
                                 {"dgx-a100", Bytes::mib(64), 0.675}};
  for (const Row& row : rows) {
    const Topology topo = make_topology_preset(row.preset, 1);
    for (NetworkModelKind kind : {NetworkModelKind::kFlow, NetworkModelKind::kAnalytical}) {
      const Duration t = run_collective(
          topo, default_network_params(topo, kind),
          request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kAuto, first_gpus(8), row.size));
      const double err = (t.milliseconds() - row.measured_ms) / row.measured_ms;
      INFO(row.preset << " " << row.size.count() << " B: simulated " << t.milliseconds() << " ms, measured "
                      << row.measured_ms << " ms, error " << err * 100 << " %");
      REQUIRE(std::abs(err) <= 0.15);
    }
  }
}

TEST_CASE("same inputs give bit-identical results", "[network][determinism]") {
  // A random all-to-allv plus a concurrent all-reduce on 2 DGX H100 nodes, run
  // twice per model and algorithm: identical end times and counters.
  const Topology topo = make_topology_preset("dgx-h100", 2);
  const auto run_once = [&](NetworkModelKind kind, CollectiveAlgorithm a2a) {
    RandomStream rng = RandomStreams(42).stream("test.network.determinism");
    CollectiveRequest req = request(CollectiveOp::kAllToAllV, a2a, first_gpus(16), Bytes());
    for (int e = 0; e < 16 * 16; ++e) req.matrix.push_back(Bytes(static_cast<std::int64_t>(rng.below(4'000'000))));
    Simulator sim;
    auto net = make_network(default_network_params(topo, kind), sim, topo);
    CollectiveEngine engine(sim, *net);
    std::vector<std::int64_t> ends;
    engine.start(req, [&](const CollectiveResult& r) { ends.push_back(r.time.count_ps()); });
    engine.start(request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kAuto, first_gpus(16), Bytes::mib(96)),
                 [&](const CollectiveResult& r) { ends.push_back(r.time.count_ps()); });
    sim.run();
    const NetworkStats st = net->stats();
    ends.push_back(static_cast<std::int64_t>(st.rate_recomputations));
    ends.push_back(static_cast<std::int64_t>(st.transfers_delivered));
    ends.push_back(sim.now().count_ps());
    return ends;
  };
  for (NetworkModelKind kind : {NetworkModelKind::kFlow, NetworkModelKind::kAnalytical}) {
    for (CollectiveAlgorithm a : {CollectiveAlgorithm::kDirect, CollectiveAlgorithm::kTwoHop}) {
      REQUIRE(run_once(kind, a) == run_once(kind, a));
    }
  }
}

TEST_CASE("per-link counters and transfer signals", "[network][signals]") {
  // One 10 MB transfer over an ideal switch at 100 GB/s: both links it crosses
  // count 10 MB and are busy 10e6 / 100e9 = 100 us; the signals fire once each.
  const Topology topo = ideal_nvswitch(2, Bandwidth::gbytes_per_second(100.0));
  for (NetworkModelKind kind : {NetworkModelKind::kFlow, NetworkModelKind::kAnalytical}) {
    Simulator sim;
    auto net = make_network(ideal_params(kind, 1_us), sim, topo);
    int started = 0;
    int delivered = 0;
    std::int64_t summed = 0;
    net->transfer_started.connect([&](const TransferRecord& r) {
      ++started;
      REQUIRE(r.links.size() == 2);
    });
    net->transfer_delivered.connect([&](const TransferRecord& r) {
      ++delivered;
      REQUIRE(r.src == 0);
      REQUIRE(r.dst == 1);
      REQUIRE((r.end - r.start) == 1_us + 100_us);
    });
    net->link_summary.connect([&](const LinkUsage& u) {
      summed += u.bytes.count();
      REQUIRE(u.busy == 100_us);
    });
    net->start_transfer(0, 1, Bytes(10'000'000), nullptr);
    sim.run();
    net->emit_link_summary();
    REQUIRE(started == 1);
    REQUIRE(delivered == 1);
    REQUIRE(summed == 2 * 10'000'000);
  }
}

TEST_CASE("collectives complete through events, also when empty", "[network][collectives]") {
  const Topology topo = ideal_nvswitch(4, Bandwidth::gbytes_per_second(100.0));
  Simulator sim;
  auto net = make_network(ideal_params(NetworkModelKind::kFlow, 1_us), sim, topo);
  CollectiveEngine engine(sim, *net);
  bool done = false;
  engine.start(request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kRing, {2}, Bytes::mib(1)),
               [&](const CollectiveResult& r) {
                 done = true;
                 REQUIRE(r.time == Duration::zero());
                 REQUIRE(r.transfers == 0);
               });
  REQUIRE_FALSE(done);  // never inside start()
  sim.run();
  REQUIRE(done);
}

TEST_CASE("bad collective and transfer input is an InputError", "[network][input]") {
  const Topology topo = make_topology_preset("dgx-h100", 1);
  Simulator sim;
  auto net = make_network(default_network_params(topo), sim, topo);
  CollectiveEngine engine(sim, *net);
  const auto start = [&](CollectiveRequest r) { engine.start(std::move(r), nullptr); };
  // GPU out of range (the topology has 8 GPUs, 0..7).
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kAuto, {0, 8}, Bytes::mib(1))),
                    InputError);
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kAuto, {-1, 2}, Bytes::mib(1))),
                    InputError);
  // Empty group, repeated GPU, negative size.
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllGather, CollectiveAlgorithm::kAuto, {}, Bytes::mib(1))),
                    InputError);
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllGather, CollectiveAlgorithm::kAuto, {1, 1}, Bytes::mib(1))),
                    InputError);
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kBroadcast, CollectiveAlgorithm::kAuto, {0, 1}, Bytes(-1))),
                    InputError);
  // A matrix of the wrong size (3 x 3 needs 9 entries) or with a negative entry.
  CollectiveRequest v = request(CollectiveOp::kAllToAllV, CollectiveAlgorithm::kDirect, {0, 1, 2}, Bytes());
  v.matrix.assign(8, Bytes(10));
  REQUIRE_THROWS_AS(start(v), InputError);
  v.matrix.assign(9, Bytes(10));
  v.matrix[4] = Bytes(-3);
  REQUIRE_THROWS_AS(start(v), InputError);
  // Send/recv needs 2 GPUs; an algorithm that does not apply to the op.
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kSendRecv, CollectiveAlgorithm::kAuto, {0, 1, 2}, Bytes(10))),
                    InputError);
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllReduce, CollectiveAlgorithm::kTwoHop, {0, 1}, Bytes(10))),
                    InputError);
  REQUIRE_THROWS_AS(start(request(CollectiveOp::kAllToAll, CollectiveAlgorithm::kRing, {0, 1}, Bytes(10))),
                    InputError);
  // Point-to-point: GPU out of range, negative size.
  REQUIRE_THROWS_AS(net->start_transfer(0, 8, Bytes(10), nullptr), InputError);
  REQUIRE_THROWS_AS(net->start_transfer(0, 1, Bytes(-10), nullptr), InputError);
  // Names.
  REQUIRE_THROWS_AS(parse_collective_op("allreduce"), InputError);
  REQUIRE_THROWS_AS(parse_collective_algorithm("tree"), InputError);
  REQUIRE(parse_collective_op("all_to_allv") == CollectiveOp::kAllToAllV);
  REQUIRE(engine.in_flight() == 0);
}

TEST_CASE("network options resolve over the calibration profile", "[network][options]") {
  OptionRegistry reg;
  register_network_options(reg);
  const Topology topo = make_topology_preset("dgx-h100", 1);
  Config cfg(reg);
  NetworkParams p = network_params_from_config(cfg, topo);
  REQUIRE(p.model == NetworkModelKind::kFlow);
  REQUIRE(p.alpha == network_calibration("dgx-h100").alpha);
  REQUIRE(p.alltoall_sharing == AllToAllSharing::kCoflow);
  cfg.set("network.alltoall_sharing", "per_transfer", "test");
  REQUIRE(network_params_from_config(cfg, topo).alltoall_sharing == AllToAllSharing::kPerTransfer);
  REQUIRE_THROWS_AS(cfg.set("network.alltoall_sharing", "fair", "test"), InputError);
  cfg.set("network.model", "analytical", "test");
  cfg.set("network.alpha", "7us", "test");
  cfg.set("network.nic_efficiency", "0.5", "test");
  p = network_params_from_config(cfg, topo);
  REQUIRE(p.model == NetworkModelKind::kAnalytical);
  REQUIRE(p.alpha == 7_us);
  REQUIRE(p.efficiency[static_cast<std::size_t>(LinkClass::kNic)] == 0.5);
  REQUIRE_THROWS_AS(cfg.set("network.model", "packet", "test"), InputError);
  REQUIRE_THROWS_AS(cfg.set("network.nvlink_efficiency", "1.5", "test"), InputError);
  // A DOT-like topology without a profile keeps the topology's class efficiencies.
  Topology custom = ideal_nvswitch(2, Bandwidth::gbytes_per_second(10.0));
  custom.set_efficiency(LinkClass::kNvLink, 0.6);
  REQUIRE(default_network_params(custom).efficiency[0] == 0.6);
}
