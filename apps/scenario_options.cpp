#include "apps/scenario_options.hpp"

#include "analysis/claims_options.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/batch_options.hpp"
#include "workloads/workload_options.hpp"
#include "workloads/serving_options.hpp"

namespace moesim::cli {

void register_all_scenario_options(OptionRegistry& r) {
  // Each module defines its own options, once.
  register_topology_options(r);       // [topology]
  register_network_options(r);        // [network]
  register_workload_model_options(r); // [model] [gpu] [strategy] [routing] [memory]
  register_batch_options(r);          // [workload] batch mode
  register_serving_options(r);        // [workload] serving, [scheduler], [slo]
  register_claims_options(r);         // [claims] [assumptions]

  // Run-level options owned by the application.
  r.add({.name = "run.seed", .type = OptionType::kInt, .unit = "", .default_value = "1",
         .help = "Scenario seed; every random stream (routing, arrivals, lengths) is derived from it "
                 "by name, so the same seed gives the same run bit for bit.",
         .min = 0, .max = 9.0e18, .choices = {}});
  r.add({.name = "run.run", .type = OptionType::kInt, .unit = "", .default_value = "0",
         .help = "Run number (as in ns-3): independent replications with the same seed.",
         .min = 0, .max = 1.0e9, .choices = {}});
  r.add({.name = "workload.kind", .type = OptionType::kChoice, .unit = "", .default_value = "serving",
         .help = "batch: one iteration of workload.batch sequences of workload.prompt_tokens (prefill); "
                 "serving: a request stream with continuous batching.",
         .min = {}, .max = {}, .choices = {"batch", "serving"}});
}

}  // namespace moesim::cli
