#include "workloads/memory_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "sim/options.hpp"

namespace moesim {
namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return b <= 0 ? a : (a + b - 1) / b; }
std::int64_t at_least_1(std::int64_t v) { return v < 1 ? 1 : v; }

// Bytes of `elements` elements of `bytes_each` bytes.
Bytes elems(std::int64_t elements, std::int64_t bytes_each) { return Bytes(elements) * bytes_each; }

// Bytes of a real-valued quantity, rounded up.
Bytes real_bytes(double v) { return Bytes(static_cast<std::int64_t>(std::ceil(v))); }

// Layers of each stage: the explicit split when it is well formed, else an
// even split with the remainder on the first stages (validate() reports a
// non-divisible split).
std::vector<std::int64_t> stage_layers(const ModelSpec& m, const Strategy& s, std::int64_t pp) {
  if (static_cast<std::int64_t>(s.layers_per_stage.size()) == pp) return s.layers_per_stage;
  std::vector<std::int64_t> out(static_cast<std::size_t>(pp), m.layers / pp);
  for (std::int64_t i = 0; i < m.layers % pp; ++i) ++out[static_cast<std::size_t>(i)];
  return out;
}

std::string gib(Bytes b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b.as_double() / static_cast<double>(1LL << 30));
  return buf;
}

}  // namespace

std::string_view to_string(MemoryMode m) { return m == MemoryMode::kInference ? "inference" : "training"; }

Bytes MemoryBreakdown::weights() const {
  return attention_weights + dense_ffn_weights + expert_weights + shared_expert_weights + router_weights +
         embedding_weights + lm_head_weights;
}

Bytes MemoryBreakdown::total() const {
  Bytes t{};
  for (const auto& [key, b] : items()) t += b;
  return t;
}

std::vector<std::pair<std::string, Bytes>> MemoryBreakdown::items() const {
  return {{"attention_weights", attention_weights},
          {"dense_ffn_weights", dense_ffn_weights},
          {"expert_weights", expert_weights},
          {"shared_expert_weights", shared_expert_weights},
          {"router_weights", router_weights},
          {"embedding_weights", embedding_weights},
          {"lm_head_weights", lm_head_weights},
          {"kv_cache", kv_cache},
          {"activations", activations},
          {"comm_buffers", comm_buffers},
          {"gradients", gradients},
          {"optimizer_states", optimizer_states},
          {"reserve", reserve}};
}

MemoryReport estimate_memory(const ModelSpec& m, const Strategy& s, const GpuSpec& gpu, const WorkloadShape& shape,
                             const MemoryOptions& opt) {
  if (shape.batch < 1) throw InputError("memory model: the batch must be >= 1 sequence (is " + std::to_string(shape.batch) + ")");
  if (shape.tokens_per_sequence < 1) {
    throw InputError("memory model: tokens per sequence must be >= 1 (is " + std::to_string(shape.tokens_per_sequence) + ")");
  }
  if (shape.context_tokens < 1) {
    throw InputError("memory model: context tokens must be >= 1 (is " + std::to_string(shape.context_tokens) + ")");
  }
  if (opt.zero_stage < 0 || opt.zero_stage > 3) {
    throw InputError("memory.zero must be 0, 1, 2 or 3 (is " + std::to_string(opt.zero_stage) + ")");
  }

  // Degrees, clamped so that an invalid strategy still gives a breakdown.
  const std::int64_t tp = at_least_1(s.tp);
  const std::int64_t pp = std::min(at_least_1(s.pp), at_least_1(m.layers));
  const std::int64_t ep = at_least_1(s.ep);
  const std::int64_t etp = at_least_1(s.etp);
  const std::int64_t mb = at_least_1(s.microbatches);
  const std::int64_t adp = at_least_1(s.convention == Convention::kFolded ? s.dp : s.ep * s.dp);
  const std::int64_t per_stage = at_least_1(s.convention == Convention::kFolded ? tp * s.dp : tp * ep * s.dp);
  const std::int64_t edp = at_least_1(per_stage / (etp * ep));
  const bool training = opt.mode == MemoryMode::kTraining;

  const std::int64_t bw = dtype_bytes(m.weight_dtype);
  const std::int64_t ba = dtype_bytes(m.activation_dtype);
  const std::int64_t bd = dtype_bytes(m.dispatch_dtype);
  const std::int64_t bkv = dtype_bytes(m.kv_dtype);
  const std::int64_t h = m.hidden;
  const std::int64_t mf = m.ffn_matrices();

  // Attention weights per GPU per layer (elements).
  std::int64_t attn_elems = 0;
  std::int64_t kv_split = 1;  // how many TP ranks share the K/V heads
  if (m.attention == AttentionKind::kGqa) {
    kv_split = std::min(tp, at_least_1(m.kv_heads));
    const std::int64_t sharded = m.attention_tp_sharded_params();
    const std::int64_t kv = m.attention_kv_params();
    const std::int64_t replicated = m.attention_params_per_layer() - sharded - kv;
    attn_elems = ceil_div(sharded, tp) + ceil_div(kv, kv_split) + replicated;
  } else {
    const std::int64_t sharded = m.attention_tp_sharded_params();
    attn_elems = ceil_div(sharded, tp) + (m.attention_params_per_layer() - sharded);
  }
  attn_elems += m.norm_params_per_layer();

  // Per-token activation widths on one TP rank (attention): Q, K, V and the
  // attention output. MLA in its decompressed form (heads x qk_dim for Q/K,
  // heads x v_dim for V and the output).
  std::int64_t attn_act = 0;
  if (m.attention == AttentionKind::kGqa) {
    attn_act = ceil_div(2 * m.heads * m.head_dim, tp) + ceil_div(2 * m.kv_heads * m.head_dim, kv_split);
  } else {
    attn_act = ceil_div(m.heads * (2 * m.attention_qk_dim() + 2 * m.attention_v_dim()), tp);
  }

  // Tokens of one micro-batch on one attention replica, and the routed
  // assignments a GPU sends/receives for them (balanced average; see header).
  const std::int64_t seqs = ceil_div(shape.batch, adp);
  const std::int64_t mb_seqs = ceil_div(seqs, mb);
  const std::int64_t T = mb_seqs * shape.tokens_per_sequence;
  const double routed = static_cast<double>(T) * static_cast<double>(m.top_k) * static_cast<double>(etp) /
                        static_cast<double>(tp);
  const double pad = opt.capacity_factor > 1.0 ? opt.capacity_factor : 1.0;
  const double expert_ffn_per_rank = static_cast<double>(ceil_div(m.expert_ffn, etp));

  const std::vector<std::int64_t> layers = stage_layers(m, s, pp);
  MemoryReport report;
  report.capacity = gpu.memory;
  std::int64_t first_layer = 0;
  for (std::int64_t st = 0; st < pp; ++st) {
    MemoryBreakdown b;
    b.stage = st;
    const std::int64_t L = layers[static_cast<std::size_t>(st)];
    b.layers = L;
    const std::int64_t end_layer = first_layer + L;
    const std::int64_t L_dense = std::max<std::int64_t>(0, std::min(end_layer, m.dense_layers) - first_layer);
    const std::int64_t L_moe = L - L_dense;
    first_layer = end_layer;
    const bool first = st == 0;
    const bool last = st == pp - 1;

    // ---- weights (elements) ----
    const std::int64_t e_attn = L * attn_elems;
    const std::int64_t e_dense = L_dense * ceil_div(m.dense_ffn_params_per_layer(), tp);
    const std::int64_t e_expert = L_moe * ceil_div(m.experts, ep) * ceil_div(m.expert_params(), etp);
    const std::int64_t e_shared = L_moe * ceil_div(m.shared_expert_params_per_layer(), tp);
    const std::int64_t e_router = L_moe * m.router_params_per_layer();
    const std::int64_t vocab_shard = ceil_div(m.vocab, tp) * h;
    const std::int64_t e_embed = first ? vocab_shard : 0;
    // A tied head on a single stage reuses the embedding; on a separate last
    // stage it is a copy (Megatron-LM keeps one per end of the pipeline).
    const std::int64_t e_head = last ? ((m.tied_embeddings && pp == 1) ? 0 : vocab_shard) + m.final_norm_params() : 0;
    const std::int64_t dense_params = e_attn + e_dense + e_shared + e_router + e_embed + e_head;
    const std::int64_t expert_params = e_expert;
    b.params = dense_params + expert_params;

    // ZeRO-3 shards the weights over the data-parallel replicas.
    const std::int64_t w_div_dense = (training && opt.zero_stage >= 3) ? adp : 1;
    const std::int64_t w_div_expert = (training && opt.zero_stage >= 3) ? edp : 1;
    b.attention_weights = elems(ceil_div(e_attn, w_div_dense), bw);
    b.dense_ffn_weights = elems(ceil_div(e_dense, w_div_dense), bw);
    b.expert_weights = elems(ceil_div(e_expert, w_div_expert), bw);
    b.shared_expert_weights = elems(ceil_div(e_shared, w_div_dense), bw);
    b.router_weights = elems(ceil_div(e_router, w_div_dense), bw);
    b.embedding_weights = elems(ceil_div(e_embed, w_div_dense), bw);
    b.lm_head_weights = elems(ceil_div(e_head, w_div_dense), bw);

    // ---- KV cache (inference) ----
    if (!training) {
      const std::int64_t kv_per_token_layer =
          m.attention == AttentionKind::kMla ? m.kv_elements_per_token_per_layer()
                                             : ceil_div(m.kv_elements_per_token_per_layer(), kv_split);
      b.kv_cache = elems(seqs * shape.context_tokens * L * kv_per_token_layer, bkv);
    }

    // ---- activations ----
    const double Td = static_cast<double>(T);
    const double hd = static_cast<double>(h);
    const double bad = static_cast<double>(ba);
    const double mfd = static_cast<double>(mf);
    const double shared_ffn_rank =
        static_cast<double>(ceil_div(m.shared_experts * m.shared_expert_ffn, tp));
    const double dense_ffn_rank = static_cast<double>(ceil_div(m.dense_ffn, tp));
    const double logits_vocab = static_cast<double>(ceil_div(m.vocab, tp));
    if (!training) {
      const double attn_phase = Td * bad * (2.0 * hd + static_cast<double>(attn_act));
      double peak = attn_phase;
      if (L_moe > 0) {
        const double ffn_phase = Td * bad * 2.0 * hd + routed * bad * (hd + mfd * expert_ffn_per_rank) +
                                 Td * bad * mfd * shared_ffn_rank;
        peak = std::max(peak, ffn_phase);
      }
      if (L_dense > 0) peak = std::max(peak, Td * bad * (2.0 * hd + mfd * dense_ffn_rank));
      const double waiting = pp > 1 ? static_cast<double>(std::min(mb, pp) - 1) * Td * hd * bad : 0.0;
      const double logits = last ? static_cast<double>(mb_seqs) * logits_vocab * 4.0 : 0.0;
      b.activations = real_bytes(peak + waiting + logits);
    } else {
      const double common = Td * hd * (4.0 * bad + 2.0);
      const double attn = Td * bad * static_cast<double>(attn_act);
      const double dense_ffn = Td * bad * mfd * dense_ffn_rank;
      const double moe_ffn = routed * bad * (hd + mfd * expert_ffn_per_rank) + Td * bad * mfd * shared_ffn_rank +
                             Td * static_cast<double>(m.experts) * 4.0;  // fp32 router logits
      const double per_mb = static_cast<double>(L) * (common + attn) + static_cast<double>(L_dense) * dense_ffn +
                            static_cast<double>(L_moe) * moe_ffn;
      // 1F1B: stage st holds the activations of min(m, pp - st) micro-batches.
      const double in_flight = static_cast<double>(std::min(mb, pp - st));
      const double logits = last ? Td * logits_vocab * 4.0 : 0.0;
      b.activations = real_bytes(per_mb * in_flight + logits);
    }

    // ---- communication buffers ----
    const bool any_comm = tp > 1 || ep > 1 || pp > 1 || (training && adp > 1);
    double a2a = 0.0;
    if (ep > 1 && L_moe > 0) {
      a2a = 2.0 * routed * pad * hd * static_cast<double>(bd + ba);
    }
    b.comm_buffers = real_bytes(a2a) + (any_comm ? opt.nccl_buffer : Bytes{});

    // ---- training state ----
    if (training) {
      const std::int64_t g_div_dense = opt.zero_stage >= 2 ? adp : 1;
      const std::int64_t g_div_expert = opt.zero_stage >= 2 ? edp : 1;
      const std::int64_t o_div_dense = opt.zero_stage >= 1 ? adp : 1;
      const std::int64_t o_div_expert = opt.zero_stage >= 1 ? edp : 1;
      b.gradients = elems(ceil_div(dense_params, g_div_dense), bw) + elems(ceil_div(expert_params, g_div_expert), bw);
      // Mixed-precision Adam: fp32 master weights + first and second moments.
      b.optimizer_states =
          elems(ceil_div(dense_params, o_div_dense), 12) + elems(ceil_div(expert_params, o_div_expert), 12);
    }
    b.reserve = opt.reserve;
    report.stages.push_back(b);
  }
  for (std::size_t i = 1; i < report.stages.size(); ++i) {
    if (report.stages[i].total() > report.stages[static_cast<std::size_t>(report.max_stage)].total()) {
      report.max_stage = static_cast<std::int64_t>(i);
    }
  }
  return report;
}

std::string format_memory_table(const MemoryReport& report) {
  std::vector<std::int64_t> shown;
  const auto n = static_cast<std::int64_t>(report.stages.size());
  if (n <= 4) {
    for (std::int64_t i = 0; i < n; ++i) shown.push_back(i);
  } else {
    shown = {0, n / 2, n - 1};
    if (std::find(shown.begin(), shown.end(), report.max_stage) == shown.end()) shown.push_back(report.max_stage);
    std::sort(shown.begin(), shown.end());
  }
  std::ostringstream os;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%-24s", "memory per GPU [GiB]");
  os << buf;
  for (std::int64_t st : shown) {
    std::snprintf(buf, sizeof buf, "%12s", ("stage " + std::to_string(st)).c_str());
    os << buf;
  }
  os << "\n";
  const auto& ref = report.stages.at(0).items();
  for (std::size_t row = 0; row < ref.size(); ++row) {
    bool any = false;
    for (std::int64_t st : shown) any = any || report.stages[static_cast<std::size_t>(st)].items()[row].second.count() > 0;
    if (!any) continue;
    std::snprintf(buf, sizeof buf, "  %-22s", ref[row].first.c_str());
    os << buf;
    for (std::int64_t st : shown) {
      std::snprintf(buf, sizeof buf, "%12s", gib(report.stages[static_cast<std::size_t>(st)].items()[row].second).c_str());
      os << buf;
    }
    os << "\n";
  }
  std::snprintf(buf, sizeof buf, "%-24s", "total");
  os << buf;
  for (std::int64_t st : shown) {
    std::snprintf(buf, sizeof buf, "%12s", gib(report.stages[static_cast<std::size_t>(st)].total()).c_str());
    os << buf;
  }
  os << "\n";
  std::snprintf(buf, sizeof buf, "%-24s", "capacity");
  os << buf;
  for (std::size_t i = 0; i < shown.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%12s", gib(report.capacity).c_str());
    os << buf;
  }
  os << "\n";
  std::snprintf(buf, sizeof buf, "%-24s", "used");
  os << buf;
  for (std::int64_t st : shown) {
    const double pct = report.capacity.count() > 0 ? 100.0 * report.stages[static_cast<std::size_t>(st)].total().as_double() /
                                                         report.capacity.as_double()
                                                   : 0.0;
    std::snprintf(buf, sizeof buf, "%11.1f%%", pct);
    os << buf;
  }
  os << "\n";
  return os.str();
}

ValidationResult validate(const ModelSpec& model, const Strategy& strategy, std::int64_t cluster_gpus,
                          const GpuSpec& gpu, const WorkloadShape& shape, const MemoryOptions& options) {
  ValidationResult r = validate(model, strategy, cluster_gpus);
  const MemoryReport mem = estimate_memory(model, strategy, gpu, shape, options);
  if (!mem.fits()) {
    const MemoryBreakdown& worst = mem.max();
    r.violations.push_back("memory: stage " + std::to_string(worst.stage) + " needs " + gib(worst.total()) +
                           " GiB per GPU but the GPU (" + gpu.name + ") holds " + gib(mem.capacity) + " GiB:\n" +
                           format_memory_table(mem));
  }
  if (strategy.tp >= 1 && strategy.dp >= 1 && strategy.ep >= 1 && strategy.microbatches >= 1) {
    const std::int64_t adp = strategy.attention_dp();
    if (shape.batch < adp) {
      r.notes.push_back("the batch (" + std::to_string(shape.batch) + " sequences) is smaller than the " +
                        std::to_string(adp) + " attention data-parallel replicas: some replicas get no sequence");
    } else if (ceil_div(shape.batch, adp) < strategy.microbatches) {
      r.notes.push_back("micro-batches (" + std::to_string(strategy.microbatches) + ") exceed the sequences per replica (" +
                        std::to_string(ceil_div(shape.batch, adp)) + "): some micro-batches are empty");
    }
  }
  return r;
}

}  // namespace moesim
