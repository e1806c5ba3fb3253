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

#include "bench_clock.hpp"
#include "analysis/serving_run.hpp"
#include "apps/commands.hpp"
#include "sim/compute_model.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/workload_options.hpp"

using namespace moesim;

namespace {

using moesim::bench::thread_cpu_seconds;

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
      const std::int64_t every = std::max<std::int64_t>(1, s.iterations / check);
      const analysis::CacheCheck c = analysis::check_iteration_cache(config, every, every / 2);
      std::printf("\ncache check             %zu iterations of this run, cached vs exact full plan: mean |error| "
                  "%.2f %%, mean error %+.2f %%, worst %.2f %%\n",
                  c.iterations, 100.0 * c.mean_abs_error, 100.0 * c.mean_error, 100.0 * c.worst_error);
      if (c.iterations > 0) {
        // The worst iteration's batch: per replica, new tokens (prefill + decode) and sequences.
        std::printf("                        worst: cached %.3f ms vs exact %.3f ms; replicas (new tokens/sequences):",
                    c.worst_cached_s * 1e3, c.worst_exact_s * 1e3);
        for (const auto& replica : c.worst_batch.replicas) {
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
