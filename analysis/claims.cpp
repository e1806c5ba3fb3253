#include "analysis/claims.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>

#include "sim/unit_parse.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/batch_options.hpp"
#include "workloads/gpu_presets.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/serving_sim.hpp"
#include "workloads/workload_options.hpp"

namespace moesim {
namespace {

using A = ClaimCategory;
using D = ClaimDirection;
using T = ClaimValueType;

// The table of claimable quantities. Order = table order in reports.
const std::vector<ClaimKind> kKinds = {
    // ---- arithmetic: derived from the plan's numbers ----
    {"gpus", "GPU count", "GPUs", A::kArithmetic, D::kEqual, T::kCount, false,
     "GPUs the plan uses (world size); computed under both conventions, judged under strategy.convention."},
    {"gpus_per_stage", "GPUs per pipeline stage", "GPUs", A::kArithmetic, D::kEqual, T::kCount, false,
     "GPUs of one pipeline stage (world / PP), both conventions."},
    {"experts_per_gpu", "routed experts per GPU per MoE layer", "experts", A::kArithmetic, D::kEqual, T::kCount,
     false, "Routed experts one GPU holds of each MoE layer (experts / EP)."},
    {"expert_instances_per_gpu", "expert instances per GPU", "experts", A::kArithmetic, D::kEqual, T::kCount, false,
     "Routed expert instances one GPU holds over all its layers (experts / EP x MoE layers of its stage)."},
    {"expert_instances", "expert instances in the model", "experts", A::kArithmetic, D::kEqual, T::kCount, false,
     "Routed expert instances of the whole model (experts x MoE layers)."},
    {"layers_per_stage", "layers per pipeline stage", "layers", A::kArithmetic, D::kEqual, T::kCount, false,
     "Transformer layers of one pipeline stage (layers / PP)."},
    {"hidden_per_tp_rank", "hidden dimensions per TP rank", "dims", A::kArithmetic, D::kEqual, T::kCount, false,
     "Hidden dimensions one tensor-parallel rank holds (hidden / TP)."},
    {"heads_per_tp_rank", "attention heads per TP rank", "heads", A::kArithmetic, D::kEqual, T::kCount, false,
     "Attention heads one tensor-parallel rank computes (heads / TP)."},
    {"expert_groups", "expert groups", "groups", A::kArithmetic, D::kEqual, T::kCount, false,
     "'Expert groups': read as expert shards (EP) or as all-to-all groups (world / EP); holds under either."},
    {"gpus_per_expert_group", "GPUs per expert group", "GPUs", A::kArithmetic, D::kEqual, T::kCount, false,
     "GPUs per 'expert group': those holding one expert shard (world / (EP x PP)) or those of one all-to-all (EP)."},
    {"tensor_groups", "tensor groups", "groups", A::kArithmetic, D::kEqual, T::kCount, false,
     "'Tensor groups': read as TP shards (TP) or as TP groups (world / TP); holds under either."},
    {"sequences_per_replica", "sequences per data-parallel replica", "sequences", A::kArithmetic, D::kEqual,
     T::kCount, false, "Sequences of the batch each attention data-parallel replica processes, both conventions."},
    {"total_params", "model parameters", "params", A::kArithmetic, D::kEqual, T::kCount, true,
     "Parameters of the whole model (all experts), e.g. 30e9."},
    // ---- memory: from the memory model, the largest stage's GPU ----
    {"memory_per_gpu", "memory per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Memory used per GPU (the largest stage's), e.g. 23GB."},
    {"memory_per_gpu_percent", "memory per GPU, % of capacity", "%", A::kMemory, D::kEqual, T::kPercent, true,
     "Memory used per GPU as a percentage of its HBM capacity."},
    {"memory_efficiency_percent", "memory efficiency", "%", A::kMemory, D::kEqual, T::kPercent, true,
     "'Memory efficiency', read as the share of HBM in use (memory per GPU / capacity)."},
    {"memory_share_of_model_percent", "weights per GPU, % of the model", "%", A::kMemory, D::kEqual, T::kPercent,
     true, "Weights one GPU holds as a percentage of all the model's weights (e.g. 1/64 = 1.5625)."},
    {"memory_weights", "weights per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "All parameters (weights) one GPU holds."},
    {"memory_non_expert_weights", "non-expert weights per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Weights other than the routed experts (attention, norms, routers, embeddings, shared/dense FFNs)."},
    {"memory_expert_weights", "expert weights per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Routed-expert weights one GPU holds."},
    {"memory_kv_cache", "KV cache per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "KV cache per GPU for the workload."},
    {"memory_activations", "activations per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Activation memory per GPU."},
    {"memory_comm_buffers", "communication buffers per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "All-to-all and NCCL buffers per GPU."},
    {"memory_gradients", "gradients per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Gradients per GPU (training)."},
    {"memory_optimizer_states", "optimizer states per GPU", "bytes", A::kMemory, D::kEqual, T::kBytes, true,
     "Optimizer states per GPU (training; Adam)."},
    // ---- performance: simulated ----
    {"throughput_tokens_per_s", "throughput", "tokens/s", A::kPerformance, D::kAtLeast, T::kRate, true,
     "Total (input + output) tokens per second."},
    {"throughput_tokens_per_ms", "throughput", "tokens/ms", A::kPerformance, D::kAtLeast, T::kRate, true,
     "Total (input + output) tokens per millisecond."},
    {"throughput_output_tokens_per_s", "output throughput", "tokens/s", A::kPerformance, D::kAtLeast, T::kRate,
     true, "Output (generated) tokens per second."},
    {"throughput_sequences_per_s", "throughput", "sequences/s", A::kPerformance, D::kAtLeast, T::kRate, true,
     "Sequences (batch mode) or requests (serving) completed per second."},
    {"latency_s", "latency", "s", A::kPerformance, D::kAtMost, T::kSeconds, true,
     "Batch mode: one iteration of the batch; serving: end-to-end request latency (claims.statistic)."},
    {"ttft_s", "time to first token", "s", A::kPerformance, D::kAtMost, T::kSeconds, true,
     "TTFT (claims.statistic); batch mode: the prefill iteration's latency."},
    {"tpot_s", "time per output token", "s", A::kPerformance, D::kAtMost, T::kSeconds, true,
     "TPOT (claims.statistic), serving."},
    {"gpu_utilization_percent", "GPU utilisation", "%", A::kPerformance, D::kAtLeast, T::kPercent, true,
     "Share of GPU time spent computing (the time breakdown's compute fraction)."},
    {"expert_load_variance_percent", "expert load variance", "%", A::kPerformance, D::kAtMost, T::kPercent, true,
     "Spread of tokens per expert: coefficient of variation (std / mean) x 100, mean over MoE layers."},
    // ---- search ----
    {"best_plan", "plan is the best", "", A::kSearch, D::kEqual, T::kBool, true,
     "true: the document says no other plan does better (checked by the strategy search, throughput under the "
     "SLO)."},
};

std::string trim(std::string_view s) {
  std::size_t a = 0;
  std::size_t b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a])) != 0) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])) != 0) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ',') {
      if (const std::string t = trim(cur); !t.empty()) out.push_back(t);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (const std::string t = trim(cur); !t.empty()) out.push_back(t);
  return out;
}

std::string where(const Config& c, const std::string& key) { return key + " (" + c.source(key) + ")"; }

// printf-style formatting of one double; the formats are literals at every
// call site in this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
#pragma GCC diagnostic pop

std::string num(double v) {
  if (std::fabs(v) >= 1e9 && std::isfinite(v)) return fmt("%.4g", v / 1e9) + "e9";
  if (std::isfinite(v) && std::fabs(v - std::round(v)) < 1e-9 * std::max(1.0, std::fabs(v)) &&
      std::fabs(v) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(std::llround(v)));
  }
  return fmt("%.4g", v);
}

std::string i2s(std::int64_t v) { return std::to_string(v); }

std::string bytes_text(double b) {
  const double a = std::fabs(b);
  if (a >= 1e12) return fmt("%.3g TB", b / 1e12);
  if (a >= 1e9) return fmt("%.3g GB", b / 1e9);
  if (a >= 1e6) return fmt("%.3g MB", b / 1e6);
  if (a >= 1e3) return fmt("%.3g kB", b / 1e3);
  return fmt("%.0f B", b);
}

double parse_percent(const Config& c, const std::string& key) {
  std::string t = trim(c.get_string(key));
  if (!t.empty() && t.back() == '%') t = trim(std::string_view(t).substr(0, t.size() - 1));
  double v = 0.0;
  try {
    v = parse_double(t);
  } catch (const ParseError&) {
    throw InputError(where(c, key) + ": '" + c.get_string(key) + "' is not a percentage (write e.g. 95 or 95%)");
  }
  if (!(v >= 0.0) || !std::isfinite(v)) throw InputError(where(c, key) + ": a percentage must be >= 0");
  return v;
}

Tolerance parse_tolerance(const Config& c, const std::string& key, const ClaimKind* kind) {
  Tolerance t;
  std::string text = trim(c.get_string(key));
  t.text = text;
  const bool percent = !text.empty() && text.back() == '%';
  try {
    if (percent) {
      const double v = parse_double(trim(std::string_view(text).substr(0, text.size() - 1)));
      if (!(v >= 0.0) || !std::isfinite(v)) throw ParseError("negative");
      t.relative = v / 100.0;
    } else if (kind == nullptr) {
      throw ParseError("the default tolerance must be relative");
    } else if (kind->type == T::kBytes) {
      t.absolute = parse_bytes(text).as_double();
    } else if (kind->type == T::kBool) {
      throw ParseError("best_plan takes a relative tolerance");
    } else {
      const double v = parse_double(text);
      if (!(v >= 0.0) || !std::isfinite(v)) throw ParseError("negative");
      t.absolute = v;
    }
  } catch (const ParseError&) {
    std::string allowed = kind == nullptr ? "a percentage such as 5%"
                                          : "a percentage such as 10% or a non-negative amount in " +
                                                std::string(kind->unit.empty() ? "the claim's unit" : kind->unit);
    throw InputError(where(c, key) + ": bad tolerance '" + text + "' (write " + allowed + ")");
  }
  return t;
}

std::string_view role_suffix(ClaimRole r) {
  switch (r) {
    case ClaimRole::kPlan: return "";
    case ClaimRole::kReview: return "_review";
    case ClaimRole::kTarget: return "_target";
  }
  return "";
}

// ---------------------------------------------------------------------------
// The plan's facts.
// ---------------------------------------------------------------------------

struct PlanFacts {
  ModelSpec model;
  GpuSpec gpu;
  Strategy strategy;
  std::int64_t cluster = 0;
  std::string topology_name;
  std::string mode;
  WorkloadShape shape;
  MemoryOptions mem_opts;
  MemoryReport memory;
  MemoryReport memory_training;   // the same plan in training mode (for gradient/optimizer claims)
  ValidationResult validation;
};

std::int64_t get_int_or(const Config& c, const char* key, std::int64_t fallback) {
  if (c.registry().find(key) == nullptr || !c.has(key)) return fallback;
  return c.get_int(key);
}

// The workload shape the memory model needs, as the simulators use it.
// Batch mode (analysis/run_report.cpp): the batch of prompts, the KV cache
// holding each prompt and its first output token. Serving (as
// workloads/serving_sim.hpp's kv_capacity): one sequence per attention
// replica with scheduler.max_batched_tokens tokens in flight; the rest of the
// HBM is KV-cache headroom that the scheduler fills with running requests.
WorkloadShape memory_shape(const Config& c, const std::string& mode, const Strategy& strategy) {
  WorkloadShape s;
  if (mode == "serving") {
    const std::int64_t tokens = std::max<std::int64_t>(1, get_int_or(c, "scheduler.max_batched_tokens", 8192));
    s.batch = std::max<std::int64_t>(1, strategy.attention_dp());
    s.tokens_per_sequence = tokens;
    s.context_tokens = 1;
  } else {
    const std::int64_t prompt = std::max<std::int64_t>(1, get_int_or(c, "workload.prompt_tokens", 1024));
    s.batch = std::max<std::int64_t>(1, get_int_or(c, "workload.batch", 64));
    s.tokens_per_sequence = prompt;
    s.context_tokens = prompt + 1;
  }
  return s;
}

PlanFacts plan_facts(const Config& c) {
  PlanFacts f;
  f.model = model_from_config(c);
  f.gpu = gpu_from_config(c);
  const Topology topo = topology_from_config(c);
  f.cluster = topo.gpu_count();
  f.topology_name = topo.name;
  f.strategy = strategy_from_config(c, f.cluster);
  f.mode = c.registry().find("workload.kind") != nullptr ? c.get_string("workload.kind") : "batch";
  f.shape = memory_shape(c, f.mode, f.strategy);
  f.mem_opts = memory_options_from_config(c);
  f.memory = estimate_memory(f.model, f.strategy, f.gpu, f.shape, f.mem_opts);
  MemoryOptions train = f.mem_opts;
  train.mode = MemoryMode::kTraining;
  f.memory_training = estimate_memory(f.model, f.strategy, f.gpu, f.shape, train);
  f.validation = validate(f.model, f.strategy, f.cluster, f.gpu, f.shape, f.mem_opts);
  if (f.mode == "serving" && f.validation.ok()) {
    // The scheduler needs room for at least one KV block per replica.
    try {
      (void)kv_capacity(f.model, f.strategy, f.gpu, f.mem_opts, f.shape.tokens_per_sequence,
                        std::max<std::int64_t>(1, get_int_or(c, "scheduler.kv_block_tokens", 16)));
    } catch (const InputError& e) {
      f.validation.violations.push_back(std::string("KV cache: ") + e.what());
    }
  }
  return f;
}

// ---------------------------------------------------------------------------
// Comparison.
// ---------------------------------------------------------------------------

ClaimVerdict judge(const ClaimKind& k, double claimed, double value, const Tolerance& tol) {
  const double allowed = std::max(tol.allowed(claimed), 1e-9 * std::max(1.0, std::fabs(claimed)));
  switch (k.direction) {
    case D::kEqual: return std::fabs(value - claimed) <= allowed ? ClaimVerdict::kHolds : ClaimVerdict::kFails;
    case D::kAtLeast: return value >= claimed - allowed ? ClaimVerdict::kHolds : ClaimVerdict::kFails;
    case D::kAtMost: return value <= claimed + allowed ? ClaimVerdict::kHolds : ClaimVerdict::kFails;
  }
  return ClaimVerdict::kUnchecked;
}

std::string difference_text(const ClaimKind& k, double claimed, double value) {
  const double d = value - claimed;
  std::string out;
  if (k.type == T::kBytes) {
    out = (d >= 0 ? "+" : "-") + bytes_text(std::fabs(d));
  } else if (k.type == T::kPercent) {
    out = (d >= 0 ? "+" : "") + fmt("%.3g", d) + " pts";
    return out;
  } else {
    out = (d >= 0 ? "+" : "") + num(d);
  }
  if (claimed != 0.0) {
    const double ratio = value / claimed;
    if (ratio >= 2.0 || (ratio <= 0.5 && ratio > 0.0)) {
      out += " (x" + fmt("%.3g", ratio) + ")";
    } else if (std::fabs(d) > 0.0) {
      out += " (" + std::string(d >= 0 ? "+" : "") + fmt("%.3g", 100.0 * d / claimed) + "%)";
    }
  }
  return out;
}

std::string direction_text(const ClaimKind& k) {
  switch (k.direction) {
    case D::kEqual: return "";
    case D::kAtLeast: return "at least ";
    case D::kAtMost: return "at most ";
  }
  return "";
}

// ---------------------------------------------------------------------------
// Arithmetic derivations.
// ---------------------------------------------------------------------------

struct Derived {
  std::optional<double> value;
  std::map<std::string, double> readings;
  std::string explanation;
  bool either_reading = false;  // holds when any reading matches
  std::string unchecked_reason;
};

std::string conv_name(Convention c) { return std::string(to_string(c)); }

// "EP 16 x ETP 1 does not divide TP x DP = 8" when folded is not a valid reading.
std::string folded_problem(const Strategy& s) {
  const std::int64_t per_stage = s.tp * s.dp;
  if (per_stage % (s.ep * s.etp) != 0) {
    return "; the folded reading is invalid: EP " + i2s(s.ep) + " x ETP " + i2s(s.etp) +
           " does not divide TP x DP = " + i2s(per_stage);
  }
  return "";
}

double ratio(std::int64_t a, std::int64_t b) { return static_cast<double>(a) / static_cast<double>(b); }

std::string division(std::int64_t a, std::int64_t b) {
  std::string out = i2s(a) + " / " + i2s(b) + " = " + num(ratio(a, b));
  if (a % b != 0) out += " (not an integer)";
  return out;
}

Derived derive_arithmetic(const ClaimKind& k, const PlanFacts& f, const Config& c) {
  const Strategy& s = f.strategy;
  const ModelSpec& m = f.model;
  const Convention conv = s.convention;
  const std::int64_t w_fold = s.world_size(Convention::kFolded);
  const std::int64_t w_orth = s.world_size(Convention::kOrthogonal);
  const std::int64_t world = s.world_size();
  Derived d;
  const std::string key(k.key);
  if (key == "gpus") {
    d.readings = {{"folded", static_cast<double>(w_fold)}, {"orthogonal", static_cast<double>(w_orth)}};
    d.value = static_cast<double>(world);
    d.explanation = "TP x PP x EP x DP = " + i2s(s.tp) + " x " + i2s(s.pp) + " x " + i2s(s.ep) + " x " + i2s(s.dp) +
                    " = " + i2s(w_orth) + " under orthogonal, TP x PP x DP = " + i2s(s.tp) + " x " + i2s(s.pp) +
                    " x " + i2s(s.dp) + " = " + i2s(w_fold) + " under folded (EP " + i2s(s.ep) +
                    " carved out of TP x DP)" + folded_problem(s) + "; judged under " + conv_name(conv) +
                    " (strategy.convention); the cluster has " + i2s(f.cluster);
  } else if (key == "gpus_per_stage") {
    d.readings = {{"folded", ratio(w_fold, s.pp)}, {"orthogonal", ratio(w_orth, s.pp)}};
    d.value = ratio(world, s.pp);
    d.explanation = "world / PP = " + i2s(w_orth) + " / " + i2s(s.pp) + " = " + num(ratio(w_orth, s.pp)) +
                    " under orthogonal, " + i2s(w_fold) + " / " + i2s(s.pp) + " = " + num(ratio(w_fold, s.pp)) +
                    " under folded; judged under " + conv_name(conv);
  } else if (key == "experts_per_gpu") {
    d.value = ratio(m.experts, s.ep);
    const std::int64_t moe_per_stage = m.moe_layers() / std::max<std::int64_t>(1, s.pp);
    d.explanation = "experts / EP = " + division(m.experts, s.ep) + " routed experts per GPU in each MoE layer";
    if (m.experts % s.ep == 0) {
      d.explanation += " (" + i2s(m.experts / s.ep * moe_per_stage) + " expert instances over the " +
                       i2s(moe_per_stage) + " MoE layers of a stage)";
    }
    if (s.etp > 1) d.explanation += ", each split over ETP " + i2s(s.etp) + " GPUs";
  } else if (key == "expert_instances_per_gpu") {
    std::int64_t max_moe = 0;
    std::int64_t first = 0;
    const std::int64_t pp = std::max<std::int64_t>(1, s.pp);
    for (std::int64_t st = 0; st < pp; ++st) {
      const std::int64_t L = static_cast<std::int64_t>(s.layers_per_stage.size()) == pp
                                 ? s.layers_per_stage[static_cast<std::size_t>(st)]
                                 : m.layers / pp + (st < m.layers % pp ? 1 : 0);
      std::int64_t moe = 0;
      for (std::int64_t l = first; l < first + L; ++l) moe += m.is_moe_layer(l) ? 1 : 0;
      first += L;
      max_moe = std::max(max_moe, moe);
    }
    d.value = ratio(m.experts, s.ep) * static_cast<double>(max_moe);
    d.explanation = "experts / EP x MoE layers of the stage = " + num(ratio(m.experts, s.ep)) + " x " +
                    i2s(max_moe) + " = " + num(*d.value);
  } else if (key == "expert_instances") {
    d.value = static_cast<double>(m.experts * m.moe_layers());
    d.explanation = "experts x MoE layers = " + i2s(m.experts) + " x " + i2s(m.moe_layers()) + " = " +
                    i2s(m.experts * m.moe_layers());
  } else if (key == "layers_per_stage") {
    if (!s.layers_per_stage.empty()) {
      const std::int64_t mx = *std::max_element(s.layers_per_stage.begin(), s.layers_per_stage.end());
      d.value = static_cast<double>(mx);
      d.explanation = "explicit split " + c.text("strategy.layers_per_stage") + ": at most " + i2s(mx);
    } else {
      d.value = ratio(m.layers, s.pp);
      d.explanation = "layers / PP = " + division(m.layers, s.pp);
    }
  } else if (key == "hidden_per_tp_rank") {
    d.value = ratio(m.hidden, s.tp);
    d.explanation = "hidden / TP = " + division(m.hidden, s.tp);
  } else if (key == "heads_per_tp_rank") {
    d.value = ratio(m.heads, s.tp);
    d.explanation = "heads / TP = " + division(m.heads, s.tp);
  } else if (key == "expert_groups") {
    d.either_reading = true;
    d.readings = {{"expert shards (EP)", static_cast<double>(s.ep)},
                  {"all-to-all groups (world / EP)", ratio(world, s.ep)}};
    d.value = static_cast<double>(s.ep);
    d.explanation = "as expert shards: EP = " + i2s(s.ep) + " (each held by world / (EP x PP) = " +
                    num(ratio(world, s.ep * s.pp)) + " GPUs per stage); as all-to-all groups: world / EP = " +
                    i2s(world) + " / " + i2s(s.ep) + " = " + num(ratio(world, s.ep)) + " groups of " + i2s(s.ep) +
                    " GPUs (" + conv_name(conv) + ")";
  } else if (key == "gpus_per_expert_group") {
    d.either_reading = true;
    d.readings = {{"GPUs holding one expert shard (world / (EP x PP))", ratio(world, s.ep * s.pp)},
                  {"GPUs of one all-to-all group (EP)", static_cast<double>(s.ep)}};
    d.value = ratio(world, s.ep * s.pp);
    d.explanation = "GPUs holding the same expert shard in a stage: world / (EP x PP) = " + i2s(world) + " / (" +
                    i2s(s.ep) + " x " + i2s(s.pp) + ") = " + num(ratio(world, s.ep * s.pp)) +
                    "; GPUs of one all-to-all group: EP = " + i2s(s.ep) + " (" + conv_name(conv) + ")";
  } else if (key == "tensor_groups") {
    d.either_reading = true;
    d.readings = {{"TP shards (TP)", static_cast<double>(s.tp)}, {"TP groups (world / TP)", ratio(world, s.tp)}};
    d.value = static_cast<double>(s.tp);
    d.explanation = "as TP shards: TP = " + i2s(s.tp) + "; as TP groups: world / TP = " + i2s(world) + " / " +
                    i2s(s.tp) + " = " + num(ratio(world, s.tp)) + " (" + conv_name(conv) + ")";
  } else if (key == "sequences_per_replica") {
    const std::int64_t b = get_int_or(c, "workload.batch", 64);
    d.readings = {{"folded", ratio(b, s.dp)}, {"orthogonal", ratio(b, s.ep * s.dp)}};
    d.value = conv == Convention::kFolded ? ratio(b, s.dp) : ratio(b, s.ep * s.dp);
    d.explanation = "batch / attention replicas = " + i2s(b) + " / DP " + i2s(s.dp) + " = " + num(ratio(b, s.dp)) +
                    " under folded, " + i2s(b) + " / (EP x DP) " + i2s(s.ep * s.dp) + " = " +
                    num(ratio(b, s.ep * s.dp)) + " under orthogonal; judged under " + conv_name(conv);
  } else if (key == "total_params") {
    d.value = static_cast<double>(m.total_params());
    d.explanation = "the model spec (" + m.name + ", " + i2s(m.layers) + " layers, hidden " + i2s(m.hidden) + ", " +
                    i2s(m.experts) + " experts of FFN " + i2s(m.expert_ffn) + ") has " +
                    fmt("%.4g", static_cast<double>(m.total_params())) + " parameters (" +
                    fmt("%.3g", static_cast<double>(m.active_params())) + " active)";
  }
  return d;
}

Derived derive_memory(const ClaimKind& k, const PlanFacts& f) {
  const MemoryBreakdown& b = f.memory.max();
  const MemoryBreakdown& bt = f.memory_training.max();
  const double cap = f.memory.capacity.as_double();
  const double total = b.total().as_double();
  const std::string stage = "stage " + i2s(b.stage) + " (" + i2s(b.layers) + " layers; the largest of " +
                            i2s(static_cast<std::int64_t>(f.memory.stages.size())) + ")";
  const std::string mode(to_string(f.mem_opts.mode));
  Derived d;
  const std::string key(k.key);
  auto part = [&](const char* name, Bytes v) { return std::string(name) + " " + bytes_text(v.as_double()); };
  const std::string breakdown = part("weights", b.weights()) + ", " + part("KV", b.kv_cache) + ", " +
                                part("activations", b.activations) + ", " + part("buffers", b.comm_buffers) +
                                (b.gradients.count() > 0 ? ", " + part("gradients", b.gradients) : "") +
                                (b.optimizer_states.count() > 0 ? ", " + part("optimizer", b.optimizer_states) : "") +
                                ", " + part("reserve", b.reserve);
  const std::string serving_note =
      f.mode == "serving" ? " (serving: the static memory; the KV cache grows into the rest of the HBM)" : "";
  if (key == "memory_per_gpu") {
    d.value = total;
    d.explanation = mode + ", " + stage + ": " + breakdown + " = " + bytes_text(total) + " of " + bytes_text(cap) +
                    serving_note;
  } else if (key == "memory_per_gpu_percent" || key == "memory_efficiency_percent") {
    d.value = 100.0 * total / cap;
    d.explanation = (key == "memory_efficiency_percent" ? std::string("read as HBM in use / capacity: ") : "") +
                    bytes_text(total) + " / " + bytes_text(cap) + " = " + fmt("%.3g", *d.value) + "% (" + mode +
                    ", " + stage + ")" + serving_note;
  } else if (key == "memory_share_of_model_percent") {
    const double model_bytes =
        static_cast<double>(f.model.total_params()) * static_cast<double>(dtype_bytes(f.model.weight_dtype));
    d.value = 100.0 * b.weights().as_double() / model_bytes;
    d.explanation = "weights per GPU / model weights = " + bytes_text(b.weights().as_double()) + " / " +
                    bytes_text(model_bytes) + " = " + fmt("%.3g", *d.value) + " % (replicated attention, norms, "
                    "routers and embeddings count on every GPU that holds them)";
  } else if (key == "memory_weights") {
    d.value = b.weights().as_double();
    d.explanation = i2s(b.params) + " parameters x " + i2s(dtype_bytes(f.model.weight_dtype)) + " B (" +
                    std::string(to_string(f.model.weight_dtype)) + ") on " + stage;
  } else if (key == "memory_non_expert_weights") {
    d.value = (b.weights() - b.expert_weights).as_double();
    d.explanation = "attention " + bytes_text(b.attention_weights.as_double()) + " + dense/shared FFN " +
                    bytes_text((b.dense_ffn_weights + b.shared_expert_weights).as_double()) + " + routers " +
                    bytes_text(b.router_weights.as_double()) + " + embedding/head " +
                    bytes_text((b.embedding_weights + b.lm_head_weights).as_double()) + " on " + stage;
  } else if (key == "memory_expert_weights") {
    d.value = b.expert_weights.as_double();
    const std::int64_t moe = f.model.moe_layers() / std::max<std::int64_t>(1, f.strategy.pp);
    d.explanation = "MoE layers x experts / EP x " + i2s(f.model.ffn_matrices()) + " x hidden x expert FFN / ETP x " +
                    i2s(dtype_bytes(f.model.weight_dtype)) + " B = " + i2s(moe) + " x " +
                    num(ratio(f.model.experts, f.strategy.ep)) + " x " + i2s(f.model.ffn_matrices()) + " x " +
                    i2s(f.model.hidden) + " x " + i2s(f.model.expert_ffn) + " / " + i2s(f.strategy.etp) + " x " +
                    i2s(dtype_bytes(f.model.weight_dtype)) + " = " + bytes_text(*d.value) + " (" + stage + ")";
  } else if (key == "memory_kv_cache") {
    d.value = b.kv_cache.as_double();
    d.explanation = f.mode == "serving"
                        ? "serving: one token per replica here; the scheduler fills the free HBM with KV blocks, " +
                              stage
                        : mode + ": " + i2s(f.shape.batch) + " sequences x " + i2s(f.shape.context_tokens) +
                              " context tokens over the replicas, " + stage;
  } else if (key == "memory_activations") {
    d.value = b.activations.as_double();
    d.explanation = f.mode == "serving"
                        ? mode + " activations of one iteration of " + i2s(f.shape.tokens_per_sequence) +
                              " batched tokens per replica (scheduler.max_batched_tokens), " + stage
                        : mode + " activations for " + i2s(f.shape.batch) + " sequences of " +
                              i2s(f.shape.tokens_per_sequence) + " tokens, " + i2s(f.strategy.microbatches) +
                              " micro-batches (workloads/memory_model.hpp), " + stage;
  } else if (key == "memory_comm_buffers") {
    d.value = b.comm_buffers.as_double();
    d.explanation = "all-to-all send/receive buffers + NCCL buffers (memory.nccl_buffer), " + stage;
  } else if (key == "memory_gradients" || key == "memory_optimizer_states") {
    const bool grads = key == "memory_gradients";
    d.value = (grads ? b.gradients : b.optimizer_states).as_double();
    const double train = (grads ? bt.gradients : bt.optimizer_states).as_double();
    if (f.mem_opts.mode == MemoryMode::kInference) {
      d.explanation = "an inference deployment holds none; in training mode (" +
                      std::string(grads ? "bf16 gradients" : "Adam: fp32 master + 2 moments, 12 B/param") +
                      ", ZeRO " + i2s(f.mem_opts.zero_stage) + ") it would be " + bytes_text(train);
    } else {
      d.explanation = i2s(b.params) + " parameters x " + (grads ? std::string("2 B (bf16)") : "12 B (Adam)") +
                      ", ZeRO " + i2s(f.mem_opts.zero_stage) + ", " + stage;
    }
  }
  return d;
}

// ---------------------------------------------------------------------------
// Performance.
// ---------------------------------------------------------------------------

std::optional<double> perf_value(const ClaimKind& k, const PerformanceMetrics& p) {
  const std::string key(k.key);
  auto scaled = [](std::optional<double> v, double s) -> std::optional<double> {
    if (!v) return std::nullopt;
    return *v * s;
  };
  if (key == "throughput_tokens_per_s") return p.tokens_per_s;
  if (key == "throughput_tokens_per_ms") return scaled(p.tokens_per_s, 1e-3);
  if (key == "throughput_output_tokens_per_s") return p.output_tokens_per_s;
  if (key == "throughput_sequences_per_s") return p.sequences_per_s;
  if (key == "latency_s") return p.latency_s;
  if (key == "ttft_s") return p.ttft_s;
  if (key == "tpot_s") return p.tpot_s;
  if (key == "gpu_utilization_percent") return scaled(p.gpu_utilization, 100.0);
  if (key == "expert_load_variance_percent") {
    if (p.expert_load_cv) return *p.expert_load_cv * 100.0;
    return std::nullopt;
  }
  return std::nullopt;
}

std::string perf_explanation(const ClaimKind& k, const PerformanceMetrics& p, const std::string& statistic) {
  const std::string key(k.key);
  // The simulation's details (requests, network) are in the report's header.
  std::string out = "simulated " + p.mode;
  if (key == "ttft_s" || key == "tpot_s" || (key == "latency_s" && p.mode == "serving")) {
    out += ", " + statistic;
  }
  if (key == "expert_load_variance_percent" && p.expert_load_imbalance) {
    out += "; max/mean tokens per expert " + fmt("%.3g", *p.expert_load_imbalance);
  }
  if ((key == "throughput_tokens_per_s" || key == "throughput_tokens_per_ms") && p.output_tokens_per_s &&
      p.mode == "serving") {
    out += "; output tokens only: " + fmt("%.4g", *p.output_tokens_per_s) + " tokens/s";
  }
  return out;
}

// ---------------------------------------------------------------------------
// Sensitivity.
// ---------------------------------------------------------------------------

struct VariantPoint {
  std::string label;
  std::vector<std::pair<std::string, std::string>> overrides;
};
struct VariantGroup {
  std::string key;
  std::string range;
  std::vector<VariantPoint> points;
};

bool assumed(const std::vector<AssumptionRecord>& a, const std::string& key) {
  return std::any_of(a.begin(), a.end(), [&](const AssumptionRecord& r) { return r.source == "assumed" && r.key == key; });
}
bool assumed_prefix(const std::vector<AssumptionRecord>& a, const std::string& prefix) {
  return std::any_of(a.begin(), a.end(),
                     [&](const AssumptionRecord& r) { return r.source == "assumed" && r.key.rfind(prefix, 0) == 0; });
}

// GPU presets of the 64-80 GB class (what a document that says "64GB" could
// have been deployed on): gpu64, a100-64g, a100-80g, h100-sxm, h800.
const std::vector<std::string> kGpuClass = {"gpu64", "a100-64g", "a100-80g", "h100-sxm", "h800"};

std::vector<VariantGroup> sensitivity_groups(const Config& c, const std::vector<AssumptionRecord>& a,
                                             const std::string& mode) {
  std::vector<VariantGroup> groups;
  auto scale_int = [&](const char* key, const char* what) {
    if (c.registry().find(key) == nullptr || !c.has(key) || !assumed(a, key)) return;
    const std::int64_t v = c.get_int(key);
    VariantGroup g;
    g.key = key;
    const std::int64_t lo = std::max<std::int64_t>(1, v / 2);
    const std::int64_t hi = v * 2;
    g.range = std::string(what) + " x0.5 .. x2 (" + i2s(lo) + " .. " + i2s(hi) + ")";
    g.points.push_back({i2s(lo), {{key, i2s(lo)}}});
    g.points.push_back({i2s(hi), {{key, i2s(hi)}}});
    groups.push_back(std::move(g));
  };
  scale_int("workload.prompt_tokens", "prompt length");
  if (mode == "serving") scale_int("workload.output_tokens", "output length");
  if (mode == "batch") scale_int("workload.batch", "batch");
  if (mode == "serving" && c.registry().find("workload.rate") != nullptr && c.has("workload.rate") &&
      assumed(a, "workload.rate")) {
    const double r = c.get_double("workload.rate");
    VariantGroup g;
    g.key = "workload.rate";
    g.range = "arrival rate x0.5 .. x2 (" + fmt("%.4g", r / 2) + " .. " + fmt("%.4g", r * 2) + " requests/s)";
    g.points.push_back({fmt("%.4g", r / 2), {{"workload.rate", fmt("%.9g", r / 2)}}});
    g.points.push_back({fmt("%.4g", r * 2), {{"workload.rate", fmt("%.9g", r * 2)}}});
    groups.push_back(std::move(g));
  }
  if (assumed_prefix(a, "gpu.")) {
    VariantGroup g;
    g.key = "gpu.preset";
    g.range = "the 64-80 GB class (gpu64, a100-64g, a100-80g, h100-sxm, h800)";
    const std::string current = c.get_string("gpu.preset");
    for (const std::string& p : kGpuClass) {
      if (p != current) g.points.push_back({p, {{"gpu.preset", p}}});
    }
    groups.push_back(std::move(g));
  }
  if (assumed_prefix(a, "routing.")) {
    VariantGroup g;
    g.key = "routing";
    g.range = "zipf skew 0 .. 1.2 (0 = uniform popularity)";
    for (const char* s : {"0", "0.6", "1.2"}) {
      g.points.push_back({std::string("zipf ") + s, {{"routing.distribution", "zipf"}, {"routing.skew", s}}});
    }
    groups.push_back(std::move(g));
  }
  if (assumed_prefix(a, "network.") || assumed_prefix(a, "topology.")) {
    try {
      const Topology topo = topology_from_config(c);
      const NetworkParams np = network_params_from_config(c, topo);
      VariantGroup g;
      g.key = "network efficiency";
      g.range = "every link class's efficiency x0.8 .. x1.2 (capped at 1)";
      static const char* kKeys[] = {"network.nvlink_efficiency", "network.pcie_efficiency", "network.nic_efficiency",
                                    "network.fabric_efficiency"};
      for (double factor : {0.8, 1.2}) {
        VariantPoint p;
        p.label = "x" + fmt("%.1f", factor);
        for (std::size_t i = 0; i < np.efficiency.size() && i < 4; ++i) {
          p.overrides.emplace_back(kKeys[i], fmt("%.6g", std::min(1.0, np.efficiency[i] * factor)));
        }
        g.points.push_back(std::move(p));
      }
      groups.push_back(std::move(g));
    } catch (const InputError&) {
      // No network parameters to vary (reported by the base run if it matters).
    }
  }
  return groups;
}

std::string value_with_unit(const ClaimKind& k, double v) {
  std::string s = format_claim_number(v, k.type);
  if (k.type == T::kCount || k.type == T::kRate) {
    if (!k.unit.empty()) s += " " + std::string(k.unit);
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------

std::string_view to_string(ClaimVerdict v) {
  switch (v) {
    case ClaimVerdict::kHolds: return "holds";
    case ClaimVerdict::kFails: return "fails";
    case ClaimVerdict::kUnchecked: return "unchecked";
  }
  return "unchecked";
}

const std::vector<ClaimKind>& claim_kinds() { return kKinds; }

const ClaimKind* find_claim_kind(std::string_view key) {
  for (const ClaimKind& k : kKinds) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

WorkloadShape scenario_memory_shape(const Config& config, const Strategy& strategy) {
  const std::string mode =
      config.registry().find("workload.kind") != nullptr ? config.get_string("workload.kind") : "batch";
  return memory_shape(config, mode, strategy);
}

double Tolerance::allowed(double claimed) const { return std::max(absolute, relative * std::fabs(claimed)); }

std::string format_claim_number(double v, ClaimValueType type) {
  switch (type) {
    case T::kBytes: return bytes_text(v);
    case T::kPercent: return fmt("%.3g", v) + "%";
    case T::kSeconds: return fmt("%.4g", v) + " s";
    case T::kBool: return v != 0.0 ? "true" : "false";
    case T::kCount:
    case T::kRate: return num(v);
  }
  return num(v);
}

std::vector<Claim> claims_from_config(const Config& c) {
  std::optional<Tolerance> global;
  auto global_tol = [&]() -> Tolerance {
    if (!global) global = parse_tolerance(c, "claims.tolerance", nullptr);
    return *global;
  };
  std::vector<Claim> out;
  for (const ClaimKind& k : kKinds) {
    const std::string base = "claims." + std::string(k.key);
    const std::string tol_key = base + "_tolerance";
    std::optional<Tolerance> own;
    if (c.registry().find(tol_key) != nullptr && c.is_set(tol_key)) own = parse_tolerance(c, tol_key, &k);
    for (ClaimRole role : {ClaimRole::kPlan, ClaimRole::kReview, ClaimRole::kTarget}) {
      const std::string key = base + std::string(role_suffix(role));
      if (c.registry().find(key) == nullptr || !c.is_set(key)) continue;
      Claim cl;
      cl.name = key.substr(7);
      cl.kind = &k;
      cl.role = role;
      cl.claimed_text = c.text(key);
      cl.source = c.source(key);
      switch (k.type) {
        case T::kBytes: cl.claimed = c.get_bytes(key).as_double(); break;
        case T::kPercent: cl.claimed = parse_percent(c, key); break;
        case T::kBool: cl.claimed = c.get_bool(key) ? 1.0 : 0.0; break;
        case T::kCount:
        case T::kSeconds:
        case T::kRate: cl.claimed = c.get_double(key); break;
      }
      if (own) {
        cl.tolerance = *own;
      } else if (k.approximate) {
        cl.tolerance = global_tol();
      }
      out.push_back(std::move(cl));
    }
  }
  if (c.is_set("claims.tolerance")) (void)global_tol();  // report a malformed default even when unused
  return out;
}

std::vector<AssumptionRecord> assumptions_from_config(const Config& c) {
  std::vector<AssumptionRecord> out;
  std::set<std::string> seen;
  auto value_of = [&](const std::string& key) -> std::string {
    if (c.has(key)) return c.text(key);
    if (key.rfind("model.", 0) == 0) return "(from model.preset " + c.get_string("model.preset") + ")";
    if (key.rfind("gpu.", 0) == 0) return "(from gpu.preset " + c.get_string("gpu.preset") + ")";
    return "(unset)";
  };
  for (const char* list : {"assumptions.document", "assumptions.assumed"}) {
    if (c.registry().find(list) == nullptr || !c.has(list)) continue;
    const std::string source = std::string(list) == "assumptions.document" ? "document" : "assumed";
    for (const std::string& key : split_list(c.get_string(list))) {
      if (c.registry().find(key) == nullptr) {
        std::string msg = where(c, list) + ": unknown scenario key '" + key + "'";
        if (const std::string guess = c.registry().closest(key); !guess.empty()) msg += "; did you mean '" + guess + "'?";
        throw InputError(msg);
      }
      if (!seen.insert(key).second) {
        throw InputError(where(c, list) + ": '" + key +
                         "' is listed twice (in assumptions.document and assumptions.assumed, or repeated); a key is "
                         "either stated by the document or assumed");
      }
      out.push_back({key, value_of(key), source, true});
    }
  }
  for (const auto& [key, text] : c.resolved()) {
    if (!c.is_set(key) || seen.count(key) != 0) continue;
    if (key.rfind("claims.", 0) == 0 || key.rfind("assumptions.", 0) == 0 || key.rfind("run.", 0) == 0) continue;
    out.push_back({key, text, "assumed", false});
  }
  return out;
}

bool VerifyReport::any_fails() const { return count(ClaimVerdict::kFails) > 0; }

std::size_t VerifyReport::count(ClaimVerdict v) const {
  return static_cast<std::size_t>(
      std::count_if(claims.begin(), claims.end(), [&](const ClaimResult& r) { return r.verdict == v; }));
}

VerifyReport verify_claims(const Config& config, const PerformanceFn& perf, const SearchFn& search,
                           const VerifyOptions& options) {
  VerifyReport report;
  report.scenario = config.scenario_path();
  const std::vector<Claim> claims = claims_from_config(config);
  report.assumptions = assumptions_from_config(config);
  const PlanFacts f = plan_facts(config);
  report.plan = f.strategy.describe();
  report.convention = conv_name(f.strategy.convention);
  report.mode = f.mode;
  report.cluster_gpus = f.cluster;
  report.plan_valid = f.validation.ok();
  report.violations = f.validation.violations;

  const bool want_perf = std::any_of(claims.begin(), claims.end(), [](const Claim& c) {
    return c.kind->category == ClaimCategory::kPerformance;
  });
  std::optional<PerformanceMetrics> base;
  std::string perf_unchecked;
  if (want_perf) {
    if (!report.plan_valid) {
      std::string v;
      for (const std::string& s : f.validation.violations) {
        v += (v.empty() ? "" : "; ") + s.substr(0, s.find('\n'));
      }
      perf_unchecked = "the plan is invalid: " + v;
    } else if (!perf) {
      perf_unchecked = "no simulator for workload.kind = " + f.mode + " in this build";
    } else {
      try {
        base = perf(config, options.statistic);
        report.performance_note = "simulated " + base->mode + (base->note.empty() ? "" : ": " + base->note);
      } catch (const InputError& e) {
        perf_unchecked = std::string("the simulation could not run: ") + e.what();
      }
    }
  }

  // Sensitivity runs, shared by every performance claim.
  struct PointRun {
    std::string label;
    std::optional<PerformanceMetrics> metrics;
    std::string error;
  };
  std::vector<std::pair<VariantGroup, std::vector<PointRun>>> sens;
  const bool any_perf_verdict = base.has_value();
  if (any_perf_verdict && options.sensitivity) {
    for (VariantGroup& g : sensitivity_groups(config, report.assumptions, f.mode)) {
      std::vector<PointRun> runs;
      for (const VariantPoint& p : g.points) {
        PointRun r;
        r.label = p.label;
        Config varied = config;
        try {
          for (const auto& [k, v] : p.overrides) varied.set(k, v, "sensitivity analysis");
          if (options.progress) options.progress(g.key + " = " + p.label);
          const PlanFacts vf = plan_facts(varied);
          if (!vf.validation.ok()) {
            r.error = "plan invalid";
          } else {
            r.metrics = perf(varied, options.statistic);
          }
        } catch (const InputError& e) {
          r.error = e.what();
        }
        runs.push_back(std::move(r));
      }
      sens.emplace_back(std::move(g), std::move(runs));
    }
  }

  for (const Claim& cl : claims) {
    const ClaimKind& k = *cl.kind;
    ClaimResult r;
    r.name = cl.name;
    r.label = std::string(k.label);
    if (cl.role == ClaimRole::kReview) r.label += " (review)";
    if (cl.role == ClaimRole::kTarget) r.label += " (target)";
    r.unit = std::string(k.unit);
    r.category = k.category;
    r.type = k.type;
    r.role = cl.role;
    r.claimed = cl.claimed;
    r.claimed_text = cl.claimed_text;
    if (k.type == T::kPercent && r.claimed_text.find('%') == std::string::npos) r.claimed_text += "%";
    r.tolerance_text = cl.tolerance.text;
    r.value_text = "-";
    r.difference_text = "-";
    const std::string claimed_str = direction_text(k) + value_with_unit(k, cl.claimed);

    Derived d;
    if (k.category == ClaimCategory::kArithmetic) {
      d = derive_arithmetic(k, f, config);
    } else if (k.category == ClaimCategory::kMemory) {
      d = derive_memory(k, f);
    } else if (k.category == ClaimCategory::kPerformance) {
      if (!base) {
        d.unchecked_reason = perf_unchecked;
      } else {
        d.value = perf_value(k, *base);
        if (!d.value) {
          d.unchecked_reason = std::string("the ") + base->mode + " simulation does not measure " +
                               std::string(k.label) + (base->mode == "batch" && k.key == "tpot_s"
                                                           ? " (batch mode has no decode; use workload.kind = serving)"
                                                           : "");
        } else {
          d.explanation = perf_explanation(k, *base, options.statistic);
        }
      }
    } else {  // search
      if (!report.plan_valid) {
        d.unchecked_reason = "the plan is invalid, so it cannot be the best valid plan";
        r.verdict = ClaimVerdict::kFails;
        d.value = 0.0;
        d.explanation = "the plan is invalid (see the violations), so it is not the best valid plan";
        d.unchecked_reason.clear();
      } else if (!search) {
        d.unchecked_reason = "no strategy search in this build";
      } else {
        try {
          const BestPlanAnswer ans = search(config);
          // Best within the tolerance: as much throughput and as low a
          // TTFT/latency as the best plan, each within the tolerance (at a
          // fixed offered load the throughputs tie, and TTFT decides).
          const double tol = std::max(cl.tolerance.relative, 0.0);
          const bool best = ans.plan_throughput >= ans.best_throughput * (1.0 - tol) &&
                            ans.plan_latency_s <= ans.best_latency_s * (1.0 + tol);
          d.value = best ? 1.0 : 0.0;
          const double gap = ans.best_throughput > 0.0 ? 1.0 - ans.plan_throughput / ans.best_throughput : 0.0;
          d.explanation = "searched " + i2s(ans.plans_evaluated) + " valid plans (" + ans.note + "): best " +
                          ans.best_plan + " at " + fmt("%.4g", ans.best_throughput) + " " + ans.throughput_unit +
                          ", " + ans.latency_label + " " + fmt("%.4g", ans.best_latency_s) + " s; this plan ranks " +
                          i2s(ans.rank) + " of " + i2s(ans.ranked) + " at " + fmt("%.4g", ans.plan_throughput) +
                          ", " + ans.latency_label + " " + fmt("%.4g", ans.plan_latency_s) + " s" +
                          (ans.rank == 1 ? std::string(" (the best)")
                           : gap > 0.0 ? " (" + fmt("%.3g", 100.0 * gap) + "% less throughput)"
                                       : std::string("")) +
                          "; best = within the tolerance of the best's throughput and " + ans.latency_label;
        } catch (const InputError& e) {
          d.unchecked_reason = std::string("the search could not run: ") + e.what();
        }
      }
    }

    if (d.value) {
      r.value = *d.value;
      r.readings = d.readings;
      if (k.type == T::kBool) {
        r.value_text = *d.value != 0.0 ? "true" : "false";
        r.verdict = (*d.value != 0.0) == (cl.claimed != 0.0) ? ClaimVerdict::kHolds : ClaimVerdict::kFails;
        r.explanation = d.explanation;
      } else {
        ClaimVerdict v = judge(k, cl.claimed, *d.value, cl.tolerance);
        std::string matched;
        if (d.either_reading && v == ClaimVerdict::kFails) {
          for (const auto& [reading, value] : d.readings) {
            if (judge(k, cl.claimed, value, cl.tolerance) == ClaimVerdict::kHolds) {
              v = ClaimVerdict::kHolds;
              r.value = value;
              matched = reading;
            }
          }
        }
        r.verdict = v;
        r.value_text = value_with_unit(k, *r.value);
        r.difference_text = difference_text(k, cl.claimed, *r.value);
        r.explanation = d.explanation + "; claimed " + claimed_str;
        if (!matched.empty()) r.explanation += "; holds as " + matched;
        if (!cl.tolerance.text.empty()) r.explanation += " (tolerance " + cl.tolerance.text + ")";
        // A convention-dependent claim that holds only under the other convention.
        if (!d.either_reading && d.readings.size() == 2 && v == ClaimVerdict::kFails) {
          for (const auto& [reading, value] : d.readings) {
            if (reading != report.convention && judge(k, cl.claimed, value, cl.tolerance) == ClaimVerdict::kHolds) {
              r.explanation += "; it would hold under " + reading;
            }
          }
        }
      }
    } else {
      r.verdict = ClaimVerdict::kUnchecked;
      r.explanation = "unchecked: " + d.unchecked_reason;
    }

    // Sensitivity of performance verdicts.
    if (k.category == ClaimCategory::kPerformance && r.verdict != ClaimVerdict::kUnchecked) {
      for (const auto& [g, runs] : sens) {
        SensitivityResult s;
        s.key = g.key;
        s.range = g.range;
        for (const PointRun& run : runs) {
          s.tried.push_back(run.label);
          std::optional<double> v;
          if (run.metrics) v = perf_value(k, *run.metrics);
          s.values.push_back(v);
          if (!v) continue;
          if (judge(k, cl.claimed, *v, cl.tolerance) != r.verdict) {
            s.flips = true;
            s.flips_at += (s.flips_at.empty() ? "" : ", ") + run.label + " (" + value_with_unit(k, *v) + ")";
          }
        }
        r.sensitivity.push_back(std::move(s));
      }
    }
    report.claims.push_back(std::move(r));
  }
  return report;
}

// ---------------------------------------------------------------------------
// Reports.
// ---------------------------------------------------------------------------

namespace {

std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s.resize(w, ' ');
  return s;
}

std::string verdict_word(ClaimVerdict v) {
  switch (v) {
    case ClaimVerdict::kHolds: return "holds";
    case ClaimVerdict::kFails: return "FAILS";
    case ClaimVerdict::kUnchecked: return "unchecked";
  }
  return "";
}

// "low .. high" of the values a sensitivity group produced.
std::string value_span(const SensitivityResult& s, const ClaimResult& r) {
  std::optional<double> lo;
  std::optional<double> hi;
  for (const auto& v : s.values) {
    if (!v) continue;
    lo = lo ? std::min(*lo, *v) : *v;
    hi = hi ? std::max(*hi, *v) : *v;
  }
  if (!lo) return "no run completed";
  return format_claim_number(*lo, r.type) + " .. " + format_claim_number(*hi, r.type);
}

std::string sensitivity_line(const ClaimResult& r) {
  std::string flips;
  std::string stable;
  for (const SensitivityResult& s : r.sensitivity) {
    if (s.flips) {
      flips += (flips.empty() ? "" : "; ") + s.key + " over " + s.range + " flips it at " + s.flips_at;
    } else {
      stable += (stable.empty() ? "" : "; ") + s.key + " " + value_span(s, r);
    }
  }
  if (r.sensitivity.empty()) return "";
  std::string out = flips.empty() ? "no assumed input flips it" : flips;
  if (!stable.empty()) out += " (verdict unchanged over: " + stable + ")";
  return out;
}

std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string format_verify_report(const VerifyReport& r) {
  std::ostringstream o;
  o << "Scenario: " << (r.scenario.empty() ? "(built-in)" : r.scenario) << "\n";
  o << "Plan:     " << r.plan << " on a " << r.cluster_gpus << "-GPU cluster, workload " << r.mode << "\n";
  o << "Validity: " << (r.plan_valid ? "valid" : "INVALID") << "\n";
  for (const std::string& v : r.violations) o << "  - " << v << "\n";
  if (!r.performance_note.empty()) o << "Simulation: " << r.performance_note << "\n";
  o << "\n";
  std::size_t wn = 5;
  std::size_t wc = 7;
  std::size_t wv = 6;
  std::size_t wd = 10;
  for (const ClaimResult& c : r.claims) {
    wn = std::max(wn, c.name.size());
    wc = std::max(wc, c.claimed_text.size());
    wv = std::max(wv, c.value_text.size());
    wd = std::max(wd, c.difference_text.size());
  }
  o << pad("claim", wn + 2) << pad("claimed", wc + 2) << pad("moesim", wv + 2) << pad("difference", wd + 2)
    << "verdict\n";
  o << std::string(wn + wc + wv + wd + 8 + 9, '-') << "\n";
  for (const ClaimResult& c : r.claims) {
    o << pad(c.name, wn + 2) << pad(c.claimed_text, wc + 2) << pad(c.value_text, wv + 2)
      << pad(c.difference_text, wd + 2) << verdict_word(c.verdict) << "\n";
    o << "    " << c.explanation << "\n";
    if (const std::string s = sensitivity_line(c); !s.empty()) o << "    sensitivity: " << s << "\n";
  }
  o << "\n"
    << r.claims.size() << " claims: " << r.count(ClaimVerdict::kHolds) << " hold, " << r.count(ClaimVerdict::kFails)
    << " fail, " << r.count(ClaimVerdict::kUnchecked) << " unchecked\n";
  if (!r.assumptions.empty()) {
    o << "\nAssumptions (source: document = stated by the document, assumed = chosen by the scenario)\n";
    std::size_t wk = 3;
    std::size_t wval = 5;
    for (const AssumptionRecord& a : r.assumptions) {
      wk = std::max(wk, a.key.size());
      wval = std::max(wval, a.value.size());
    }
    o << pad("key", wk + 2) << pad("value", wval + 2) << "source\n";
    for (const AssumptionRecord& a : r.assumptions) {
      o << pad(a.key, wk + 2) << pad(a.value, wval + 2) << a.source
        << (a.listed ? "" : " (set by the scenario but not listed in [assumptions])") << "\n";
    }
  }
  return o.str();
}

std::string format_verify_markdown(const VerifyReport& r) {
  std::ostringstream o;
  o << "Plan: " << r.plan << " on a " << r.cluster_gpus << "-GPU cluster, workload " << r.mode << "; "
    << (r.plan_valid ? "valid" : "**invalid**") << ".";
  if (!r.performance_note.empty()) o << " " << md_escape(r.performance_note) << ".";
  o << "\n\n";
  if (!r.violations.empty()) {
    for (const std::string& v : r.violations) o << "- violation: " << md_escape(v.substr(0, v.find('\n'))) << "\n";
    o << "\n";
  }
  o << "| claim | claimed | moesim | difference | verdict | explanation |\n";
  o << "|---|---|---|---|---|---|\n";
  for (const ClaimResult& c : r.claims) {
    std::string expl = c.explanation;
    if (const std::string s = sensitivity_line(c); !s.empty()) expl += ". Sensitivity: " + s;
    o << "| " << md_escape(c.name) << " | " << md_escape(c.claimed_text) << " | " << md_escape(c.value_text) << " | "
      << md_escape(c.difference_text) << " | "
      << (c.verdict == ClaimVerdict::kFails ? "**fails**" : std::string(to_string(c.verdict))) << " | "
      << md_escape(expl) << " |\n";
  }
  o << "\n" << r.claims.size() << " claims: " << r.count(ClaimVerdict::kHolds) << " hold, "
    << r.count(ClaimVerdict::kFails) << " fail, " << r.count(ClaimVerdict::kUnchecked) << " unchecked.\n";
  return o.str();
}

nlohmann::json verify_report_json(const VerifyReport& r) {
  nlohmann::json j;
  j["scenario"] = r.scenario;
  j["plan"] = {{"description", r.plan}, {"convention", r.convention}, {"valid", r.plan_valid},
               {"violations", r.violations}, {"cluster_gpus", r.cluster_gpus}, {"mode", r.mode}};
  j["simulation"] = r.performance_note;
  nlohmann::json claims = nlohmann::json::array();
  for (const ClaimResult& c : r.claims) {
    nlohmann::json e;
    e["name"] = c.name;
    e["label"] = c.label;
    e["claimed"] = c.claimed;
    e["claimed_text"] = c.claimed_text;
    e["value"] = c.value ? nlohmann::json(*c.value) : nlohmann::json(nullptr);
    e["unit"] = c.unit;
    e["verdict"] = std::string(to_string(c.verdict));
    e["explanation"] = c.explanation;
    e["difference"] = c.difference_text;
    if (!c.tolerance_text.empty()) e["tolerance"] = c.tolerance_text;
    if (!c.readings.empty()) e["readings"] = c.readings;
    if (!c.sensitivity.empty()) {
      nlohmann::json sens = nlohmann::json::array();
      for (const SensitivityResult& s : c.sensitivity) {
        nlohmann::json values = nlohmann::json::array();
        for (const auto& v : s.values) values.push_back(v ? nlohmann::json(*v) : nlohmann::json(nullptr));
        sens.push_back({{"key", s.key}, {"range", s.range}, {"tried", s.tried}, {"values", values},
                        {"flips", s.flips}, {"flips_at", s.flips_at}});
      }
      e["sensitivity"] = sens;
    }
    claims.push_back(e);
  }
  j["claims"] = claims;
  nlohmann::json assumptions = nlohmann::json::array();
  for (const AssumptionRecord& a : r.assumptions) {
    assumptions.push_back({{"key", a.key}, {"value", a.value}, {"source", a.source}, {"listed", a.listed}});
  }
  j["assumptions"] = assumptions;
  j["summary"] = {{"holds", r.count(ClaimVerdict::kHolds)},
                  {"fails", r.count(ClaimVerdict::kFails)},
                  {"unchecked", r.count(ClaimVerdict::kUnchecked)}};
  return j;
}

}  // namespace moesim
