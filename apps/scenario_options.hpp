#pragma once
#include "sim/options.hpp"

namespace moesim::cli {
/// Registers every module's scenario options (one definition per option) and
/// the run-level ones ([run], [workload] kind).
void register_all_scenario_options(OptionRegistry& registry);
}  // namespace moesim::cli
