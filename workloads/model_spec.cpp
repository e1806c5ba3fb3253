#include "workloads/model_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "sim/options.hpp"

namespace moesim {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string billions(std::int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) * 1e-9);
  return buf;
}

// ---- presets ---------------------------------------------------------------
// Figures from each model's Hugging Face config.json (the `source` field).

ModelSpec mixtral_8x7b() {
  ModelSpec m;
  m.name = "mixtral-8x7b";
  m.source =
      "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json (num_hidden_layers 32, "
      "hidden_size 4096, num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336, "
      "num_local_experts 8, num_experts_per_tok 2, vocab_size 32000, tie_word_embeddings false); "
      "published 46.7B total / 12.9B active (Mixtral of Experts, arXiv 2401.04088)";
  m.layers = 32;
  m.hidden = 4096;
  m.heads = 32;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.expert_ffn = 14336;
  m.experts = 8;
  m.top_k = 2;
  m.vocab = 32000;
  return m;
}

ModelSpec mixtral_8x22b() {
  ModelSpec m;
  m.name = "mixtral-8x22b";
  m.source =
      "https://huggingface.co/mistralai/Mixtral-8x22B-v0.1/blob/main/config.json (num_hidden_layers 56, "
      "hidden_size 6144, num_attention_heads 48, num_key_value_heads 8, intermediate_size 16384, "
      "num_local_experts 8, num_experts_per_tok 2, vocab_size 32768); published 141B total / 39B active "
      "(mistral.ai/news/mixtral-8x22b)";
  m.layers = 56;
  m.hidden = 6144;
  m.heads = 48;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.expert_ffn = 16384;
  m.experts = 8;
  m.top_k = 2;
  m.vocab = 32768;
  return m;
}

ModelSpec qwen3_30b_a3b() {
  ModelSpec m;
  m.name = "qwen3-30b-a3b";
  m.source =
      "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json (num_hidden_layers 48, "
      "hidden_size 2048, num_attention_heads 32, num_key_value_heads 4, head_dim 128, "
      "moe_intermediate_size 768, num_experts 128, num_experts_per_tok 8, vocab_size 151936, "
      "tie_word_embeddings false, q/k RMSNorm); published 30.5B total / 3.3B active (Qwen3 model card)";
  m.layers = 48;
  m.hidden = 2048;
  m.heads = 32;
  m.kv_heads = 4;
  m.head_dim = 128;
  m.qk_norm = true;
  m.expert_ffn = 768;
  m.experts = 128;
  m.top_k = 8;
  m.vocab = 151936;
  return m;
}

ModelSpec qwen3_235b_a22b() {
  ModelSpec m;
  m.name = "qwen3-235b-a22b";
  m.source =
      "https://huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json (num_hidden_layers 94, "
      "hidden_size 4096, num_attention_heads 64, num_key_value_heads 4, head_dim 128, "
      "moe_intermediate_size 1536, num_experts 128, num_experts_per_tok 8, vocab_size 151936, "
      "tie_word_embeddings false, q/k RMSNorm); published 235B total / 22B active (Qwen3 model card)";
  m.layers = 94;
  m.hidden = 4096;
  m.heads = 64;
  m.kv_heads = 4;
  m.head_dim = 128;
  m.qk_norm = true;
  m.expert_ffn = 1536;
  m.experts = 128;
  m.top_k = 8;
  m.vocab = 151936;
  return m;
}

ModelSpec deepseek_v3() {
  ModelSpec m;
  m.name = "deepseek-v3";
  m.source =
      "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json (num_hidden_layers 61, "
      "first_k_dense_replace 3, intermediate_size 18432, hidden_size 7168, num_attention_heads 128, "
      "q_lora_rank 1536, kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128, "
      "moe_intermediate_size 2048, n_routed_experts 256, n_shared_experts 1, num_experts_per_tok 8, "
      "vocab_size 129280); published 671B total / 37B active, main model without the 14B MTP module "
      "(DeepSeek-V3 Technical Report, arXiv 2412.19437). Dispatch in FP8 as in the report (sec. 3.3).";
  m.layers = 61;
  m.dense_layers = 3;
  m.dense_ffn = 18432;
  m.hidden = 7168;
  m.heads = 128;
  m.kv_heads = 128;  // MLA: every head has its own (decompressed) K and V
  m.head_dim = 128;  // v_head_dim; attention dims come from `mla`
  m.attention = AttentionKind::kMla;
  m.mla = MlaSpec{.q_lora_rank = 1536, .kv_lora_rank = 512, .qk_rope_head_dim = 64, .qk_nope_head_dim = 128,
                  .v_head_dim = 128};
  m.expert_ffn = 2048;
  m.experts = 256;
  m.top_k = 8;
  m.shared_experts = 1;
  m.shared_expert_ffn = 2048;
  m.router_bias = true;
  m.vocab = 129280;
  m.dispatch_dtype = DType::kFp8;
  return m;
}

struct PresetEntry {
  const char* name;
  const char* description;
  ModelSpec (*make)();
};

constexpr PresetEntry kPresets[] = {
    {"mixtral-8x7b", "Mistral Mixtral-8x7B: 32 layers, 8 experts top-2, GQA (46.7B / 12.9B active)",
     &mixtral_8x7b},
    {"mixtral-8x22b", "Mistral Mixtral-8x22B: 56 layers, 8 experts top-2, GQA (141B / 39B active)",
     &mixtral_8x22b},
    {"qwen3-30b-a3b", "Qwen3-30B-A3B: 48 layers, 128 experts top-8, GQA 32/4 heads (30.5B / 3.3B active)",
     &qwen3_30b_a3b},
    {"qwen3-235b-a22b", "Qwen3-235B-A22B: 94 layers, 128 experts top-8, GQA 64/4 heads (235B / 22B active)",
     &qwen3_235b_a22b},
    {"deepseek-v3",
     "DeepSeek-V3: 61 layers (3 dense), 256 routed + 1 shared experts top-8, MLA, FP8 dispatch "
     "(671B / 37B active)",
     &deepseek_v3},
};

}  // namespace

std::string_view to_string(DType t) {
  switch (t) {
    case DType::kBf16: return "bf16";
    case DType::kFp16: return "fp16";
    case DType::kFp8: return "fp8";
    case DType::kFp32: return "fp32";
  }
  return "?";
}

DType parse_dtype(std::string_view text, std::string_view what) {
  const std::string t = lower(text);
  if (t == "bf16" || t == "bfloat16") return DType::kBf16;
  if (t == "fp16" || t == "float16" || t == "half") return DType::kFp16;
  if (t == "fp8" || t == "e4m3" || t == "float8") return DType::kFp8;
  if (t == "fp32" || t == "float32" || t == "float") return DType::kFp32;
  throw InputError(std::string(what) + ": unknown data type '" + std::string(text) +
                   "' (allowed: bf16, fp16, fp8, fp32)");
}

std::string_view to_string(AttentionKind k) {
  switch (k) {
    case AttentionKind::kGqa: return "gqa";
    case AttentionKind::kMla: return "mla";
  }
  return "?";
}

std::string_view to_string(FfnKind k) {
  switch (k) {
    case FfnKind::kSwiGlu: return "swiglu";
    case FfnKind::kGelu: return "gelu";
  }
  return "?";
}

std::int64_t ModelSpec::attention_qk_dim() const {
  return attention == AttentionKind::kMla ? mla.qk_nope_head_dim + mla.qk_rope_head_dim : head_dim;
}

std::int64_t ModelSpec::attention_v_dim() const {
  return attention == AttentionKind::kMla ? mla.v_head_dim : head_dim;
}

std::int64_t ModelSpec::attention_tp_sharded_params() const {
  if (attention == AttentionKind::kMla) {
    // DeepSeek-V2/V3 MLA (modeling_deepseek.py):
    //   q_b_proj:  q_lora_rank x heads*(nope+rope)   (or q_proj hidden x heads*(nope+rope))
    //   kv_b_proj: kv_lora_rank x heads*(nope+v)
    //   o_proj:    heads*v x hidden
    const std::int64_t qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim;
    const std::int64_t q_in = mla.q_lora_rank > 0 ? mla.q_lora_rank : hidden;
    return q_in * heads * qk + mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim) +
           heads * mla.v_head_dim * hidden;
  }
  // q: hidden x heads*d, o: heads*d x hidden (k and v in attention_kv_params).
  return 2 * hidden * heads * head_dim;
}

std::int64_t ModelSpec::attention_kv_params() const {
  if (attention == AttentionKind::kMla) return 0;
  return 2 * hidden * kv_heads * head_dim;
}

std::int64_t ModelSpec::attention_params_per_layer() const {
  std::int64_t replicated = 0;
  if (attention == AttentionKind::kMla) {
    // q_a_proj hidden x q_lora_rank + q_a_layernorm; kv_a_proj_with_mqa hidden x
    // (kv_lora_rank + rope) + kv_a_layernorm.
    if (mla.q_lora_rank > 0) replicated += hidden * mla.q_lora_rank + mla.q_lora_rank;
    replicated += hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank;
  } else if (qk_norm) {
    replicated += 2 * head_dim;  // q_norm, k_norm (Qwen3)
  }
  return attention_tp_sharded_params() + attention_kv_params() + replicated;
}

std::int64_t ModelSpec::total_params() const {
  const std::int64_t per_layer_common = attention_params_per_layer() + norm_params_per_layer();
  const std::int64_t dense = dense_layers * (per_layer_common + dense_ffn_params_per_layer());
  const std::int64_t moe = moe_layers() * (per_layer_common + experts * expert_params() +
                                           shared_expert_params_per_layer() + router_params_per_layer());
  return dense + moe + embedding_params() + lm_head_params() + final_norm_params();
}

std::int64_t ModelSpec::active_params() const {
  const std::int64_t per_layer_common = attention_params_per_layer() + norm_params_per_layer();
  const std::int64_t dense = dense_layers * (per_layer_common + dense_ffn_params_per_layer());
  const std::int64_t moe = moe_layers() * (per_layer_common + top_k * expert_params() +
                                           shared_expert_params_per_layer() + router_params_per_layer());
  return dense + moe + embedding_params() + lm_head_params() + final_norm_params();
}

std::int64_t ModelSpec::kv_elements_per_token_per_layer() const {
  if (attention == AttentionKind::kMla) return mla.kv_lora_rank + mla.qk_rope_head_dim;
  return 2 * kv_heads * head_dim;
}

std::vector<std::string> model_problems(const ModelSpec& m) {
  std::vector<std::string> p;
  auto positive = [&](std::int64_t v, const char* key) {
    if (v < 1) p.push_back(std::string("model.") + key + " must be >= 1 (is " + std::to_string(v) + ")");
  };
  auto non_negative = [&](std::int64_t v, const char* key) {
    if (v < 0) p.push_back(std::string("model.") + key + " must be >= 0 (is " + std::to_string(v) + ")");
  };
  positive(m.layers, "layers");
  positive(m.hidden, "hidden");
  positive(m.heads, "heads");
  positive(m.kv_heads, "kv_heads");
  positive(m.head_dim, "head_dim");
  positive(m.expert_ffn, "expert_ffn");
  positive(m.experts, "experts");
  positive(m.top_k, "top_k");
  positive(m.vocab, "vocab");
  non_negative(m.shared_experts, "shared_experts");
  non_negative(m.shared_expert_ffn, "shared_expert_ffn");
  non_negative(m.dense_layers, "dense_layers");
  non_negative(m.dense_ffn, "dense_ffn");
  if (m.heads >= 1 && m.kv_heads >= 1 && m.heads % m.kv_heads != 0) {
    p.push_back("model.heads (" + std::to_string(m.heads) + ") must be a multiple of model.kv_heads (" +
                std::to_string(m.kv_heads) + ")");
  }
  if (m.top_k > m.experts && m.experts >= 1) {
    p.push_back("model.top_k (" + std::to_string(m.top_k) + ") cannot exceed model.experts (" +
                std::to_string(m.experts) + "): each token picks distinct experts");
  }
  if (m.dense_layers > m.layers) {
    p.push_back("model.dense_layers (" + std::to_string(m.dense_layers) + ") cannot exceed model.layers (" +
                std::to_string(m.layers) + ")");
  }
  if (m.dense_layers > 0 && m.dense_ffn < 1) {
    p.push_back("model.dense_ffn must be >= 1 when model.dense_layers > 0");
  }
  if (m.shared_experts > 0 && m.shared_expert_ffn < 1) {
    p.push_back("model.shared_expert_ffn must be >= 1 when model.shared_experts > 0");
  }
  if (m.attention == AttentionKind::kMla) {
    non_negative(m.mla.q_lora_rank, "q_lora_rank");
    positive(m.mla.kv_lora_rank, "kv_lora_rank");
    non_negative(m.mla.qk_rope_head_dim, "qk_rope_head_dim");
    positive(m.mla.qk_nope_head_dim, "qk_nope_head_dim");
    positive(m.mla.v_head_dim, "v_head_dim");
  }
  return p;
}

std::vector<ModelPresetInfo> model_presets() {
  std::vector<ModelPresetInfo> out;
  for (const PresetEntry& e : kPresets) out.push_back({e.name, e.description});
  return out;
}

ModelSpec model_preset(std::string_view name) {
  const std::string n = lower(name);
  std::string names;
  for (const PresetEntry& e : kPresets) {
    if (n == e.name) return e.make();
    names += names.empty() ? "" : ", ";
    names += e.name;
  }
  throw InputError("unknown model preset '" + std::string(name) + "' (known: " + names + ")");
}

std::string describe(const ModelSpec& m) {
  std::ostringstream os;
  os << m.name << ": " << m.layers << " layers";
  if (m.dense_layers > 0) os << " (" << m.dense_layers << " dense)";
  os << ", hidden " << m.hidden << ", " << m.heads << " heads";
  if (m.attention == AttentionKind::kMla) {
    os << " (MLA, kv_lora_rank " << m.mla.kv_lora_rank << ")";
  } else {
    os << " / " << m.kv_heads << " KV heads x " << m.head_dim;
  }
  os << ", " << m.experts << " experts x ffn " << m.expert_ffn << " top-" << m.top_k;
  if (m.shared_experts > 0) os << " + " << m.shared_experts << " shared";
  os << ", vocab " << m.vocab << "; " << billions(m.total_params()) << " params (" << billions(m.active_params())
     << " active), weights " << to_string(m.weight_dtype) << ", dispatch " << to_string(m.dispatch_dtype);
  return os.str();
}

}  // namespace moesim
