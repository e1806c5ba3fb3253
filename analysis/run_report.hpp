#pragma once
// Batch mode (`moesim run` with workload.kind = batch): one iteration of
// workload.batch sequences of workload.prompt_tokens (prefill) on the
// scenario's cluster, model and strategy; and its summary, as text, as the
// `run` JSON document of DESIGN.md and as an HDF5 results file.
//
// run_batch() assembles the scenario (topology, network + collective engine,
// model, GPU, strategy, routing), validates it (every violation at once, the
// memory breakdown against the capacity: InputError), builds the plan of the
// iteration (workloads/plan_builder), runs it on the executor and measures it
// (analysis/time_breakdown). The serving mode reuses the pieces, not this
// function.

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/chrome_trace.hpp"
#include "analysis/hdf5_writer.hpp"
#include "analysis/time_breakdown.hpp"
#include "sim/options.hpp"
#include "sim/gpu_spec.hpp"
#include "sim/units.hpp"
#include "topology/network.hpp"
#include "topology/topology.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/plan_builder.hpp"
#include "workloads/strategy.hpp"

namespace moesim::analysis {

/// min / mean / max of each part of the time breakdown over a set of GPUs.
struct BreakdownStats {
  std::array<FractionStats, kTimeKindCount> parts{};
  [[nodiscard]] const FractionStats& operator[](TimeKind k) const { return parts[static_cast<std::size_t>(k)]; }
};

struct StageSummary {
  std::int64_t stage = 0;
  std::int64_t layers = 0;
  std::vector<GpuId> gpus;
  BreakdownStats breakdown;
};

/// One row of the link table (links that carried traffic).
struct LinkSummary {
  std::int64_t link = 0;
  std::string name;
  std::string link_class;
  std::string src;
  std::string dst;
  double bytes = 0.0;
  double busy_s = 0.0;
  double utilisation = 0.0;  // busy / latency of the iteration
};

/// The scenario a run report describes, shared by batch (RunSummary) and
/// serving (ServingRun) runs.
struct RunContext {
  std::uint64_t seed = 0;
  std::uint64_t run = 0;       // run.run: the replication number
  std::int64_t gpus = 0;       // in the cluster
  std::int64_t gpus_used = 0;  // by the strategy (its world size)
  Strategy strategy;
  std::string model;
  std::string gpu;
  std::string topology;
  std::string network;          // "flow" / "analytical" and its calibration
  std::vector<std::string> notes;  // validation notes (unused GPUs, conventions, ...)
};

/// The context of a validated scenario (seed and run from `config`).
RunContext run_context(const Config& config, const Topology& topology, const ModelSpec& model, const GpuSpec& gpu,
                       const Strategy& strategy, const ValidationResult& validation, const NetworkParams& network);

struct RunSummary : RunContext {

  std::int64_t sequences = 0;
  std::int64_t prompt_tokens = 0;  // per sequence
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;  // one first token per sequence
  Duration latency{};              // the iteration: first op to last op
  double tokens_per_s = 0.0;       // (input + output) / latency
  double output_tokens_per_s = 0.0;
  double sequences_per_s = 0.0;
  /// Per sequence: when its first token was produced (end of its micro-batch's
  /// LM head), from the start of the iteration.
  std::vector<double> first_token_s;

  MemoryReport memory;

  BreakdownStats breakdown;            // over the GPUs used
  std::vector<StageSummary> stages;
  std::vector<GpuTime> per_gpu;        // index = GPU (used GPUs only)
  double bubble_fraction = 0.0;        // mean bubble fraction over the GPUs used
  double collective_wait_fraction = 0.0;  // mean share of time waiting at a rendezvous
  /// Mean over the GPUs used of the time each op category was running, s.
  std::array<double, kOpCategoryCount> busy_s{};

  ExpertLoad expert_load;
  double worst_rank_imbalance = 0.0;

  std::vector<LinkSummary> links;
  std::uint64_t ops = 0;
  std::uint64_t collectives = 0;
  std::uint64_t transfers = 0;
  std::uint64_t events = 0;
  double wall_s = 0.0;
};

struct BatchRunOptions {
  /// When set, receives one complete event per op and lane (GPU processes,
  /// stream threads).
  ChromeTrace* trace = nullptr;
};

/// Runs the batch-mode iteration of `config`. Throws InputError for any bad
/// input (invalid strategy listing every violation, memory over capacity with
/// the breakdown, bad option values).
RunSummary run_batch(const Config& config, const BatchRunOptions& options = {});

/// The `run` JSON document (DESIGN.md keys, plus detail).
/// The `strategy` object of the run/serving JSON (DESIGN.md keys plus derived degrees).
nlohmann::json strategy_json(const Strategy& strategy);
/// The keys every run document starts with: mode ("batch" / "serving"), seed,
/// gpus, gpus_used, model, gpu, topology, network, notes, strategy.
nlohmann::json context_json(const RunContext& context, std::string_view mode);
/// Opens a results file with the provenance of a run and its /summary (the
/// JSON's leaves); the caller adds its tables and commits.
Hdf5Writer open_run_results(const std::filesystem::path& path, std::uint64_t seed, const std::string& scenario_ini,
                            const std::string& command, const nlohmann::json& summary);
nlohmann::json to_json(const RunSummary& summary);
/// The human-readable report.
std::string format_report(const RunSummary& summary);

/// Writes the results file (docs/results-format.md): provenance, /summary
/// (the JSON's leaves), /breakdown, /links, /requests (one row per sequence),
/// /experts/load and /experts/imbalance.
void write_results(const std::filesystem::path& path, const RunSummary& summary, const std::string& scenario_ini,
                   const std::string& command);

}  // namespace moesim::analysis
