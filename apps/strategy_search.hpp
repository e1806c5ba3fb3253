#pragma once
// Strategy search (`moesim sweep SCENARIO --search strategies`) and the
// simulation adaptor `moesim verify` uses for performance claims.
//
// ## What the search enumerates
// Every plan that uses ALL the cluster's GPUs, under both world-size
// conventions (DESIGN.md):
//   tp   divides the cluster, the heads and the hidden size (validate() has
//        the final word: KV heads, dense/shared FFN widths);
//   pp   divides the layers (even split) and the cluster / tp;
//   ep   divides the experts; folded: ep x etp divides TP x DP, orthogonal:
//        tp x pp x ep divides the cluster (DP fills the rest);
//   etp  divides tp (ETP <= TP, Megatron-Core's practice) and the expert FFN;
//   microbatches (batch mode only; serving runs one micro-batch per
//        iteration): pp = 1 -> {1}; else {pp, 2 pp, 4 pp} capped by the
//        sequences of a replica.
// Each candidate is validated (workloads/memory_model.hpp validate(): every
// structural constraint and the memory against the capacity); invalid ones
// are counted, not simulated.
//
// ## How each plan is evaluated (two passes)
// 1. Screening, every valid plan: the plan's iteration(s) simulated on ONE
//    engine (the lock-step group of replicas an EP group spans, see
//    workloads/iteration_timer.hpp) with the ANALYTICAL network (no
//    contention; engines are translations of one another, so with no
//    contention one engine's time is the cluster's) and `balanced` routing
//    (every expert gets its exact share: no per-token sampling, which cost
//    O(tokens x top_k x layers) per plan); the iteration is timed for models
//    of 1 and 2 layers per stage and extrapolated to the real layer count
//    (exactly affine under those conditions; SearchOptions::
//    extrapolate_layers). Batch mode: the prefill
//    iteration of the scenario's batch share of that engine; throughput =
//    batch tokens / latency. Serving: a prefill iteration (one chunk of
//    scheduler.max_batched_tokens per replica) and a decode iteration
//    (scheduler.max_seqs sequences per replica at the mean context) give a
//    capacity estimate (requests/s) and a TTFT estimate at the scenario's
//    rate (see strategy_search.cpp, screening_estimate()).
// 2. Final: the top plans by screening score (SearchOptions::final_plans) and
//    the scenario's own plan are simulated with the full model and the
//    scenario's routing (run_batch, or the serving simulator at the
//    scenario's rate), and rank before the screened-only plans. The
//    screening score of the others is reported as such.
// Ranking: plans meeting the SLO first (serving: at the scenario's arrival
// rate, SLO attainment >= slo.attainment in the final pass, the screening
// estimate of TTFT and TPOT against slo.ttft / slo.tpot otherwise; batch:
// the iteration latency against slo.ttft when the scenario sets it); among
// them the highest throughput under the scenario's workload: batch, the
// batch's tokens / latency; serving, tokens/s at the scenario's rate (every
// plan that keeps up with the offered load serves about the same, so plans
// within 1 % of the top are ordered by TTFT (serving) or latency (batch)).
// The Pareto front is over (throughput up, TTFT/latency down).
//
// ## Determinism and threads
// Each plan is simulated independently with its own Simulator, network and
// router, seeded by the scenario's seed; the work is spread over a
// std::thread pool by an atomic counter and every result lands in its
// plan's slot, so the result does not depend on the thread count.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/claims.hpp"
#include "sim/options.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

/// Simulates `config` with its own workload (batch: analysis::run_batch;
/// serving: the serving simulator) and extracts what performance claims need.
/// Throws InputError for bad input or an invalid plan.
PerformanceMetrics simulate_performance(const Config& config, const std::string& statistic);

struct SearchOptions {
  /// Worker threads; 0 = std::thread::hardware_concurrency().
  unsigned threads = 0;
  /// Plans re-simulated at full fidelity in the final pass (besides the
  /// scenario's own plan). 0 = none: rank by the screening pass only.
  std::size_t final_plans = 8;
  /// Rows of the top table.
  std::size_t top = 10;
  /// Conventions to enumerate.
  bool folded = true;
  bool orthogonal = true;
  /// Screening network model: "analytical" (default; see above) or "flow".
  std::string screening_network = "analytical";
  /// Network of the final pass: "scenario" (network.model of the scenario,
  /// default, also for verify's best_plan) or "analytical" (faster: no
  /// contention; about 0.8 s vs 1 s per 512-GPU plan).
  std::string final_network = "scenario";
  /// Screening: time models of 1 and 2 layers per stage and extrapolate
  /// (affine in the layers per stage; see strategy_search.cpp), instead of
  /// simulating every layer. Applies with the analytical network, no dense
  /// layers and more than 2 layers per stage.
  bool extrapolate_layers = true;
  /// Called from worker threads with (plans done, plans to do); must be
  /// thread-safe. Used for the progress bar.
  std::function<void(std::size_t done, std::size_t total)> progress;
};

/// One evaluated plan.
struct SearchRow {
  Strategy strategy;
  std::string description;      // Strategy::describe()
  bool valid = false;
  std::string invalid_reason;   // first violation, when not valid
  // Screening pass.
  double screen_tokens_per_s = 0.0;
  double screen_ttft_s = 0.0;   // serving: TTFT estimate at the scenario's rate; batch: iteration latency
  bool screen_meets_slo = false;
  // Final pass (when simulated at full fidelity).
  bool final_simulated = false;
  /// The ranking figure (final when simulated, else screening): batch, the
  /// batch's tokens / iteration latency; serving, total tokens/s at the
  /// scenario's arrival rate.
  double tokens_per_s = 0.0;
  /// Serving, screening: the estimated saturation throughput (headroom), for
  /// information; 0 in batch mode.
  double capacity_tokens_per_s = 0.0;
  double ttft_s = 0.0;          // serving: TTFT (statistic) at the scenario's rate; batch: iteration latency
  double tpot_s = 0.0;          // serving only
  double sequences_per_s = 0.0;
  bool meets_slo = false;
  bool is_scenario_plan = false;
  bool pareto = false;
  std::int64_t rank = 0;        // 1 = best; 0 = unranked (invalid)
};

struct SearchResult {
  std::string mode;              // "batch" | "serving"
  std::int64_t cluster_gpus = 0;
  std::string model;
  std::string slo;               // the SLO used, in words
  std::string fidelity;          // what the screening and final passes were
  std::vector<SearchRow> rows;   // every candidate, ranked ones first (by rank), then invalid ones
  std::size_t candidates = 0;
  std::size_t valid = 0;
  std::size_t simulated_final = 0;
  std::size_t internal_errors = 0;  // plans whose evaluation hit a bug (reported, not thrown)
  unsigned threads = 1;
  double wall_s = 0.0;
  double screen_wall_s = 0.0;    // the screening pass (every valid plan)
  double final_wall_s = 0.0;     // the final pass
  /// Index in `rows` of the scenario's own plan (nullopt when it is not one
  /// of the enumerated plans, e.g. it does not use every GPU).
  std::optional<std::size_t> scenario_plan;

  [[nodiscard]] const SearchRow* best() const;
};

/// A progress bar on stderr for SearchOptions::progress ("search: [#####    ]
/// 340/840 plans"), redrawn when the percentage changes; thread-safe.
std::function<void(std::size_t done, std::size_t total)> stderr_progress_bar(const std::string& label = "search");

/// Enumerates, screens, re-simulates and ranks (see the file comment).
/// Throws InputError for a bad scenario (model, topology, workload).
SearchResult run_strategy_search(const Config& base, const SearchOptions& options = {});

/// The table: top plans, the Pareto front, the scenario's plan and its gap to
/// the best.
std::string format_search_result(const SearchResult& result);
/// `--json`: {mode, cluster_gpus, candidates, valid, wall_s, threads,
/// fidelity, slo, best, scenario_plan, top [...], pareto [...], rows [...]}.
nlohmann::json search_result_json(const SearchResult& result);
/// Writes the /search table (one row per valid plan) into an HDF5 results
/// file with provenance (kind "search").
void write_search_results(const std::filesystem::path& path, const SearchResult& result, const Config& config,
                          const std::string& command);

/// The answer to a best_plan claim (for verify_claims' SearchFn).
BestPlanAnswer best_plan_answer(const Config& config);

}  // namespace moesim
