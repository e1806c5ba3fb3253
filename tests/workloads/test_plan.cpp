// The plan builder through the executor: pipeline bubble against the GPipe
// closed form, routing skew against layer time, an end-to-end iteration
// against a hand calculation, determinism, plan structure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "analysis/hdf5_reader.hpp"
#include "analysis/run_report.hpp"
#include "analysis/time_breakdown.hpp"
#include "sim/compute_model.hpp"
#include "sim/executor.hpp"
#include "sim/simulator.hpp"
#include "tests/analysis/temp_dir.hpp"
#include "tests/workloads/test_plan_helpers.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/presets.hpp"
#include "topology/topology_options.hpp"
#include "workloads/batch_options.hpp"
#include "workloads/workload_options.hpp"
#include "workloads/plan_builder.hpp"
#include "workloads/routing.hpp"
#include "workloads/strategy.hpp"

using namespace moesim;
using moesim::test::toy_moe;
using moesim::test::ZeroCostBackend;

namespace {

Strategy folded(std::int64_t tp, std::int64_t pp, std::int64_t dp, std::int64_t ep, std::int64_t mbs) {
  Strategy s;
  s.tp = tp;
  s.pp = pp;
  s.dp = dp;
  s.ep = ep;
  s.microbatches = mbs;
  s.convention = Convention::kFolded;
  return s;
}

RoutingConfig routing(RoutingDistribution d, double skew = 1.0) {
  RoutingConfig r;
  r.distribution = d;
  r.skew = skew;
  return r;
}

/// A GPU on which only the GEMM-like work costs time: no launch overhead and
/// a near-infinite HBM bandwidth make the memory-bound embedding, norms and LM
/// head negligible, so that pipeline stages of equal layers are equal.
GpuSpec compute_only_gpu() {
  GpuSpec g;
  g.kernel_launch_overhead = Duration::zero();
  g.memory_bandwidth = Bandwidth::gbytes_per_second(1e9);
  return g;
}

}  // namespace

TEST_CASE("BatchDescription::prefill deals sequences over replicas and micro-batches", "[plan]") {
  const auto d = BatchDescription::prefill(11, 100, 2, 3);
  REQUIRE(d.replicas.size() == 2);
  REQUIRE(d.microbatches() == 3);
  // Replica 0 gets 6 sequences (2, 2, 2), replica 1 gets 5 (2, 2, 1).
  CHECK(d.replicas[0][0].sequences.size() == 2);
  CHECK(d.replicas[0][2].sequences.size() == 2);
  CHECK(d.replicas[1][2].sequences.size() == 1);
  CHECK(d.sequences() == 11);
  CHECK(d.tokens() == 1100);
  CHECK(d.sampled_tokens() == 11);
  CHECK_THROWS_AS(BatchDescription::prefill(0, 100, 1, 1), InputError);
  CHECK_THROWS_AS(BatchDescription::prefill(4, 0, 1, 1), InputError);
}

TEST_CASE("plan structure of one MoE layer on two GPUs", "[plan]") {
  const ModelSpec model = toy_moe(1);
  const RankMapping mapping(model, folded(1, 1, 2, 2, 1));
  const ComputeModel compute(GpuSpec{});
  const ExpertRouter router(routing(RoutingDistribution::kBalanced), model, RandomStreams(1));
  PlanBuilder builder(model, mapping, compute, router);
  BuiltPlan built = builder.build(BatchDescription::prefill(2, 64, 2, 1));
  const Plan& plan = built.plan;
  // Per GPU: embedding, norm, attention, norm, router, expert, LM head (7
  // compute ops); per EP group: dispatch, combine.
  std::map<OpCategory, int> count;
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) ++count[plan.label(op).category];
  CHECK(plan.size() == 2 * 7 + 2);
  CHECK(count[OpCategory::kEmbedding] == 2);
  CHECK(count[OpCategory::kNorm] == 4);
  CHECK(count[OpCategory::kAttention] == 2);
  CHECK(count[OpCategory::kRouter] == 2);
  CHECK(count[OpCategory::kExpert] == 2);
  CHECK(count[OpCategory::kLmHead] == 2);
  CHECK(count[OpCategory::kEpDispatch] == 1);
  CHECK(count[OpCategory::kEpCombine] == 1);
  CHECK(count[OpCategory::kTpAllReduce] == 0);  // tp = 1
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) {
    if (plan.label(op).category != OpCategory::kEpDispatch) continue;
    const CollectiveRequest& r = plan.request(op);
    CHECK(r.op == CollectiveOp::kAllToAllV);
    CHECK(r.group == std::vector<GpuId>{0, 1});
    // 64 tokens per GPU, top-2 over 8 experts, 4 experts per GPU: balanced
    // routing sends half of the 128 assignments to the other GPU, 64 x 1024 x 2 B.
    CHECK(r.matrix[1].count() == 64 * 1024 * 2);
    CHECK(r.matrix[2].count() == 64 * 1024 * 2);
    CHECK(r.matrix[0].count() == 0);
  }
  CHECK(built.tokens == 128);
  CHECK(built.sampled_tokens == 2);
  REQUIRE(built.expert_load.expert_tokens.size() == 1);
  CHECK(built.expert_load.imbalance(0) == Approx(1.0));  // balanced
}

TEST_CASE("tensor parallelism adds the TP all-reduces, pipeline the stage-to-stage sends", "[plan]") {
  // 4 layers (1 dense), tp 2, pp 2, dp 2, ep 2 (folded: world 8), 3 micro-batches.
  const ModelSpec model = toy_moe(4, 1);
  const RankMapping mapping(model, folded(2, 2, 2, 2, 3));
  const ComputeModel compute(GpuSpec{});
  const ExpertRouter router(routing(RoutingDistribution::kUniform), model, RandomStreams(7));
  PlanBuilder builder(model, mapping, compute, router);
  const BuiltPlan built = builder.build(BatchDescription::prefill(6, 128, 2, 3));
  const Plan& plan = built.plan;
  std::map<OpCategory, int> count;
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) ++count[plan.label(op).category];
  // TP all-reduces per TP group (2 per stage) per micro-batch (3): embedding
  // (stage 0 only) + 2 per layer (attention, FFN/MoE) x 4 layers.
  CHECK(count[OpCategory::kTpAllReduce] == 3 * 2 * (1 + 2 * 4));
  // Sends: every stage-0 GPU (4) per micro-batch (3).
  CHECK(count[OpCategory::kPpTransfer] == 12);
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) {
    if (plan.label(op).category == OpCategory::kPpTransfer) {
      // 128 tokens of the replica x hidden 1024 x 2 bytes.
      CHECK(plan.request(op).bytes.count() == 128 * 1024 * 2);
      CHECK(stream_of_lane(plan.lanes(op)[0]) == StreamKind::kPpSend);
      CHECK(stream_of_lane(plan.lanes(op)[1]) == StreamKind::kPpRecv);
    }
    if (plan.label(op).category == OpCategory::kTpAllReduce) {
      CHECK(plan.request(op).group.size() == 2);
    }
  }
  // The dense layer has no router: 3 MoE layers x 3 micro-batches x (2 EP groups per stage).
  CHECK(count[OpCategory::kEpDispatch] == 3 * 3 * 2);
  CHECK(count[OpCategory::kDenseFfn] == 3 * 4);  // layer 0 on the 4 stage-0 GPUs
}

TEST_CASE("partial stage ranges: a stage plan starts with its input and ends with its send", "[plan]") {
  const ModelSpec model = toy_moe(4);
  const RankMapping mapping(model, folded(1, 2, 2, 2, 2));
  const ComputeModel compute(GpuSpec{});
  const ExpertRouter router(routing(RoutingDistribution::kBalanced), model, RandomStreams(1));
  PlanBuilder builder(model, mapping, compute, router);
  const auto batch = BatchDescription::prefill(4, 64, 2, 2);
  const BuiltPlan first = builder.build(batch, StageRange{0, 1});
  const BuiltPlan second = builder.build(batch, StageRange{1, 1});
  int sends = 0;
  int lm = 0;
  for (OpId op = 0; op < static_cast<OpId>(first.plan.size()); ++op) {
    sends += first.plan.label(op).category == OpCategory::kPpTransfer ? 1 : 0;
    lm += first.plan.label(op).category == OpCategory::kLmHead ? 1 : 0;
  }
  CHECK(sends == 4);  // 2 GPUs x 2 micro-batches
  CHECK(lm == 0);
  for (OpId op = 0; op < static_cast<OpId>(second.plan.size()); ++op) {
    CHECK(second.plan.label(op).category != OpCategory::kPpTransfer);
    CHECK(second.plan.label(op).category != OpCategory::kEmbedding);
  }
  CHECK_THROWS_AS(builder.build(batch, StageRange{2, 1}), InputError);
  // A batch for the wrong number of replicas is refused.
  CHECK_THROWS_AS(builder.build(BatchDescription::prefill(4, 64, 3, 2)), InputError);
}

TEST_CASE("measured pipeline bubble equals (p-1)/(m+p-1) with free communication and equal stages",
          "[plan][bubble]") {
  // 8 MoE layers over p stages; 2 GPUs per stage (dp 2, ep 2); one sequence
  // of 512 tokens per replica and micro-batch; balanced routing so that both
  // GPUs of a stage do the same work.
  const ModelSpec model = toy_moe(8);
  const ComputeModel compute(compute_only_gpu());
  const ExpertRouter router(routing(RoutingDistribution::kBalanced), model, RandomStreams(3));
  for (const auto& [p, m] : std::vector<std::pair<int, int>>{{2, 1}, {4, 4}, {4, 8}, {8, 16}}) {
    const RankMapping mapping(model, folded(1, p, 2, 2, m));
    PlanBuilder builder(model, mapping, compute, router);
    // Prefill chunks that do not sample yet: no LM head on the last stage,
    // whose GEMM (one 128-row tile for a handful of rows) would make that
    // stage longer than the others; the closed form assumes equal stages.
    BatchDescription batch = BatchDescription::prefill(2 * m, 512, 2, m);
    for (auto& replica : batch.replicas)
      for (auto& mb : replica)
        for (auto& seq : mb.sequences) seq.samples = false;
    BuiltPlan built = builder.build(batch);
    Simulator sim;
    ZeroCostBackend net(sim);
    Executor ex(sim, net, std::move(built.plan));
    analysis::TimeBreakdown tb(static_cast<std::int32_t>(mapping.world_size()));
    tb.attach(ex);
    ex.run();
    tb.close(ex.finish_time());
    const double expected = static_cast<double>(p - 1) / static_cast<double>(m + p - 1);
    std::vector<GpuId> all;
    for (GpuId g = 0; g < tb.gpu_count(); ++g) all.push_back(g);
    const auto bubble = tb.stats(analysis::TimeKind::kBubble, all);
    INFO("p = " << p << ", m = " << m << ": bubble min " << bubble.min << " mean " << bubble.mean << " max "
                << bubble.max << ", closed form " << expected);
    CHECK(std::abs(bubble.mean - expected) <= 0.01 * std::max(expected, 1e-9));
    CHECK(std::abs(bubble.min - expected) <= 0.01 * std::max(expected, 1e-9));
    CHECK(std::abs(bubble.max - expected) <= 0.01 * std::max(expected, 1e-9));
    // With free communication the rest is compute; nothing is idle.
    for (GpuId g : all) {
      const auto& t = tb.gpu(g);
      CHECK(t[analysis::TimeKind::kIdle] == Duration::zero());
      CHECK(t[analysis::TimeKind::kAllToAll] == Duration::zero());
      CHECK(t.total() == ex.makespan());
      CHECK(t.fraction(analysis::TimeKind::kCompute) + t.fraction(analysis::TimeKind::kBubble) == Approx(1.0));
    }
  }
}

namespace {

/// Runs one iteration on a real network; returns the executor's makespan and
/// the time from the first dispatch's begin to the last combine's end.
struct NetRun {
  Duration makespan;
  Duration moe_span;
  std::vector<Time> begins;
  std::vector<Time> ends;
};

NetRun run_on_network(const ModelSpec& model, const Strategy& strategy, const RoutingConfig& rc, std::int64_t batch,
                      std::int64_t prompt, NetworkModelKind kind, const std::string& preset, int nodes,
                      std::uint64_t seed = 5) {
  const Topology topo = make_topology_preset(preset, nodes);
  const RankMapping mapping(model, strategy);
  const ComputeModel compute(GpuSpec{});
  const ExpertRouter router(rc, model, RandomStreams(seed));
  PlanBuilder builder(model, mapping, compute, router, PlanBuilderOptions{topo.gpu_count(), {}, {}});
  BuiltPlan built = builder.build(
      BatchDescription::prefill(batch, prompt, mapping.attention_dp(), strategy.microbatches));
  Simulator sim;
  auto network = make_network(default_network_params(topo, kind), sim, topo);
  CollectiveEngine engine(sim, *network);
  Executor ex(sim, engine, std::move(built.plan));
  ex.run();
  NetRun r{ex.makespan(), {}, {}, {}};
  Time first = Time::max();
  Time last{};
  for (OpId op = 0; op < static_cast<OpId>(ex.plan().size()); ++op) {
    r.begins.push_back(ex.begin_time(op));
    r.ends.push_back(ex.end_time(op));
    const OpCategory c = ex.plan().label(op).category;
    if (c == OpCategory::kEpDispatch) first = std::min(first, ex.begin_time(op));
    if (c == OpCategory::kEpCombine) last = std::max(last, ex.end_time(op));
  }
  r.moe_span = last - first;
  return r;
}

}  // namespace

TEST_CASE("more routing skew gives a slower MoE layer", "[plan][skew]") {
  // One MoE layer, EP 8 over one 8-GPU NVSwitch node, 8 x 2048 tokens, flow
  // network. Skewed routing loads the hot experts' GPUs: their grouped GEMM
  // and their all-to-all traffic grow, and the combine waits for them.
  ModelSpec model = toy_moe(1);
  model.experts = 64;
  model.top_k = 4;
  const Strategy s = folded(1, 1, 8, 8, 1);
  const auto balanced = run_on_network(model, s, routing(RoutingDistribution::kBalanced), 8, 2048,
                                       NetworkModelKind::kFlow, "dgx-h100", 1);
  std::vector<Duration> spans{balanced.moe_span};
  for (double skew : {0.5, 1.0, 2.0}) {
    spans.push_back(run_on_network(model, s, routing(RoutingDistribution::kZipf, skew), 8, 2048,
                                   NetworkModelKind::kFlow, "dgx-h100", 1)
                        .moe_span);
  }
  INFO("MoE span balanced " << spans[0].microseconds() << " us, zipf 0.5 " << spans[1].microseconds()
                            << " us, 1.0 " << spans[2].microseconds() << " us, 2.0 " << spans[3].microseconds()
                            << " us");
  CHECK(spans[1] > spans[0]);
  CHECK(spans[2] > spans[1]);
  CHECK(spans[3] > spans[2]);
  // Zipf 2 puts most of the load on the few top experts: well over 1.5x.
  CHECK(spans[3].seconds() > 1.5 * spans[0].seconds());
}

TEST_CASE("end-to-end iteration equals a hand calculation (tp 2, ep 4, analytical network)", "[plan][hand]") {
  // Toy model: layer 0 dense (FFN 4096), layer 1 MoE (8 experts of 1024,
  // top-2); hidden 1024, 8 heads of 128 (8 KV heads), vocab 256, bf16.
  // 8 GPUs of one DGX H100 node, tp 2, dp 4 (folded), ep 4 (two EP groups of
  // 4), pp 1, one micro-batch. Batch: 4 sequences of 512 tokens: one per
  // attention replica (T = 512), each TP rank routing its 256-token slice.
  const ModelSpec model = toy_moe(2, 1);
  const Strategy strategy = folded(2, 1, 4, 4, 1);
  const Topology topo = make_topology_preset("dgx-h100", 1);
  const RankMapping mapping(model, strategy);
  const GpuSpec gpu{};
  const ComputeModel cm(gpu);
  const ExpertRouter router(routing(RoutingDistribution::kBalanced), model, RandomStreams(1));
  PlanBuilder builder(model, mapping, cm, router, PlanBuilderOptions{topo.gpu_count(), {}, {}});
  BuiltPlan built = builder.build(BatchDescription::prefill(4, 512, 4, 1));

  Simulator sim;
  auto network = make_network(default_network_params(topo, NetworkModelKind::kAnalytical), sim, topo);
  CollectiveEngine engine(sim, *network);
  Executor ex(sim, engine, std::move(built.plan));
  ex.run();

  // Compute durations from the compute model, shapes written out here:
  const Precision bf16 = Precision::kBf16;
  const Duration embedding = cm.time(MemoryOp{Bytes(2 * 512 * 1024 * 2)});   // gather: read + write T x h
  const Duration norm = cm.time(NormOp{512, 1024, bf16, NormKind::kRmsNorm});
  const Duration attention = cm.time(GemmOp{512, (4 + 2 * 4) * 128, 1024, bf16})  // QKV, 4 of 8 heads per rank
                             + cm.time(GemmOp{512, 1024, 4 * 128, bf16})          // output projection
                             + cm.time(AttentionPrefillOp{1, 4, 4, 512, 512, 128, true, bf16});
  const Duration dense = cm.time(GemmOp{512, 2 * 2048, 1024, bf16})                // gate+up, 4096 / tp
                         + cm.time(ElementwiseOp{512 * 2048, bf16, 2, 1, 5.0})    // SwiGLU
                         + cm.time(GemmOp{512, 1024, 2048, bf16});                // down
  const Duration router_t = cm.time(RouterOp{256, 1024, 8, 2, bf16});              // the 256-token slice
  // Balanced routing of an EP group's 4 x 256 tokens: 2048 assignments, 256
  // per expert; each GPU holds 2 experts -> 256 + 256 tokens.
  const std::vector<std::int64_t> local{256, 256};
  const Duration experts = cm.time(GroupedGemmOp{local, 2 * 1024, 1024, bf16}) +
                           cm.time(ElementwiseOp{512 * 1024, bf16, 2, 1, 5.0}) +
                           cm.time(GroupedGemmOp{local, 1024, 1024, bf16});
  const Duration lm_head = cm.time(NormOp{1, 1024, bf16, NormKind::kRmsNorm}) +
                           cm.time(GemmOp{1, 128, 1024, bf16});  // one sampled token, vocab 256 / tp
  CHECK(builder.attention_time(BatchDescription::prefill(1, 512, 1, 1).replicas[0][0]) == attention);
  CHECK(builder.expert_time(local) == experts);

  // Collectives, closed forms on the analytical network (every transfer alone:
  // alpha + route latency + bytes / bottleneck, network.hpp):
  // ring all-reduce of S = 512 x 1024 x 2 B over a TP pair: 2(n-1) = 2 steps
  // of S/2 each, both ranks sending at once.
  const Bytes S(512 * 1024 * 2);
  const Duration ar = network->uncontended_time(0, 1, S / 2) * 2;
  // Balanced routing: token a of a source picks experts 2a mod 8 and
  // 2a+1 mod 8, both on EP rank a mod 4, so every source sends 64 tokens x 2
  // assignments to every other rank: 128 x 1024 x 2 B per pair, all pairs at
  // once (direct all-to-all) over NVLink.
  const Bytes pair(128 * 1024 * 2);
  const auto& group = mapping.ep_group_of(0);
  const Duration a2a = network->uncontended_time(group[0], group[1], pair);

  // Critical path (every GPU does the same work at the same time):
  //   embedding, TP all-reduce (vocab-parallel embedding)
  //   layer 0: norm, attention, AR, norm, dense FFN, AR
  //   layer 1: norm, attention, AR, norm, router, dispatch, experts, combine, AR
  //   LM head
  const Duration expected = embedding + ar + (norm + attention + ar + norm + dense + ar) +
                            (norm + attention + ar + norm + router_t + a2a + experts + a2a + ar) + lm_head;
  INFO("simulated " << ex.makespan().microseconds() << " us, hand calculation " << expected.microseconds()
                    << " us");
  CHECK(std::abs((ex.makespan() - expected).count_ps()) <= 1000);  // within 1 ns
}

TEST_CASE("same inputs and seed give the same timeline, a different seed a different one", "[plan][determinism]") {
  ModelSpec model = toy_moe(4);
  model.experts = 16;
  const Strategy s = folded(1, 2, 8, 8, 2);
  const auto a = run_on_network(model, s, routing(RoutingDistribution::kZipf, 1.0), 32, 256, NetworkModelKind::kFlow,
                                "dgx-h100", 2, 11);
  const auto b = run_on_network(model, s, routing(RoutingDistribution::kZipf, 1.0), 32, 256, NetworkModelKind::kFlow,
                                "dgx-h100", 2, 11);
  const auto c = run_on_network(model, s, routing(RoutingDistribution::kZipf, 1.0), 32, 256, NetworkModelKind::kFlow,
                                "dgx-h100", 2, 12);
  CHECK(a.makespan == b.makespan);
  CHECK(a.begins == b.begins);
  CHECK(a.ends == b.ends);
  CHECK(a.ends != c.ends);
}

namespace {

/// Every collective takes a fixed time.
class FixedTimeBackend : public CommunicationBackend {
 public:
  FixedTimeBackend(Simulator& sim, Duration t) : sim_(&sim), t_(t) {}
  void start(CollectiveRequest, Completion on_complete) override {
    sim_->schedule_in(t_, [t = t_, cb = std::move(on_complete)]() mutable { cb(CollectiveResult{t, 1}); });
  }

 private:
  Simulator* sim_;
  Duration t_;
};

}  // namespace

TEST_CASE("time breakdown classifies compute, all-to-all, exposed communication, bubble and idle",
          "[plan][breakdown]") {
  using namespace moesim::literals;
  using analysis::TimeKind;
  // Every collective takes 3 us. Timeline worked out by hand:
  //   GPU 0: c0 [0,10); dispatch [10,13); c2 [13,15); AR [15,18); send [18,21)
  //   GPU 1: c1 [0,4); reaches the dispatch at 4, waits for GPU 0 until 10;
  //          dispatch [10,13); reaches the AR at 13 (its only input is on
  //          GPU 0), waits until 15; AR [15,18)
  //   GPU 2: its receive is posted from the start (waiting for a micro-batch
  //          is bubble); recv [18,21); c3 [21,26)
  // The plan ends at 26; the window is closed at 30 (4 us idle for all).
  Simulator sim;
  FixedTimeBackend net(sim, 3_us);
  Plan plan(3);
  const OpId c0 = plan.add_compute(0, 10_us, OpLabel{OpCategory::kAttention, 0, 0, 0});
  const OpId c1 = plan.add_compute(1, 4_us, OpLabel{OpCategory::kAttention, 0, 0, 0});
  CollectiveRequest a2a;
  a2a.op = CollectiveOp::kAllToAll;
  a2a.group = {0, 1};
  const OpId d = plan.add_collective(std::move(a2a), OpLabel{OpCategory::kEpDispatch, 0, 0, 0}, {c0, c1});
  const OpId c2 = plan.add_compute(0, 2_us, OpLabel{OpCategory::kExpert, 0, 0, 0}, {d});
  CollectiveRequest ar;
  ar.op = CollectiveOp::kAllReduce;
  ar.group = {0, 1};
  const OpId a = plan.add_collective(std::move(ar), OpLabel{OpCategory::kTpAllReduce, 0, 0, 0}, {c2});
  const OpId s = plan.add_send_recv(0, 2, Bytes(1), OpLabel{OpCategory::kPpTransfer, 0, -1, 0}, std::vector<OpId>{a});
  plan.add_compute(2, 5_us, OpLabel{OpCategory::kAttention, 1, 1, 0}, {s});
  Executor ex(sim, net, std::move(plan));
  analysis::TimeBreakdown tb(3);
  tb.attach(ex);
  ex.run();
  CHECK(ex.finish_time() == Time::at(26_us));
  tb.close(Time::at(30_us));

  const auto& g0 = tb.gpu(0);
  CHECK(g0[TimeKind::kCompute] == 12_us);
  CHECK(g0[TimeKind::kAllToAll] == 3_us);
  CHECK(g0[TimeKind::kCommunicationExposed] == 6_us);  // AR + send
  CHECK(g0[TimeKind::kBubble] == 5_us);
  CHECK(g0[TimeKind::kIdle] == 4_us);
  CHECK(g0.collective_wait == 0_us);
  CHECK(g0.busy[static_cast<std::size_t>(OpCategory::kEpDispatch)] == 3_us);

  const auto& g1 = tb.gpu(1);
  CHECK(g1[TimeKind::kCompute] == 4_us);
  CHECK(g1[TimeKind::kAllToAll] == 9_us);               // 6 waiting + 3 moving
  CHECK(g1[TimeKind::kCommunicationExposed] == 5_us);   // 2 waiting + 3 moving
  CHECK(g1[TimeKind::kBubble] == 8_us);
  CHECK(g1[TimeKind::kIdle] == 4_us);
  CHECK(g1.collective_wait == 8_us);

  const auto& g2 = tb.gpu(2);
  CHECK(g2[TimeKind::kCompute] == 5_us);
  CHECK(g2[TimeKind::kCommunicationExposed] == 3_us);
  CHECK(g2[TimeKind::kBubble] == 18_us);
  CHECK(g2[TimeKind::kIdle] == 4_us);
  for (GpuId g = 0; g < 3; ++g) CHECK(tb.gpu(g).total() == 30_us);
}

namespace {

/// The options `moesim run` knows in batch mode (the application adds the
/// run-level ones the same way).
OptionRegistry batch_registry() {
  OptionRegistry r;
  register_topology_options(r);
  register_network_options(r);
  register_workload_model_options(r);
  register_batch_options(r);
  r.add({.name = "run.seed", .type = OptionType::kInt, .unit = "", .default_value = "1", .help = "seed",
         .min = 0, .max = 9.0e18, .choices = {}});
  r.add({.name = "run.run", .type = OptionType::kInt, .unit = "", .default_value = "0", .help = "run",
         .min = 0, .max = 1.0e9, .choices = {}});
  r.add({.name = "workload.kind", .type = OptionType::kChoice, .unit = "", .default_value = "batch",
         .help = "kind", .min = {}, .max = {}, .choices = {"batch", "serving"}});
  return r;
}

nlohmann::json run_json(const OptionRegistry& registry, const std::string& ini) {
  Config config(registry);
  config.load_ini_text(ini, "test.ini");
  nlohmann::json j = analysis::to_json(analysis::run_batch(config));
  j.erase("wall_s");  // the only field measured on the host, not simulated
  return j;
}

const char* kSmallScenario = R"(
[topology]
preset = dgx-h100
nodes = 2
[network]
model = flow
[model]
preset = qwen3-30b-a3b
layers = 4
[gpu]
preset = h100-sxm
[strategy]
tp = 2
pp = 2
ep = 4
microbatches = 2
[routing]
distribution = zipf
skew = 1.2
[workload]
batch = 16
prompt_tokens = 256
)";

}  // namespace

TEST_CASE("batch run: same scenario and seed give identical JSON, another seed does not", "[plan][determinism]") {
  const OptionRegistry registry = batch_registry();
  const nlohmann::json a = run_json(registry, std::string(kSmallScenario) + "[run]\nseed = 3\n");
  const nlohmann::json b = run_json(registry, std::string(kSmallScenario) + "[run]\nseed = 3\n");
  const nlohmann::json c = run_json(registry, std::string(kSmallScenario) + "[run]\nseed = 4\n");
  CHECK(a.dump() == b.dump());
  CHECK(a["latency_s"] != c["latency_s"]);
  // DESIGN.md's `run` keys are present.
  for (const char* key : {"seed", "gpus", "strategy", "latency_s", "throughput", "memory_per_gpu_bytes",
                          "time_breakdown", "bubble_fraction", "events"}) {
    CHECK(a.contains(key));
  }
  CHECK(a["seed"] == 3);
  CHECK(a["strategy"]["pp"] == 2);
  double sum = 0.0;
  for (const auto& [k, v] : a["time_breakdown"].items()) sum += v.get<double>();
  CHECK(sum == Approx(1.0));
  // 16 sequences x (256 prompt + 1 output) tokens over the iteration.
  CHECK(a["throughput"]["tokens_per_s"].get<double>() * a["latency_s"].get<double>() == Approx(16.0 * 257));
  CHECK(a["throughput"]["sequences_per_s"].get<double>() * a["latency_s"].get<double>() == Approx(16.0));
}

TEST_CASE("batch run: invalid strategies list every violation, memory over capacity shows the breakdown",
          "[plan][validation]") {
  const OptionRegistry registry = batch_registry();
  Config bad(registry);
  // 16 GPUs; tp 3 divides neither the heads nor the cluster, ep 5 not the experts.
  bad.load_ini_text(std::string(kSmallScenario) + "[strategy]\ntp = 3\nep = 5\ndp = 1\n", "bad.ini");
  try {
    (void)analysis::run_batch(bad);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    const std::string what = e.what();
    // Several violations in one message: TP against the heads, EP against the experts.
    CHECK(what.find("not divisible by TP (3)") != std::string::npos);
    CHECK(what.find("not divisible by EP (5)") != std::string::npos);
  }
  Config big(registry);
  // DeepSeek-V3 on 16 GPUs of 80 GB does not fit.
  big.load_ini_text("[topology]\npreset = dgx-h100\nnodes = 2\n[model]\npreset = deepseek-v3\n[gpu]\npreset = "
                    "h100-sxm\n[strategy]\ntp = 1\nep = 16\n",
                    "big.ini");
  try {
    (void)analysis::run_batch(big);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    const std::string what = e.what();
    CHECK(what.find("expert_weights") != std::string::npos);
    CHECK(what.find("capacity") != std::string::npos);
  }
}

TEST_CASE("batch run: the results file holds the summary, the per-GPU breakdown and the expert load",
          "[plan][results]") {
  const OptionRegistry registry = batch_registry();
  Config config(registry);
  config.load_ini_text(std::string(kSmallScenario) + "[run]\nseed = 3\n", "test.ini");
  const analysis::RunSummary summary = analysis::run_batch(config);
  moesim::test::TempDir dir;
  const auto path = dir.path() / "run.h5";
  analysis::write_results(path, summary, "[run]\nseed = 3\n", "moesim run test.ini -o run.h5");
  const analysis::Hdf5Reader h5(path);
  CHECK(h5.string_attribute("/", "kind") == "run");
  CHECK(h5.double_attribute("/summary", "latency_s") == Approx(summary.latency.seconds()));
  // One row per GPU used (16), and each row's five parts sum to the latency.
  const auto compute = std::get<std::vector<double>>(h5.read("/breakdown/compute_s"));
  const auto comm = std::get<std::vector<double>>(h5.read("/breakdown/communication_exposed_s"));
  const auto a2a = std::get<std::vector<double>>(h5.read("/breakdown/all_to_all_s"));
  const auto bubble = std::get<std::vector<double>>(h5.read("/breakdown/bubble_s"));
  const auto idle = std::get<std::vector<double>>(h5.read("/breakdown/idle_s"));
  REQUIRE(compute.size() == 16);
  for (std::size_t g = 0; g < compute.size(); ++g) {
    CHECK(compute[g] + comm[g] + a2a[g] + bubble[g] + idle[g] == Approx(summary.latency.seconds()));
  }
  // Expert load: 4 MoE layers x 128 experts (Qwen3-30B-A3B); 16 sequences x
  // 256 tokens x top-8 assignments per layer.
  REQUIRE(h5.shape("/experts/load") == std::vector<std::size_t>{4, 128});
  const auto load = std::get<std::vector<std::int64_t>>(h5.read("/experts/load"));
  std::int64_t first_layer = 0;
  for (std::size_t e = 0; e < 128; ++e) first_layer += load[e];
  CHECK(first_layer == 16 * 256 * 8);
  CHECK(h5.shape("/requests/ttft_s") == std::vector<std::size_t>{16});
}
