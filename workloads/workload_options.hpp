#pragma once
// Scenario options of the model, GPU, strategy, routing and memory model
// (`model.*`, `gpu.*`, `strategy.*`, `routing.*`, `memory.*`) and the readers
// that turn a Config into the structs. Bad values throw InputError naming the
// key (and where it was set).
//
// Presets and overrides: `model.preset` / `gpu.preset` select a preset; every
// other `model.<field>` / `gpu.<field>` key has no default and, when set,
// overrides the preset's field. (When model.hidden or model.heads is set but
// model.head_dim is not, head_dim follows as hidden / heads.)
//
// Auto values: `strategy.dp = 0` (the default) fills the cluster: folded
// DP = gpus / (TP x PP), orthogonal DP = gpus / (TP x PP x EP);
// `strategy.microbatches = 0` (the default) means one per stage (= PP).

#include <cstdint>

#include "sim/gpu_spec.hpp"
#include "sim/options.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/routing.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

/// The default model preset of the built-in scenario.
inline constexpr std::string_view kDefaultModelPreset = "mixtral-8x7b";

/// Registers model.*, gpu.*, strategy.*, routing.* and memory.* options.
void register_workload_model_options(OptionRegistry& registry);

/// The preset named by model.preset with every model.<field> override
/// applied; throws InputError listing every problem of the resulting spec.
ModelSpec model_from_config(const Config& config);
/// The preset named by gpu.preset with the gpu.<field> overrides.
GpuSpec gpu_from_config(const Config& config);
/// The strategy; auto values (strategy.dp = 0, strategy.microbatches = 0)
/// are resolved against `cluster_gpus` (InputError naming strategy.dp when the
/// cluster is not a multiple of the other degrees). Structural validity is
/// not checked here: call validate().
Strategy strategy_from_config(const Config& config, std::int64_t cluster_gpus);
RoutingConfig routing_from_config(const Config& config);
/// memory.mode, memory.zero, memory.reserve, memory.nccl_buffer and the
/// routing capacity factor (0 when dropless).
MemoryOptions memory_options_from_config(const Config& config);

}  // namespace moesim
