#include "workloads/batch_options.hpp"

namespace moesim {

void register_batch_options(OptionRegistry& registry) {
  registry.add({.name = "workload.batch", .type = OptionType::kInt, .unit = "sequences", .default_value = "64",
                .help = "Batch mode: sequences in the iteration, over all data-parallel replicas (each replica "
                        "gets batch / replicas, split into strategy.microbatches micro-batches).",
                .min = 1, .max = 1.0e9, .choices = {}});
  registry.add({.name = "workload.prompt_tokens", .type = OptionType::kInt, .unit = "tokens",
                .default_value = "1024",
                .help = "Batch mode: prompt tokens per sequence; the iteration is their prefill forward pass.",
                .min = 1, .max = 1.0e8, .choices = {}});
}

BatchWorkload batch_workload_from_config(const Config& config) {
  BatchWorkload w;
  w.batch = config.get_int("workload.batch");
  w.prompt_tokens = config.get_int("workload.prompt_tokens");
  return w;
}

}  // namespace moesim
