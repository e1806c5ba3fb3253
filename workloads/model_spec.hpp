#pragma once
// The MoE transformer model spec: shapes, dtypes and the parameter counts
// derived from them, with named presets taken from the models' published
// Hugging Face config.json files (sources in model_spec.cpp and
// docs/models-and-strategies.md).
//
// Layer structure (every preset follows it):
//   layers 0 .. dense_layers-1       attention + dense FFN (dense_ffn wide)
//   layers dense_layers .. layers-1  attention + MoE block: router over
//                                    `experts` routed experts of width
//                                    expert_ffn, top_k per token, plus
//                                    `shared_experts` always-active experts
//                                    of width shared_expert_ffn
// Embedding before layer 0, final norm + LM head after the last layer.
//
// Attention kinds:
//   kGqa  multi-head / grouped-query attention (MHA is kv_heads == heads):
//         q: hidden x heads*head_dim, k and v: hidden x kv_heads*head_dim,
//         o: heads*head_dim x hidden.
//   kMla  DeepSeek multi-head latent attention (DeepSeek-V2 paper, arXiv
//         2405.04434, and DeepSeek-V3 config.json). Approximation used across
//         moesim:
//           * weights: exact, from the MLA projections (q_a, q_b, kv_a, kv_b,
//             o and the two latent norms);
//           * KV cache: the compressed latent, kv_lora_rank + qk_rope_head_dim
//             values per token per layer (what vLLM/SGLang cache); it is not
//             split by TP (every TP rank holds the whole latent);
//           * attention FLOPs (compute model): as MHA with `heads` heads whose
//             query/key dimension is qk_nope_head_dim + qk_rope_head_dim (192)
//             and value dimension v_head_dim (128), i.e. the "decompressed"
//             (naive) form; see attention_qk_dim()/attention_v_dim().

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/units.hpp"

namespace moesim {

/// Element types of weights, activations and the all-to-all dispatch payload.
enum class DType : std::uint8_t { kBf16, kFp16, kFp8, kFp32 };

/// Bytes per element: bf16/fp16 2, fp8 1, fp32 4.
constexpr std::int64_t dtype_bytes(DType t) {
  switch (t) {
    case DType::kBf16: return 2;
    case DType::kFp16: return 2;
    case DType::kFp8: return 1;
    case DType::kFp32: return 4;
  }
  return 2;
}
/// "bf16", "fp16", "fp8", "fp32".
std::string_view to_string(DType t);
/// Parses "bf16" | "fp16" | "fp8" | "fp32" (case-insensitive); throws
/// InputError naming `what` (e.g. the option key) on anything else.
DType parse_dtype(std::string_view text, std::string_view what);

enum class AttentionKind : std::uint8_t {
  kGqa,  // MHA / GQA / MQA
  kMla,  // DeepSeek multi-head latent attention
};
std::string_view to_string(AttentionKind k);

/// FFN non-linearity: SwiGLU has three matrices (gate, up, down), GELU two.
enum class FfnKind : std::uint8_t { kSwiGlu, kGelu };
std::string_view to_string(FfnKind k);

/// MLA ranks (DeepSeek-V3 config.json: q_lora_rank 1536, kv_lora_rank 512,
/// qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128).
struct MlaSpec {
  std::int64_t q_lora_rank = 1536;  // 0 = no query compression (q is hidden x heads*qk_head_dim)
  std::int64_t kv_lora_rank = 512;
  std::int64_t qk_rope_head_dim = 64;
  std::int64_t qk_nope_head_dim = 128;
  std::int64_t v_head_dim = 128;
};

struct ModelSpec {
  std::string name = "custom";
  std::string source;  // where the figures come from (config.json URL, paper)

  std::int64_t layers = 32;
  std::int64_t hidden = 4096;
  std::int64_t heads = 32;
  std::int64_t kv_heads = 8;
  std::int64_t head_dim = 128;  // GQA head dim (may differ from hidden/heads, as in Qwen3)
  AttentionKind attention = AttentionKind::kGqa;
  MlaSpec mla{};                // used when attention == kMla
  /// Per-head RMSNorm on q and k (Qwen3): adds 2 x head_dim params per layer.
  bool qk_norm = false;

  FfnKind ffn_kind = FfnKind::kSwiGlu;
  std::int64_t expert_ffn = 14336;   // intermediate size of one routed expert
  std::int64_t experts = 8;          // routed experts per MoE layer
  std::int64_t top_k = 2;
  std::int64_t shared_experts = 0;   // always-active experts per MoE layer
  std::int64_t shared_expert_ffn = 0;
  std::int64_t dense_layers = 0;     // leading layers with a dense FFN instead of MoE
  std::int64_t dense_ffn = 0;
  bool router_bias = false;          // DeepSeek-V3 e_score_correction_bias (experts params per layer)

  std::int64_t vocab = 32000;
  bool tied_embeddings = false;      // LM head shares the embedding matrix

  DType weight_dtype = DType::kBf16;
  DType activation_dtype = DType::kBf16;
  DType dispatch_dtype = DType::kBf16;  // payload of the EP dispatch all-to-all (combine uses activation_dtype)
  DType kv_dtype = DType::kBf16;        // KV cache elements

  // ---- derived shapes ------------------------------------------------------
  [[nodiscard]] std::int64_t moe_layers() const { return layers - dense_layers; }
  [[nodiscard]] bool is_moe_layer(std::int64_t layer) const { return layer >= dense_layers && layer < layers; }
  /// Number of weight matrices per FFN (3 for SwiGLU, 2 for GELU).
  [[nodiscard]] std::int64_t ffn_matrices() const { return ffn_kind == FfnKind::kSwiGlu ? 3 : 2; }
  /// Query/key dimension per head used for attention FLOPs (GQA: head_dim;
  /// MLA: qk_nope_head_dim + qk_rope_head_dim).
  [[nodiscard]] std::int64_t attention_qk_dim() const;
  /// Value dimension per head (GQA: head_dim; MLA: v_head_dim).
  [[nodiscard]] std::int64_t attention_v_dim() const;

  // ---- parameter counts (elements, not bytes) ------------------------------
  /// Attention projections + their norms (q/k norm, MLA latent norms) of one
  /// layer, excluding the two per-layer RMSNorms (see norm_params_per_layer).
  [[nodiscard]] std::int64_t attention_params_per_layer() const;
  /// Of attention_params_per_layer(): the parts sharded over TP (column/row
  /// parallel projections). GQA: q and o; k and v also (see attention_kv_params).
  /// MLA: q_b, kv_b and o; the down projections q_a and kv_a and the latent
  /// norms are replicated on every TP rank (as in vLLM/SGLang).
  [[nodiscard]] std::int64_t attention_tp_sharded_params() const;
  /// GQA only: the k and v projections (hidden x 2 x kv_heads x head_dim),
  /// which are replicated when TP exceeds the KV heads. 0 for MLA.
  [[nodiscard]] std::int64_t attention_kv_params() const;
  /// Input and post-attention RMSNorm weights: 2 x hidden.
  [[nodiscard]] std::int64_t norm_params_per_layer() const { return 2 * hidden; }
  /// One routed expert: ffn_matrices x hidden x expert_ffn (SwiGLU: 3 h f).
  [[nodiscard]] std::int64_t expert_params() const { return ffn_matrices() * hidden * expert_ffn; }
  /// All shared experts of one MoE layer.
  [[nodiscard]] std::int64_t shared_expert_params_per_layer() const {
    return shared_experts * ffn_matrices() * hidden * shared_expert_ffn;
  }
  /// The FFN of one leading dense layer.
  [[nodiscard]] std::int64_t dense_ffn_params_per_layer() const { return ffn_matrices() * hidden * dense_ffn; }
  /// Router (gate) of one MoE layer: hidden x experts (+ experts for the bias).
  [[nodiscard]] std::int64_t router_params_per_layer() const {
    return hidden * experts + (router_bias ? experts : 0);
  }
  [[nodiscard]] std::int64_t embedding_params() const { return vocab * hidden; }
  /// LM head (0 extra when tied, but still vocab x hidden of compute) + final norm.
  [[nodiscard]] std::int64_t lm_head_params() const { return tied_embeddings ? 0 : vocab * hidden; }
  [[nodiscard]] std::int64_t final_norm_params() const { return hidden; }

  /// Every parameter of the model (all experts).
  [[nodiscard]] std::int64_t total_params() const;
  /// Parameters touched by one token: attention, dense FFNs, top_k routed +
  /// shared experts, routers, norms, embedding and LM head.
  [[nodiscard]] std::int64_t active_params() const;

  // ---- KV cache ------------------------------------------------------------
  /// KV-cache elements per token per layer for the whole model (not split by
  /// TP): GQA 2 x kv_heads x head_dim; MLA kv_lora_rank + qk_rope_head_dim.
  [[nodiscard]] std::int64_t kv_elements_per_token_per_layer() const;
};

/// Every violated constraint of a model spec (positive sizes, heads divisible
/// by kv_heads, top_k <= experts, dense_layers <= layers, ...); empty if valid.
std::vector<std::string> model_problems(const ModelSpec& model);

/// A named preset for `moesim presets`.
struct ModelPresetInfo {
  std::string name;
  std::string description;
};
/// The known model presets, in listing order.
std::vector<ModelPresetInfo> model_presets();
/// The preset `name` ("mixtral-8x7b", "mixtral-8x22b", "qwen3-30b-a3b",
/// "qwen3-235b-a22b", "deepseek-v3"); throws InputError listing the names.
ModelSpec model_preset(std::string_view name);

/// One-line summary: "mixtral-8x7b: 32 layers, hidden 4096, ... 46.7B params (12.9B active)".
std::string describe(const ModelSpec& model);

}  // namespace moesim
