#pragma once
// Serving mode of `moesim run` (workload.kind = serving, the default) and the
// unit of `moesim sweep`: assembles the scenario (topology, network model,
// model, GPU, strategy, routing, KV capacity from the memory model, request
// stream), runs the serving simulation (workloads/serving_sim.hpp) and
// summarises it (analysis/serving_metrics.hpp). docs/serving.md.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/chrome_trace.hpp"
#include "analysis/run_report.hpp"
#include "analysis/serving_metrics.hpp"
#include "sim/options.hpp"
#include "workloads/iteration_timer.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/serving_options.hpp"
#include "workloads/serving_sim.hpp"
#include "workloads/strategy.hpp"

namespace moesim::analysis {

struct ServingRun : RunContext {

  ServingOptions options;
  KvCapacity kv;                  // from the memory model
  bool kv_overridden = false;     // scheduler.kv_blocks set
  MemoryReport memory;            // with the KV cache at its capacity

  ServingResult result;
  ServingSummary summary;
  PlanTimerStats timer;
  std::size_t cached_shapes = 0;
  double wall_s = 0.0;
};

/// Runs the serving workload of `config`. Throws InputError for bad input
/// (invalid strategy with every violation, no memory left for the KV cache,
/// a request that can never fit, bad option values).
ServingRun run_serving(const Config& config);

/// The `run` JSON document of a serving run (DESIGN.md keys: seed, gpus,
/// strategy, throughput {tokens_per_s, output_tokens_per_s, sequences_per_s},
/// ttft_s and tpot_s {mean, p50, p90, p99}, memory_per_gpu_bytes, events,
/// wall_s; plus requests_per_s, goodput, input_tokens_per_s, e2e_s, queue_s,
/// kv_cache, scheduler, iteration_cache, ...).
nlohmann::json to_json(const ServingRun& run);

/// The human-readable report (throughput and TTFT first).
std::string format_serving_report(const ServingRun& run);

/// The serving timeline as a Chrome trace: one process per engine with its
/// iterations (sequences, tokens, preemptions in the details), and a counter
/// of the requests waiting and running over the whole cluster.
void fill_serving_trace(ChromeTrace& trace, const ServingRun& run);

/// Results file (docs/results-format.md): provenance, /summary (the JSON's
/// leaves), /requests (one row per request) and /iterations (one row per
/// engine iteration).
void write_serving_results(const std::filesystem::path& path, const ServingRun& run,
                           const std::string& scenario_ini, const std::string& command);

/// The iteration cache against exact plans (docs/serving.md, "Error of the
/// acceleration"): runs the serving simulation of `config` with a fresh
/// PlanTimer, keeps the engine batches of the iterations i with
/// i % every == phase, and times each with the cache and as the exact full
/// plan. Errors are cached / exact - 1.
struct CacheCheck {
  std::size_t iterations = 0;        // batches compared
  double mean_abs_error = 0.0;
  double mean_error = 0.0;
  double worst_error = 0.0;          // largest |error|
  double worst_cached_s = 0.0;       // that iteration's two times
  double worst_exact_s = 0.0;
  EngineBatch worst_batch;
  bool engine_local = false;         // a cache miss simulates one engine only
};
CacheCheck check_iteration_cache(const Config& config, std::int64_t every, std::int64_t phase);

}  // namespace moesim::analysis
