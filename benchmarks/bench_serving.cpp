// Benchmark: a serving run of 10,000 Poisson requests on the built-in default
// scenario, i.e. 64 GPUs (16 nodes x 4 A100-64GB, Leonardo-like, rail-
// optimized), Mixtral-8x7B under TP2 EP8 DP32 (folded: 32 attention
// replicas in 8 lock-step engines of 4), flow-level network, continuous
// batching with the iteration-time cache (docs/serving.md). Target: <= 10 s
// wall (Release).
//
// Prints the wall time, the CPU time of this thread, simulated requests and
// iterations per wall second, where the time went (plans simulated on cache
// misses vs the rest), the simulated serving figures, and, as a check of the
// acceleration on this very scenario, cached against exact (full-plan)
// iteration times on a sample of the run's iterations.
//
// Usage: bench_serving [--requests=10000] [--rate=40] [--check=24]
//                      [--SECTION.KEY=VALUE ...]   (any scenario option)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "analysis/serving_run.hpp"
#include "apps/commands.hpp"
#include "sim/compute_model.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/workload_options.hpp"

using namespace moesim;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Keeps every k-th engine batch on its way to the timer.
class Recorder final : public IterationTimer {
 public:
  Recorder(PlanTimer& inner, std::int64_t every) : inner_(&inner), every_(every) {}
  IterationTiming time(std::int32_t engine, const EngineBatch& batch, std::int64_t iteration) override {
    if (every_ > 0 && iteration % every_ == every_ / 2) seen.emplace_back(engine, batch);
    return inner_->time(engine, batch, iteration);
  }
  std::vector<std::pair<std::int32_t, EngineBatch>> seen;

 private:
  PlanTimer* inner_;
  std::int64_t every_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string requests = "10000";
  std::string rate = "40";
  int check = 24;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "usage: bench_serving [--requests=N] [--rate=R] [--check=N] [--section.key=value ...]\n");
      return 2;
    }
    const std::string key = a.substr(2, eq - 2);
    const std::string value = a.substr(eq + 1);
    if (key == "requests") requests = value;
    else if (key == "rate") rate = value;
    else if (key == "check") check = std::atoi(value.c_str());
    else overrides.emplace_back(key, value);
  }
  overrides.emplace_back("workload.kind", "serving");
  overrides.emplace_back("workload.arrival", "poisson");
  overrides.emplace_back("workload.requests", requests);
  overrides.emplace_back("workload.rate", rate);

  try {
    const Config config = cli::make_config(std::nullopt, overrides);

    // 1. The run, timed: exactly what `moesim run` does.
    const double cpu0 = thread_cpu_seconds();
    const analysis::ServingRun run = analysis::run_serving(config);
    const double cpu = thread_cpu_seconds() - cpu0;
    const auto& s = run.summary;
    std::printf("bench_serving: %lld Poisson requests at %s/s on %lld GPUs (%s), %s\n",
                static_cast<long long>(s.total_requests), rate.c_str(), static_cast<long long>(run.gpus),
                run.strategy.describe().c_str(), run.network.c_str());
    std::printf("  %d replicas in %d engines; model %s\n\n", s.replicas, s.engines, run.model.c_str());
    std::printf("wall time               %.3f s   (target <= 10 s)   [CPU of this thread %.3f s]\n", run.wall_s, cpu);
    std::printf("simulated requests/s    %.0f per wall second (%.1f s simulated)\n",
                static_cast<double>(s.total_requests) / run.wall_s, s.makespan_s);
    std::printf("engine iterations       %lld (%.0f per wall second), %llu serving events\n",
                static_cast<long long>(s.iterations), static_cast<double>(s.iterations) / run.wall_s,
                static_cast<unsigned long long>(run.result.events));
    std::printf("iteration-time cache    %lld plans simulated for %lld iterations (%.1f %% misses), %lld ops; "
                "%.3f s in plan simulation, %.3f s elsewhere\n",
                static_cast<long long>(run.timer.simulated), static_cast<long long>(run.timer.lookups),
                100.0 * static_cast<double>(run.timer.simulated) / static_cast<double>(std::max<std::int64_t>(1, run.timer.lookups)),
                static_cast<long long>(run.timer.simulated_ops), run.timer.simulate_wall_s,
                run.wall_s - run.timer.simulate_wall_s);
    std::printf("\nsimulated serving       %.0f output tokens/s, %.0f tokens/s, %.2f requests/s, goodput %.2f\n",
                s.output_tokens_per_s, s.tokens_per_s, s.requests_per_s, s.goodput);
    std::printf("                        TTFT p50 %.1f ms p99 %.1f ms; TPOT p50 %.2f ms p99 %.2f ms; "
                "mean batch %.1f sequences\n",
                s.ttft.p50 * 1e3, s.ttft.p99 * 1e3, s.tpot.p50 * 1e3, s.tpot.p99 * 1e3, s.mean_batch_sequences);
    std::printf("                        Little's law: L = %.2f, lambda W = %.2f (%+.2f %%)\n", s.mean_in_system,
                s.offered_rate * s.mean_time_in_system_s,
                100.0 * (s.offered_rate * s.mean_time_in_system_s / s.mean_in_system - 1.0));

    // 2. The acceleration on this scenario: cached vs exact iteration times
    //    (separate, untimed: the exact plans are what the cache avoids).
    if (check > 0) {
      const Topology topology = topology_from_config(config);
      const ModelSpec model = model_from_config(config);
      const GpuSpec gpu = gpu_from_config(config);
      const Strategy strategy = strategy_from_config(config, topology.gpu_count());
      const ServingOptions so = serving_options_from_config(config);
      const RandomStreams streams(static_cast<std::uint64_t>(config.get_int("run.seed")),
                                  static_cast<std::uint64_t>(config.get_int("run.run")));
      const RankMapping mapping(model, strategy);
      const ComputeModel compute(gpu);
      const NetworkParams net = network_params_from_config(config, topology);
      const EngineLayout layout = engine_layout(mapping);
      PlanTimer timer(model, mapping, compute, routing_from_config(config), streams, topology, net, layout,
                      PlanTimerOptions{so.shape_buckets, so.sample_layers});
      Recorder rec(timer, std::max<std::int64_t>(1, s.iterations / check));
      Simulator sim;
      SchedulerConfig sched = so.scheduler;
      sched.kv_blocks = run.options.scheduler.kv_blocks;
      ServingSimulator again(sim, generate_requests(so.stream, streams), layout, strategy.pp, sched, so.router, rec);
      (void)again.run();
      double sum = 0.0;
      double worst = 0.0;
      double bias = 0.0;
      std::size_t worst_i = 0;
      double worst_c = 0.0;
      double worst_x = 0.0;
      for (std::size_t i = 0; i < rec.seen.size(); ++i) {
        const auto& [engine, batch] = rec.seen[i];
        const double c = timer.time(engine, batch, 0).latency.seconds();
        const double x = timer.simulate_exact(engine, batch, static_cast<std::int64_t>(i) + 1).latency.seconds();
        const double e = c / x - 1.0;
        sum += std::fabs(e);
        bias += e;
        if (std::fabs(e) > worst) {
          worst_i = i;
          worst_c = c;
          worst_x = x;
        }
        worst = std::max(worst, std::fabs(e));
      }
      const double n = static_cast<double>(std::max<std::size_t>(1, rec.seen.size()));
      std::printf("\ncache check             %zu iterations of this run, cached vs exact full plan: mean |error| "
                  "%.2f %%, mean error %+.2f %%, worst %.2f %%\n",
                  rec.seen.size(), 100.0 * sum / n, 100.0 * bias / n, 100.0 * worst);
      if (!rec.seen.empty()) {
        // The worst iteration's batch: per replica, new tokens (prefill + decode) and sequences.
        std::printf("                        worst: cached %.3f ms vs exact %.3f ms; replicas (new tokens/sequences):",
                    worst_c * 1e3, worst_x * 1e3);
        for (const auto& replica : rec.seen[worst_i].second.replicas) {
          std::int64_t tokens = 0;
          for (const SequenceChunk& chunk : replica) tokens += chunk.new_tokens;
          std::printf(" %lld/%zu", static_cast<long long>(tokens), replica.size());
        }
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serving: %s\n", e.what());
    return 2;
  }
  return 0;
}
