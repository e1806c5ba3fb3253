#pragma once
// Scenario options of serving mode (`workload.kind = serving`): the request
// stream (workload.*), the continuous-batching scheduler (scheduler.*) and
// the service-level objectives (slo.*). docs/serving.md documents each.
//
// `workload.prompt_tokens` is registered by batch mode (workloads/
// batch_options.hpp); serving reads it as the mean (or fixed) prompt length.

#include <cstdint>

#include "sim/options.hpp"
#include "sim/units.hpp"
#include "workloads/requests.hpp"
#include "workloads/scheduler.hpp"
#include "workloads/serving_sim.hpp"

namespace moesim {

/// Service-level objectives: a request meets the SLO when its TTFT <= ttft
/// and its TPOT <= tpot (a one-token request has no TPOT and meets that half).
/// A load "meets the SLO" when at least `attainment` of the measured requests
/// do (DistServe's goodput definition, Zhong et al., OSDI 2024).
struct SloConfig {
  Duration ttft = Duration::s(1);
  Duration tpot = Duration::ms(100);
  double attainment = 0.9;
};

struct ServingOptions {
  RequestStreamConfig stream;
  SchedulerConfig scheduler;       // kv_blocks 0 = from the memory model
  RouterKind router = RouterKind::kLeastOutstandingTokens;
  int shape_buckets = 8;           // iteration-time cache: buckets per octave; 0 = exact
  int sample_layers = 4;           // layers per stage simulated on a cache miss; 0 = all
  SloConfig slo;
  double warmup = 0.1;             // fraction of requests (by arrival) left out at the start
  double cooldown = 0.1;           // ... and at the end
};

/// Registers workload.{arrival, rate, cv, trace, requests, duration,
/// prompt_dist, prompt_cv, prompt_min, prompt_max, output_dist,
/// output_tokens, output_cv, output_min, output_max, warmup, cooldown},
/// scheduler.{max_seqs, max_batched_tokens, chunked_prefill, router,
/// kv_block_tokens, kv_blocks, shape_buckets, sample_layers} and slo.{ttft, tpot, attainment}.
void register_serving_options(OptionRegistry& registry);

/// Reads them (and workload.prompt_tokens); throws InputError naming the key
/// for inconsistent values (e.g. both workload.requests and
/// workload.duration set, warmup + cooldown >= 1).
ServingOptions serving_options_from_config(const Config& config);

}  // namespace moesim
