#pragma once
// Scenario options of claims verification: the [claims] and [assumptions]
// sections (analysis/claims.hpp reads them back; docs/verify.md lists them).
//
//   claims.<kind>              the figure a document states, in the key's unit
//                              (every kind of claim_kinds(): gpus,
//                              experts_per_gpu, memory_per_gpu, ttft_s, ...)
//   claims.<kind>_tolerance    "10%" (relative) or an amount in the claim's unit
//   claims.<kind>_review       another document's figure for the same plan
//                              (arithmetic and memory kinds)
//   claims.<kind>_target       a requirement the plan is said to meet
//                              (performance kinds)
//   claims.tolerance           default relative tolerance of memory,
//                              performance and model-size claims (5%)
//   claims.statistic           mean | p50 | p90 | p99: which TTFT/TPOT/latency
//   claims.sensitivity         run the sensitivity analysis (true)
//   assumptions.document       keys whose values the document states
//   assumptions.assumed        keys the scenario had to assume

#include "sim/options.hpp"

namespace moesim {

void register_claims_options(OptionRegistry& registry);

}  // namespace moesim
