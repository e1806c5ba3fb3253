#pragma once
// Serving metrics (docs/serving.md, "Metrics"): per-request records and the
// aggregates over the measured window.
//
// Per request (DESIGN.md definitions):
//   queue  = first scheduled - arrival
//   TTFT   = first output token - arrival (the token is out when the
//            iteration that sampled it ends)
//   TPOT   = (end - first token) / (output tokens - 1); undefined for a
//            one-token request (left out of the TPOT statistics, and counted
//            as meeting the TPOT objective)
//   E2E    = end - arrival
//
// Warm-up and cool-down: requests are ordered by arrival; the first
// floor(n x workload.warmup) and the last floor(n x workload.cooldown) are
// left out. The remaining ones are the *measured* requests, and the
// measured window is [arrival of the first measured, arrival of the last
// measured], opened no earlier than the first arrival + the p90 E2E of the
// measured requests when that leaves a window (the system is then full:
// completions keep pace with arrivals). (When the arrival window is empty,
// e.g. offline arrivals at t = 0, it is [first measured arrival, last
// measured completion].)
//   latency statistics: over the measured requests (mean; p50, p90, p99 by
//     linear interpolation between order statistics, numpy's default);
//   output tokens/s: output tokens sampled by iterations that ended inside
//     the window / window length (the system's rate, whichever request the
//     tokens belong to, so it measures capacity when the queue grows);
//   input tokens/s: prompt tokens of requests whose prefill completed
//     (first token) inside the window / window length;
//   requests/s: requests completed inside the window / window length;
//   goodput: requests completed inside the window that meet both SLO
//     objectives / window length (so goodput <= requests/s), and the
//     attainment: the fraction of the measured requests that meet them.
// Ramp-up: completions lag arrivals by a request's lifetime. With the window
// opening w after the first arrival, completions inside it fall short of the
// steady state by about E[max(0, E2E - w)] / window length (over the measured
// requests): `ramp_up_fraction`, the estimated bias of requests/s, tokens/s
// and goodput. Reports warn above kRampUpWarning: the run is too short for
// its load (more requests, workload.requests). 0 for offline arrivals.
// Little's law quantities over the window: the time-average number of
// requests in the system, the arrival rate inside it and the measured
// requests' mean time in system.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "workloads/serving_options.hpp"
#include "workloads/serving_sim.hpp"

namespace moesim::analysis {

/// Mean and percentiles of a sample (seconds). count = 0: all zero.
struct LatencyStats {
  double mean = 0.0;
  double p50 = 0.0;
  double p90 = 0.0;
  double p99 = 0.0;
  double max = 0.0;
  std::int64_t count = 0;
};
/// Linear-interpolation percentile (numpy "linear"): q in [0, 1] of sorted values.
double percentile_sorted(const std::vector<double>& sorted, double q);
LatencyStats latency_stats(std::vector<double> values);

struct RequestRecord {
  std::int64_t id = 0;
  std::int32_t replica = -1;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int32_t preemptions = 0;
  double arrival_s = 0.0;
  double scheduled_s = 0.0;
  double first_token_s = 0.0;
  double end_s = 0.0;
  double queue_s = 0.0;
  double ttft_s = 0.0;
  double tpot_s = 0.0;  // NaN for a one-token request
  double e2e_s = 0.0;
  bool measured = false;
  bool meets_slo = false;
};

struct ServingSummary {
  std::vector<RequestRecord> requests;  // by id (arrival order)
  std::int64_t total_requests = 0;
  std::int64_t measured_requests = 0;
  double window_start_s = 0.0;
  double window_end_s = 0.0;

  LatencyStats queue;
  LatencyStats ttft;
  LatencyStats tpot;
  LatencyStats e2e;

  double input_tokens_per_s = 0.0;
  double output_tokens_per_s = 0.0;
  double tokens_per_s = 0.0;       // input + output
  double requests_per_s = 0.0;     // completions
  double offered_rate = 0.0;       // arrivals inside the window / window
  double goodput = 0.0;            // completions/s meeting the SLO
  double ramp_up_fraction = 0.0;   // of the window (see the file comment)
  double slo_attainment = 0.0;     // fraction of measured requests meeting it
  bool meets_slo = false;          // attainment >= slo.attainment
  SloConfig slo;

  // Little's law over the window.
  double mean_in_system = 0.0;     // time average of requests present
  double mean_time_in_system_s = 0.0;  // of the measured requests

  // Scheduler and cache.
  std::int64_t iterations = 0;
  double mean_batch_sequences = 0.0;  // per engine iteration
  double mean_iteration_s = 0.0;
  std::int64_t preemptions = 0;
  std::int64_t kv_blocks = 0;          // per replica
  std::int64_t kv_block_tokens = 0;
  std::int64_t peak_kv_blocks = 0;     // max over replicas
  double makespan_s = 0.0;
  std::int32_t replicas = 0;
  std::int32_t engines = 0;
};

/// Above this ramp-up fraction, reports warn that the window is not steady state.
inline constexpr double kRampUpWarning = 0.05;

/// Computes the records and aggregates of a run (see the file comment).
ServingSummary summarize_serving(const ServingResult& result, const SloConfig& slo, double warmup,
                                 double cooldown);

/// {mean, p50, p90, p99} (+ max, count).
nlohmann::json to_json(const LatencyStats& stats);

}  // namespace moesim::analysis
