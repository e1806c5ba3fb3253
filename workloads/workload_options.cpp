#include "workloads/workload_options.hpp"

#include <sstream>

#include "sim/unit_parse.hpp"
#include "workloads/gpu_presets.hpp"

namespace moesim {
namespace {

std::vector<std::string> model_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : model_presets()) out.push_back(p.name);
  return out;
}

std::vector<std::string> gpu_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : gpu_presets()) out.push_back(p.name);
  return out;
}

const std::vector<std::string> kDtypes = {"bf16", "fp16", "fp8", "fp32"};

OptionSpec int_opt(std::string name, std::string unit, std::string def, std::string help, double min, double max) {
  return {.name = std::move(name), .type = OptionType::kInt, .unit = std::move(unit), .default_value = std::move(def),
          .help = std::move(help), .min = min, .max = max, .choices = {}};
}
OptionSpec double_opt(std::string name, std::string unit, std::string def, std::string help, double min,
                      std::optional<double> max) {
  return {.name = std::move(name), .type = OptionType::kDouble, .unit = std::move(unit),
          .default_value = std::move(def), .help = std::move(help), .min = min, .max = max, .choices = {}};
}
OptionSpec choice_opt(std::string name, std::string def, std::string help, std::vector<std::string> choices) {
  return {.name = std::move(name), .type = OptionType::kChoice, .unit = "", .default_value = std::move(def),
          .help = std::move(help), .min = {}, .max = {}, .choices = std::move(choices)};
}
OptionSpec typed_opt(std::string name, OptionType type, std::string unit, std::string def, std::string help,
                     std::optional<double> min = {}) {
  return {.name = std::move(name), .type = type, .unit = std::move(unit), .default_value = std::move(def),
          .help = std::move(help), .min = min, .max = {}, .choices = {}};
}

// "model.layers (set at file.ini:3)".
std::string where(const Config& c, std::string_view key) {
  return std::string(key) + " (" + (c.is_set(key) ? "set at " + c.source(key) : std::string("default")) + ")";
}

void set_int(const Config& c, const char* key, std::int64_t& field) {
  if (c.is_set(key)) field = c.get_int(key);
}
void set_bool(const Config& c, const char* key, bool& field) {
  if (c.is_set(key)) field = c.get_bool(key);
}
void set_dtype(const Config& c, const char* key, DType& field) {
  if (c.is_set(key)) field = parse_dtype(c.get_string(key), key);
}

constexpr double kMaxDim = 1.0e7;       // any model dimension
constexpr double kMaxDegree = 16384.0;  // any parallel degree (keeps products inside int64)

}  // namespace

void register_workload_model_options(OptionRegistry& r) {
  // ---- model ----
  r.add(choice_opt("model.preset", std::string(kDefaultModelPreset),
                   "Model preset (sources: docs/models-and-strategies.md); every model.<field> set overrides it.",
                   model_preset_names()));
  struct Dim {
    const char* key;
    const char* help;
    double min;
  };
  const Dim dims[] = {
      {"model.layers", "Transformer layers (dense + MoE).", 1},
      {"model.hidden", "Hidden size (model dimension).", 1},
      {"model.heads", "Attention (query) heads.", 1},
      {"model.kv_heads", "Key/value heads (GQA; = heads for MHA).", 1},
      {"model.head_dim",
       "Dimension per attention head (default: the preset's, or hidden/heads when model.hidden or model.heads is set).",
       1},
      {"model.expert_ffn", "Intermediate (FFN) size of one routed expert.", 1},
      {"model.experts", "Routed experts per MoE layer.", 1},
      {"model.top_k", "Experts each token is routed to (distinct).", 1},
      {"model.shared_experts", "Always-active shared experts per MoE layer.", 0},
      {"model.shared_expert_ffn", "Intermediate size of one shared expert.", 0},
      {"model.dense_layers", "Leading layers with a dense FFN instead of an MoE block.", 0},
      {"model.dense_ffn", "Intermediate size of the dense layers' FFN.", 0},
      {"model.vocab", "Vocabulary size.", 1},
      {"model.q_lora_rank", "MLA: query compression rank (0 = none).", 0},
      {"model.kv_lora_rank", "MLA: key/value latent rank (cached per token).", 1},
      {"model.qk_rope_head_dim", "MLA: rotary part of the query/key head dimension.", 0},
      {"model.qk_nope_head_dim", "MLA: non-rotary part of the query/key head dimension.", 1},
      {"model.v_head_dim", "MLA: value head dimension.", 1},
  };
  for (const Dim& d : dims) r.add(int_opt(d.key, "", "", d.help, d.min, kMaxDim));
  r.add(choice_opt("model.attention", "", "Attention kind: gqa (MHA/GQA/MQA) or mla (DeepSeek latent attention).",
                   {"gqa", "mla"}));
  r.add(choice_opt("model.ffn", "", "FFN kind: swiglu (3 matrices) or gelu (2 matrices).", {"swiglu", "gelu"}));
  r.add(typed_opt("model.tied_embeddings", OptionType::kBool, "", "", "LM head shares the embedding matrix."));
  r.add(typed_opt("model.qk_norm", OptionType::kBool, "", "", "Per-head RMSNorm on queries and keys (Qwen3)."));
  r.add(choice_opt("model.weight_dtype", "", "Weight element type.", kDtypes));
  r.add(choice_opt("model.activation_dtype", "", "Activation element type (also the combine all-to-all payload).",
                   kDtypes));
  r.add(choice_opt("model.dispatch_dtype", "", "Payload type of the EP dispatch all-to-all (DeepSeek-V3: fp8).",
                   kDtypes));
  r.add(choice_opt("model.kv_dtype", "", "KV-cache element type.", kDtypes));

  // ---- gpu ----
  r.add(choice_opt("gpu.preset", std::string(kDefaultGpuPreset),
                   "GPU preset (gpu64 = the 64 GB A100 of CINECA Leonardo; see moesim presets).", gpu_preset_names()));
  r.add(typed_opt("gpu.memory", OptionType::kBytes, "bytes", "", "HBM capacity per GPU (e.g. 64GB, 80GiB).", 1.0));
  r.add(typed_opt("gpu.hbm_bandwidth", OptionType::kBandwidth, "bytes/s", "", "Peak HBM bandwidth (e.g. 2TB/s).", 1.0));
  r.add(double_opt("gpu.bf16_tflops", "TFLOPS", "", "Dense peak BF16 tensor TFLOPS.", 1e-3, 1e6));
  r.add(double_opt("gpu.fp8_tflops", "TFLOPS", "", "Dense peak FP8 tensor TFLOPS (0 = no FP8: BF16 rate).", 0.0, 1e6));
  r.add(double_opt("gpu.fp32_tflops", "TFLOPS", "", "Non-tensor FP32 TFLOPS (norms, element-wise).", 1e-3, 1e6));
  r.add(int_opt("gpu.sm_count", "", "", "Streaming multiprocessors (or compute units).", 1, 100000));
  r.add(typed_opt("gpu.scale_up_bandwidth", OptionType::kBandwidth, "bytes/s", "",
                  "NVLink/xGMI bandwidth per GPU per direction.", 1.0));
  r.add(double_opt("gpu.gemm_efficiency", "", "", "Ceiling of the GEMM efficiency model (measured/peak matmul).",
                   1e-3, 1.0));
  r.add(double_opt("gpu.memory_efficiency", "", "", "Achievable fraction of the HBM bandwidth.", 1e-3, 1.0));
  r.add(typed_opt("gpu.launch_overhead", OptionType::kDuration, "s", "", "Kernel launch overhead per op.", 0.0));

  // ---- strategy ----
  r.add(int_opt("strategy.tp", "", "2", "Tensor-parallel degree (attention and dense layers).", 1, kMaxDegree));
  r.add(int_opt("strategy.pp", "", "1", "Pipeline-parallel stages.", 1, kMaxDegree));
  r.add(int_opt("strategy.dp", "", "0",
                "Data-parallel degree; 0 = fill the cluster (folded: GPUs/(TP x PP), orthogonal: GPUs/(TP x PP x EP)).",
                0, kMaxDegree));
  r.add(int_opt("strategy.ep", "", "8", "Expert-parallel degree (GPUs among which one layer's experts are spread).",
                1, kMaxDegree));
  r.add(int_opt("strategy.etp", "", "1", "Expert tensor-parallel degree (each expert's FFN split over ETP GPUs).", 1,
                kMaxDegree));
  r.add(int_opt("strategy.microbatches", "", "0", "Micro-batches per iteration; 0 = one per pipeline stage (PP).", 0,
                1.0e6));
  r.add(choice_opt("strategy.convention", "folded",
                   "World-size convention: folded (world = TP x PP x DP, EP carved out of TP x DP, as Megatron-Core "
                   "and vLLM) or orthogonal (world = TP x PP x EP x DP).",
                   {"folded", "orthogonal"}));
  r.add(typed_opt("strategy.rank_order", OptionType::kString, "", "tp-ep-dp-pp",
                  "Order of the dimensions over consecutive GPUs, innermost first (Megatron-Core style)."));
  r.add(typed_opt("strategy.layers_per_stage", OptionType::kString, "", "",
                  "Explicit layers per pipeline stage, e.g. 15,16,15,15 (default: an even split)."));

  // ---- routing ----
  r.add(choice_opt("routing.distribution", "uniform",
                   "How tokens pick experts: balanced (exactly equal), uniform (random), zipf (skew routing.skew), "
                   "hot (routing.hot_experts take routing.hot_share), trace (routing.trace CSV).",
                   {"balanced", "uniform", "zipf", "hot", "trace"}));
  r.add(double_opt("routing.skew", "", "1.0", "Zipf exponent s: expert popularity ~ 1/rank^s.", 0.0, 100.0));
  r.add(int_opt("routing.hot_experts", "", "1", "hot: number of hot experts per layer.", 1, 1.0e6));
  r.add(double_opt("routing.hot_share", "", "0.5", "hot: share of the routing popularity the hot experts take.", 0.0,
                   1.0));
  r.add(typed_opt("routing.trace", OptionType::kString, "", "",
                  "Routing trace CSV: header layer,token,experts (rows L,t,e1..ek) or layer,expert,count."));
  r.add(double_opt("routing.capacity_factor", "", "0",
                   "Expert capacity factor; assignments beyond ceil(cf x tokens x k / experts) per source rank are "
                   "dropped. 0 = dropless.",
                   0.0, 1000.0));
  r.add(typed_opt("routing.dropless", OptionType::kBool, "", "false", "Never drop tokens (ignore the capacity factor)."));

  // ---- memory ----
  r.add(choice_opt("memory.mode", "inference",
                   "inference: weights, KV cache, activations; training: also gradients and Adam states (memory "
                   "check only).",
                   {"inference", "training"}));
  r.add(int_opt("memory.zero", "", "0",
                "Training: ZeRO stage (1 shards optimizer states, 2 also gradients, 3 also weights over DP).", 0, 3));
  r.add(typed_opt("memory.reserve", OptionType::kBytes, "bytes", "2GiB",
                  "Runtime reserve per GPU: CUDA context, library workspaces, allocator fragmentation.", 0.0));
  r.add(typed_opt("memory.nccl_buffer", OptionType::kBytes, "bytes", "512MiB",
                  "NCCL communicator buffers per GPU (when the GPU communicates).", 0.0));
}

ModelSpec model_from_config(const Config& c) {
  ModelSpec m = model_preset(c.get_string("model.preset"));
  set_int(c, "model.layers", m.layers);
  set_int(c, "model.hidden", m.hidden);
  set_int(c, "model.heads", m.heads);
  set_int(c, "model.kv_heads", m.kv_heads);
  if (c.is_set("model.head_dim")) {
    m.head_dim = c.get_int("model.head_dim");
  } else if (c.is_set("model.hidden") || c.is_set("model.heads")) {
    if (m.hidden % m.heads != 0) {
      throw InputError("model: " + where(c, "model.hidden") + " = " + std::to_string(m.hidden) +
                       " is not divisible by " + where(c, "model.heads") + " = " + std::to_string(m.heads) +
                       "; set model.head_dim explicitly");
    }
    m.head_dim = m.hidden / m.heads;
  }
  set_int(c, "model.expert_ffn", m.expert_ffn);
  set_int(c, "model.experts", m.experts);
  set_int(c, "model.top_k", m.top_k);
  set_int(c, "model.shared_experts", m.shared_experts);
  set_int(c, "model.shared_expert_ffn", m.shared_expert_ffn);
  set_int(c, "model.dense_layers", m.dense_layers);
  set_int(c, "model.dense_ffn", m.dense_ffn);
  set_int(c, "model.vocab", m.vocab);
  set_int(c, "model.q_lora_rank", m.mla.q_lora_rank);
  set_int(c, "model.kv_lora_rank", m.mla.kv_lora_rank);
  set_int(c, "model.qk_rope_head_dim", m.mla.qk_rope_head_dim);
  set_int(c, "model.qk_nope_head_dim", m.mla.qk_nope_head_dim);
  set_int(c, "model.v_head_dim", m.mla.v_head_dim);
  if (c.is_set("model.attention")) {
    m.attention = c.get_string("model.attention") == "mla" ? AttentionKind::kMla : AttentionKind::kGqa;
  }
  if (c.is_set("model.ffn")) m.ffn_kind = c.get_string("model.ffn") == "gelu" ? FfnKind::kGelu : FfnKind::kSwiGlu;
  set_bool(c, "model.tied_embeddings", m.tied_embeddings);
  set_bool(c, "model.qk_norm", m.qk_norm);
  set_dtype(c, "model.weight_dtype", m.weight_dtype);
  set_dtype(c, "model.activation_dtype", m.activation_dtype);
  set_dtype(c, "model.dispatch_dtype", m.dispatch_dtype);
  set_dtype(c, "model.kv_dtype", m.kv_dtype);
  if (c.is_set("model.activation_dtype") && !c.is_set("model.kv_dtype")) m.kv_dtype = m.activation_dtype;

  bool overridden = false;
  for (const auto& [key, value] : c.resolved()) {
    if (key.rfind("model.", 0) == 0 && key != "model.preset" && c.is_set(key)) overridden = true;
  }
  if (overridden) m.name = m.name + " (modified)";

  const std::vector<std::string> problems = model_problems(m);
  if (!problems.empty()) {
    std::string msg = "the model (preset " + c.get_string("model.preset") + " with the model.* settings) is invalid:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw InputError(msg);
  }
  return m;
}

GpuSpec gpu_from_config(const Config& c) {
  GpuSpec g = gpu_preset(c.get_string("gpu.preset"));
  bool overridden = false;
  auto mark = [&](const char* key) {
    const bool set = c.is_set(key);
    overridden = overridden || set;
    return set;
  };
  if (mark("gpu.memory")) g.memory = c.get_bytes("gpu.memory");
  if (mark("gpu.hbm_bandwidth")) g.memory_bandwidth = c.get_bandwidth("gpu.hbm_bandwidth");
  if (mark("gpu.bf16_tflops")) g.bf16_tflops = c.get_double("gpu.bf16_tflops");
  if (mark("gpu.fp8_tflops")) g.fp8_tflops = c.get_double("gpu.fp8_tflops");
  if (mark("gpu.fp32_tflops")) g.fp32_tflops = c.get_double("gpu.fp32_tflops");
  if (mark("gpu.sm_count")) g.sm_count = static_cast<int>(c.get_int("gpu.sm_count"));
  if (mark("gpu.scale_up_bandwidth")) g.scale_up_bandwidth = c.get_bandwidth("gpu.scale_up_bandwidth");
  if (mark("gpu.gemm_efficiency")) g.max_gemm_efficiency = c.get_double("gpu.gemm_efficiency");
  if (mark("gpu.memory_efficiency")) g.memory_efficiency = c.get_double("gpu.memory_efficiency");
  if (mark("gpu.launch_overhead")) g.kernel_launch_overhead = c.get_duration("gpu.launch_overhead");
  if (overridden) g.name += " (modified)";
  return g;
}

Strategy strategy_from_config(const Config& c, std::int64_t cluster_gpus) {
  Strategy s;
  s.tp = c.get_int("strategy.tp");
  s.pp = c.get_int("strategy.pp");
  s.dp = c.get_int("strategy.dp");
  s.ep = c.get_int("strategy.ep");
  s.etp = c.get_int("strategy.etp");
  s.microbatches = c.get_int("strategy.microbatches");
  s.convention = parse_convention(c.get_string("strategy.convention"), "strategy.convention");
  s.order = parse_rank_order(c.get_string("strategy.rank_order"), where(c, "strategy.rank_order"));
  if (c.has("strategy.layers_per_stage")) {
    const std::string text = c.get_string("strategy.layers_per_stage");
    std::size_t pos = 0;
    while (pos <= text.size()) {
      const std::size_t comma = text.find(',', pos);
      const std::string cell = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
      std::int64_t v = 0;
      try {
        v = parse_int(cell);
      } catch (const ParseError&) {
        throw InputError(where(c, "strategy.layers_per_stage") + ": '" + cell +
                         "' is not a whole number (write the layers of each stage, e.g. 15,16,15,15)");
      }
      if (v < 1) {
        throw InputError(where(c, "strategy.layers_per_stage") + ": every stage needs at least 1 layer (got " +
                         std::to_string(v) + ")");
      }
      s.layers_per_stage.push_back(v);
    }
    if (!c.is_set("strategy.pp")) s.pp = static_cast<std::int64_t>(s.layers_per_stage.size());
  }
  if (s.dp == 0) {
    const bool folded = s.convention == Convention::kFolded;
    const std::int64_t denom = folded ? s.tp * s.pp : s.tp * s.pp * s.ep;
    if (cluster_gpus < denom || cluster_gpus % denom != 0) {
      throw InputError(where(c, "strategy.dp") + " = 0 (auto) fills the cluster, but its " +
                       std::to_string(cluster_gpus) + " GPUs are not a multiple of " +
                       (folded ? "TP x PP = " : "TP x PP x EP = ") + std::to_string(denom) +
                       " (" + std::string(to_string(s.convention)) + " convention); set strategy.dp explicitly");
    }
    s.dp = cluster_gpus / denom;
  }
  if (s.microbatches == 0) s.microbatches = s.pp;
  return s;
}

RoutingConfig routing_from_config(const Config& c) {
  RoutingConfig r;
  const std::string d = c.get_string("routing.distribution");
  if (d == "balanced") {
    r.distribution = RoutingDistribution::kBalanced;
  } else if (d == "uniform") {
    r.distribution = RoutingDistribution::kUniform;
  } else if (d == "zipf") {
    r.distribution = RoutingDistribution::kZipf;
  } else if (d == "hot") {
    r.distribution = RoutingDistribution::kHot;
  } else {
    r.distribution = RoutingDistribution::kTrace;
  }
  r.skew = c.get_double("routing.skew");
  r.hot_experts = c.get_int("routing.hot_experts");
  r.hot_share = c.get_double("routing.hot_share");
  if (c.has("routing.trace")) r.trace_path = c.get_string("routing.trace");
  if (r.distribution == RoutingDistribution::kTrace && r.trace_path.empty()) {
    throw InputError(where(c, "routing.distribution") + " = trace needs routing.trace = <file.csv>");
  }
  r.capacity_factor = c.get_double("routing.capacity_factor");
  r.dropless = c.get_bool("routing.dropless");
  return r;
}

MemoryOptions memory_options_from_config(const Config& c) {
  MemoryOptions m;
  m.mode = c.get_string("memory.mode") == "training" ? MemoryMode::kTraining : MemoryMode::kInference;
  m.zero_stage = c.get_int("memory.zero");
  m.reserve = c.get_bytes("memory.reserve");
  m.nccl_buffer = c.get_bytes("memory.nccl_buffer");
  const RoutingConfig r = routing_from_config(c);
  m.capacity_factor = r.drops_enabled() ? r.capacity_factor : 0.0;
  return m;
}

}  // namespace moesim
