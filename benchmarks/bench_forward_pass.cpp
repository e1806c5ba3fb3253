// Benchmark: one prefill forward pass of DeepSeek-V3 (61 layers, 256 routed
// experts + 1 shared, top-8, MLA) under EP 64 on an HGX H800 cluster (8 GPUs
// per node, 400 Gb/s rail-optimized NICs), flow-level network, Zipf-skewed
// routing (s = 1.0). Prints the wall time of building the plan (routing
// included) and of simulating it, and events/s; target: <= 1 s on 256 GPUs.
//
// Strategies (folded convention, tp 1, etp 1), weak scaling at a fixed
// per-GPU load of 256 tokens per micro-batch (one 256-token sequence per
// attention replica and micro-batch, so an EP group of 64 routes 16,384
// tokens per layer and micro-batch):
//     64 GPUs:  pp 1, dp 64,  ep 64, 4 micro-batches  (one EP group)
//    256 GPUs:  pp 4, dp 64,  ep 64, 4 micro-batches  (layers 16/15/15/15)
//   1024 GPUs:  pp 4, dp 256, ep 64, 4 micro-batches  (4 EP groups per stage)
//
// Usage: bench_forward_pass [--gpus=64,256,1024] [--network=flow|analytical]
//                           [--skew=1.0] [--a2a=two_hop] [--sharing=coflow|per_transfer]
//                           [--layers=N] [--build-only]
// (--layers=N cuts the model to N layers, the first 3 dense, for quick looks;
// the layer split of 256 and 1,024 GPUs then becomes even, which needs N % 4 == 0.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/time_breakdown.hpp"
#include "sim/compute_model.hpp"
#include "sim/executor.hpp"
#include "sim/simulator.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/presets.hpp"
#include "workloads/gpu_presets.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/plan_builder.hpp"
#include "workloads/routing.hpp"
#include "workloads/strategy.hpp"

using namespace moesim;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Case {
  int gpus;
  std::int64_t pp;
  std::int64_t dp;
  std::vector<std::int64_t> layers_per_stage;
};

struct Settings {
  NetworkModelKind network = NetworkModelKind::kFlow;
  double skew = 1.0;
  bool build_only = false;
  CollectiveAlgorithm a2a = CollectiveAlgorithm::kAuto;
  AllToAllSharing sharing = AllToAllSharing::kCoflow;
  int layers = 0;  // 0 = the preset's 61
};

void run_case(const Case& c, const Settings& settings) {
  ModelSpec model = model_preset("deepseek-v3");
  if (settings.layers > 0) model.layers = settings.layers;
  Strategy s;
  s.tp = 1;
  s.pp = c.pp;
  s.dp = c.dp;
  s.ep = 64;
  s.etp = 1;
  s.microbatches = 4;
  s.convention = Convention::kFolded;
  if (settings.layers == 0) s.layers_per_stage = c.layers_per_stage;

  const auto t_setup = Clock::now();
  const Topology topo = make_topology_preset("hgx-h800", c.gpus / 8);
  const RankMapping mapping(model, s);
  const ComputeModel compute(gpu_preset("h800"));
  RoutingConfig rc;
  rc.distribution = RoutingDistribution::kZipf;
  rc.skew = settings.skew;
  const ExpertRouter router(rc, model, RandomStreams(42));
  PlanBuilder builder(model, mapping, compute, router, PlanBuilderOptions{topo.gpu_count(), CollectiveAlgorithm::kAuto, settings.a2a});
  const std::int64_t replicas = mapping.attention_dp();
  const auto batch = BatchDescription::prefill(replicas * s.microbatches, 256, replicas, s.microbatches);
  const double setup_s = seconds_since(t_setup);

  const auto t_build = Clock::now();
  BuiltPlan built = builder.build(batch);
  const double build_s = seconds_since(t_build);
  const std::size_t ops = built.plan.size();
  const std::size_t collectives = built.plan.collective_count();
  if (settings.build_only) {
    std::printf("%5d GPUs: %zu ops, %zu collectives | wall: setup %.3f s, build %.3f s\n", c.gpus, ops, collectives,
                setup_s, build_s);
    return;
  }

  const auto t_sim = Clock::now();
  Simulator sim;
  NetworkParams params = default_network_params(topo, settings.network);
  params.alltoall_sharing = settings.sharing;
  auto network = make_network(params, sim, topo);
  CollectiveEngine engine(sim, *network);
  Executor ex(sim, engine, std::move(built.plan));
  analysis::TimeBreakdown tb(topo.gpu_count());
  tb.attach(ex);
  ex.run();
  tb.close(ex.finish_time());
  const double sim_s = seconds_since(t_sim);

  std::vector<GpuId> gpus;
  for (GpuId g = 0; g < static_cast<GpuId>(mapping.world_size()); ++g) gpus.push_back(g);
  const double total = setup_s + build_s + sim_s;
  const auto events = sim.events_executed();
  std::printf(
      "%5d GPUs (pp %lld, dp %lld, ep 64): %8zu ops, %6zu collectives, %9llu transfers, %9llu events | "
      "wall: build %.3f s + simulate %.3f s = %.3f s | %.2f M events/s | simulated latency %.3f ms, "
      "bubble %.1f %%, all-to-all %.1f %%, expert imbalance %.2f\n",
      c.gpus, static_cast<long long>(c.pp), static_cast<long long>(c.dp), ops, collectives,
      static_cast<unsigned long long>(network->stats().transfers_delivered), static_cast<unsigned long long>(events),
      setup_s + build_s, sim_s, total, static_cast<double>(events) / sim_s * 1e-6, ex.makespan().seconds() * 1e3,
      100.0 * tb.stats(analysis::TimeKind::kBubble, gpus).mean,
      100.0 * tb.stats(analysis::TimeKind::kAllToAll, gpus).mean, built.expert_load.mean_imbalance());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  std::vector<int> sizes{64, 256, 1024};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--gpus=", 0) == 0) {
      sizes.clear();
      std::stringstream list(a.substr(7));
      std::string one;
      while (std::getline(list, one, ',')) sizes.push_back(std::atoi(one.c_str()));
    } else if (a == "--network=analytical") {
      settings.network = NetworkModelKind::kAnalytical;
    } else if (a == "--network=flow") {
      settings.network = NetworkModelKind::kFlow;
    } else if (a.rfind("--skew=", 0) == 0) {
      settings.skew = std::atof(a.c_str() + 7);
    } else if (a == "--a2a=two_hop") {
      settings.a2a = CollectiveAlgorithm::kTwoHop;
    } else if (a == "--sharing=per_transfer") {
      settings.sharing = AllToAllSharing::kPerTransfer;
    } else if (a == "--sharing=coflow") {
      settings.sharing = AllToAllSharing::kCoflow;
    } else if (a.rfind("--layers=", 0) == 0) {
      settings.layers = std::atoi(a.c_str() + 9);
    } else if (a == "--build-only") {
      settings.build_only = true;
    } else {
      std::fprintf(stderr, "usage: bench_forward_pass [--gpus=64,256,1024] [--network=flow|analytical] "
                           "[--skew=1.0] [--a2a=two_hop] [--sharing=coflow|per_transfer] [--layers=N] [--build-only]\n");
      return 2;
    }
  }
  std::printf("bench_forward_pass: DeepSeek-V3 prefill, EP 64, HGX H800, %s network (all-to-all sharing %s), "
              "zipf(%.2f) routing, 256 tokens per GPU per micro-batch, 4 micro-batches\n",
              std::string(to_string(settings.network)).c_str(), std::string(to_string(settings.sharing)).c_str(),
              settings.skew);
  const std::vector<std::int64_t> four_stages{16, 15, 15, 15};
  for (int n : sizes) {
    if (n == 64) {
      run_case({64, 1, 64, {}}, settings);
    } else if (n == 256) {
      run_case({256, 4, 64, four_stages}, settings);
    } else if (n == 1024) {
      run_case({1024, 4, 256, four_stages}, settings);
    } else {
      std::fprintf(stderr, "bench_forward_pass: sizes are 64, 256 and 1024 GPUs\n");
      return 2;
    }
  }
  return 0;
}
