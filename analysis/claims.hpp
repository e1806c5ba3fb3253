#pragma once
// Claims of a deployment document and their verdicts (`moesim verify`).
//
// A scenario's [claims] section holds what a document says about its plan,
// each figure under a key that names the quantity and its unit
// (`claims.gpus = 512`, `claims.throughput_tokens_per_ms = 120`,
// `claims.memory_expert_weights = 0.62GB`), with an optional tolerance
// (`claims.tolerance = 5%` for every memory and performance claim, or
// `claims.<name>_tolerance = 10%` / an absolute amount in the claim's unit).
// Two more slots exist per quantity: `claims.<kind>_review` (another
// document's figure for the same plan, e.g. a correction saying "requires
// 2048 GPUs") and, for performance quantities, `claims.<kind>_target` (a
// requirement the document says the plan meets, e.g. "TTFT 8.5 s (meets the
// 10 s requirement)"). The [assumptions] section records which scenario
// inputs the document states and which the scenario had to assume.
//
// Verdicts (docs/verify.md has the definitions):
//  * arithmetic claims (GPU count, experts per GPU, ...) are derived from the
//    plan's numbers alone, so an impossible plan still gets them; the GPU
//    count is computed under BOTH world-size conventions (DESIGN.md) and
//    judged under the scenario's own (strategy.convention);
//  * memory claims come from the memory model (workloads/memory_model.hpp),
//    the largest pipeline stage's GPU;
//  * performance claims come from a simulation supplied by the caller (a
//    PerformanceFn: the batch executor or the serving simulator), and are
//    "unchecked" with the reason when the plan is invalid or no simulator is
//    given; each performance verdict carries a sensitivity analysis: which
//    ASSUMED input, varied over a stated range, flips it.
//  * best_plan ("this strategy is optimal") is checked by a strategy search
//    supplied by the caller (a SearchFn).
//
// Comparison: "equal" claims hold when |value - claimed| <= tolerance;
// "at least" claims (throughput, utilisation) when value >= claimed -
// tolerance; "at most" claims (latency, TTFT, TPOT, load variance) when
// value <= claimed + tolerance. Counts are exact unless a tolerance is given.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/options.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

enum class ClaimVerdict : std::uint8_t { kHolds, kFails, kUnchecked };
std::string_view to_string(ClaimVerdict v);

/// How the claimed figure is compared with moesim's value.
enum class ClaimDirection : std::uint8_t { kEqual, kAtLeast, kAtMost };

enum class ClaimCategory : std::uint8_t {
  kArithmetic,   // derived from the plan's numbers
  kMemory,       // from the memory model
  kPerformance,  // from a simulation
  kSearch,       // from the strategy search
};

/// How a claim's value is written and shown.
enum class ClaimValueType : std::uint8_t {
  kCount,    // plain number ("512", "30e9")
  kBytes,    // "0.62GB", "58.6MB"
  kPercent,  // "95", "95%"
  kSeconds,  // "0.016" (seconds)
  kRate,     // plain number in the unit of the key (tokens/s, sequences/s)
  kBool,     // best_plan
};

/// The static definition of one claimable quantity.
struct ClaimKind {
  std::string_view key;    // "gpus": the option is claims.<key>
  std::string_view label;  // "GPU count"
  std::string_view unit;   // shown in tables: "GPUs", "bytes", "tokens/ms", "%", "s"
  ClaimCategory category;
  ClaimDirection direction;
  ClaimValueType type;
  /// True: the default tolerance (claims.tolerance) applies; false: exact
  /// unless claims.<key>_tolerance is given (counts derived by arithmetic).
  bool approximate;
  std::string_view help;
};

/// Every claimable quantity, in table order.
const std::vector<ClaimKind>& claim_kinds();
const ClaimKind* find_claim_kind(std::string_view key);

/// A tolerance: relative (fraction of the claimed value) or absolute (in the
/// claim's unit; bytes for memory claims).
struct Tolerance {
  double relative = 0.0;
  double absolute = 0.0;
  std::string text;  // "5%", "0.5", "" (exact)
  /// The allowed absolute deviation for a claimed value.
  [[nodiscard]] double allowed(double claimed) const;
};

enum class ClaimRole : std::uint8_t {
  kPlan,    // claims.<kind>: the plan's own document
  kReview,  // claims.<kind>_review: another document about the same plan
  kTarget,  // claims.<kind>_target: a requirement the plan is said to meet
};

/// One claim as written in the scenario.
struct Claim {
  std::string name;  // option key without "claims.": "gpus", "gpus_review", "ttft_s_target"
  const ClaimKind* kind = nullptr;
  ClaimRole role = ClaimRole::kPlan;
  double claimed = 0.0;      // in the kind's base unit (bytes, seconds, percent, count, rate)
  std::string claimed_text;  // as written
  Tolerance tolerance;
  std::string source;  // "file.ini:12"
};

/// Parses every claims.* value of `config` (InputError naming the key and
/// where it was set on a malformed value). Claims come out in table order.
std::vector<Claim> claims_from_config(const Config& config);

/// One row of the assumptions table.
struct AssumptionRecord {
  std::string key;
  std::string value;
  std::string source;  // "document" | "assumed"
  bool listed = true;  // false: set by the scenario but named in neither list (counted as assumed)
};

/// The [assumptions] record: assumptions.document and assumptions.assumed
/// (comma-separated option keys). Throws InputError for an unknown key, or a
/// key listed as both. Scenario keys that are set (outside [claims],
/// [assumptions] and [run]) but named in neither list are appended as
/// assumed with listed = false.
std::vector<AssumptionRecord> assumptions_from_config(const Config& config);

/// What a simulation of the scenario measured (performance claims). Unset
/// fields are "not measured in this mode".
struct PerformanceMetrics {
  std::string mode;  // "batch" | "serving"
  std::optional<double> latency_s;                  // batch: one iteration; serving: mean end-to-end
  std::optional<double> tokens_per_s;               // total (input + output) tokens/s
  std::optional<double> output_tokens_per_s;
  std::optional<double> sequences_per_s;            // batch: sequences/s; serving: requests/s
  std::optional<double> ttft_s;                     // at the statistic requested (claims.statistic)
  std::optional<double> tpot_s;
  std::optional<double> gpu_utilization;            // fraction of GPU time computing, 0..1
  std::optional<double> expert_load_cv;             // std/mean of tokens per expert (mean over MoE layers)
  std::optional<double> expert_load_imbalance;      // max/mean tokens per expert (mean over MoE layers)
  std::optional<bool> meets_slo;                    // serving: SLO attainment >= slo.attainment
  std::optional<double> slo_attainment;             // serving: fraction of measured requests meeting the SLO
  std::string note;                                 // e.g. what the latency means in this mode
};

/// Simulates the scenario `config`; throws InputError when it cannot.
/// `statistic` is "mean" | "p50" | "p90" | "p99" (for TTFT, TPOT and the
/// serving latency).
using PerformanceFn = std::function<PerformanceMetrics(const Config& config, const std::string& statistic)>;

/// The strategy search's answer about a scenario's plan (best_plan claims).
struct BestPlanAnswer {
  bool is_best = false;
  double plan_throughput = 0.0;  // the scenario plan's score (same unit as best_throughput)
  double best_throughput = 0.0;
  double plan_latency_s = 0.0;   // TTFT (serving) or iteration latency (batch) of the scenario's plan
  double best_latency_s = 0.0;   // ... of the best plan
  std::string latency_label;     // "TTFT" | "latency"
  std::string throughput_unit;   // "tokens/s"
  std::string best_plan;         // description of the best plan found
  std::int64_t plans_evaluated = 0;
  std::int64_t rank = 0;         // of the scenario's plan (1 = best)
  std::int64_t ranked = 0;       // valid plans ranked
  std::string note;              // fidelity of the search
};
using SearchFn = std::function<BestPlanAnswer(const Config& config)>;

/// One input varied for the sensitivity analysis, and what it did.
struct SensitivityResult {
  std::string key;         // "workload.prompt_tokens", "gpu.preset", "routing", "network efficiency"
  std::string range;       // "x0.5 .. x2 (512 .. 2048)"
  std::vector<std::string> tried;  // values tried, in order
  std::vector<std::optional<double>> values;  // the claim's quantity at each (nullopt: could not run)
  bool flips = false;
  std::string flips_at;    // the tried values at which the verdict differs
};

struct ClaimResult {
  std::string name;
  std::string label;
  std::string unit;
  ClaimCategory category = ClaimCategory::kArithmetic;
  ClaimValueType type = ClaimValueType::kCount;
  ClaimRole role = ClaimRole::kPlan;
  double claimed = 0.0;
  std::string claimed_text;
  std::optional<double> value;
  std::string value_text;       // formatted; "-" when unchecked
  std::string difference_text;  // "+1536 (x4.00)", "-12.3 %"
  ClaimVerdict verdict = ClaimVerdict::kUnchecked;
  std::string explanation;      // one line
  /// The value under each reading when the claim is ambiguous
  /// ({"folded": 8, "orthogonal": 32}; {"shards": 8, "all-to-all groups": 4}).
  std::map<std::string, double> readings;
  std::vector<SensitivityResult> sensitivity;
  std::string tolerance_text;
};

struct VerifyOptions {
  std::string statistic = "mean";
  bool sensitivity = true;
  /// Called before each simulation of the sensitivity analysis (progress).
  std::function<void(const std::string& what)> progress;
};

struct VerifyReport {
  std::string scenario;  // path
  std::string plan;      // Strategy::describe()
  std::string convention;
  std::string mode;      // workload.kind
  std::int64_t cluster_gpus = 0;
  bool plan_valid = true;
  std::vector<std::string> violations;
  std::vector<ClaimResult> claims;
  std::vector<AssumptionRecord> assumptions;
  std::string performance_note;  // what the simulation was (mode, fidelity)

  [[nodiscard]] bool any_fails() const;
  [[nodiscard]] std::size_t count(ClaimVerdict v) const;
};

/// Evaluates every claim of `config`. `perf` and `search` may be empty
/// functions: performance / best_plan claims are then unchecked with that
/// reason. Throws InputError for bad input (malformed claims, an invalid
/// model, an unknown assumption key); an invalid PLAN is not an error.
VerifyReport verify_claims(const Config& config, const PerformanceFn& perf, const SearchFn& search,
                           const VerifyOptions& options = {});

/// The human-readable table (claims, assumptions, violations).
std::string format_verify_report(const VerifyReport& report);
/// The verdict table as GitHub markdown (experiments/seeds/README.md).
std::string format_verify_markdown(const VerifyReport& report);
/// The JSON document of `moesim verify --json` (DESIGN.md keys: claims
/// [{name, claimed, value, unit, verdict, explanation}], assumptions [{key,
/// value, source}], plus readings, sensitivity, plan, violations).
nlohmann::json verify_report_json(const VerifyReport& report);

/// The workload shape the memory model is evaluated for, as the simulators
/// use it: batch mode, workload.batch prompts of workload.prompt_tokens with
/// the first output token in the KV cache (analysis/run_report.cpp); serving,
/// one sequence per attention replica with scheduler.max_batched_tokens in
/// flight (workloads/serving_sim.hpp, kv_capacity()).
WorkloadShape scenario_memory_shape(const Config& config, const Strategy& strategy);

/// Formatting helpers shared with the search report.
std::string format_claim_number(double value, ClaimValueType type);

}  // namespace moesim
