#pragma once
// Scenario options of batch mode (`workload.kind = batch`): one iteration of
// workload.batch sequences of workload.prompt_tokens each (prefill).
// (`workload.kind` and `run.seed` are registered by the application.)

#include <cstdint>

#include "sim/options.hpp"

namespace moesim {

/// Registers workload.batch and workload.prompt_tokens.
void register_batch_options(OptionRegistry& registry);

struct BatchWorkload {
  std::int64_t batch = 64;           // sequences in the iteration (global, over all DP replicas)
  std::int64_t prompt_tokens = 1024;  // tokens per sequence (prefill)
};

/// Reads the options registered above.
BatchWorkload batch_workload_from_config(const Config& config);

}  // namespace moesim
