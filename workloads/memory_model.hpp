#pragma once
// Memory per GPU of a deployment, with its breakdown, as a pure function of
// (model, strategy, GPU, workload shape, memory options). Every stage is
// evaluated (stages differ: embedding on the first, LM head on the last,
// uneven layer splits); the GPUs of one stage are symmetric.
//
// Formulas (bytes; b_w, b_a, b_d, b_kv = weight, activation, dispatch and
// KV-cache dtype bytes; L = layers of the stage, L_moe its MoE layers;
// T = tokens of one micro-batch on one attention-DP replica; k = top_k):
//  weights
//   attention   L x (sharded/TP + kv_shard + replicated) x b_w, where GQA k/v
//               projections are split over min(TP, KV heads) ranks (replicated
//               beyond), MLA down-projections and latent norms replicated;
//               plus the two RMSNorms per layer (replicated)
//   dense_ffn   dense layers of the stage x ffn_matrices x h x dense_ffn / TP x b_w
//   experts     L_moe x (experts / EP) x expert_params / ETP x b_w
//   shared      L_moe x shared_expert_params / TP x b_w
//   router      L_moe x router params x b_w (replicated)
//   embedding   first stage: vocab x h / TP x b_w (vocab-parallel embedding)
//   lm_head     last stage: vocab x h / TP x b_w + final norm (a tied head on a
//               single stage shares the embedding: 0)
//  inference state
//   kv_cache    sequences of the replica x context tokens x L x
//               kv_elements_per_token_per_layer / kv_split x b_kv, where
//               kv_split = min(TP, KV heads) for GQA and 1 for MLA (the latent
//               is replicated on every TP rank, as vLLM does)
//   activations inference: the peak working set of ONE layer for the micro-
//               batch being computed (FlashAttention: no s^2 score matrix):
//               max(attention phase, FFN phase) with
//                 attention = T x b_a x (2h + 2 q_dim / TP + 2 kv_dim / kv_split)
//                            (q and attention output; k and v)
//                 FFN       = T x b_a x (2h + k x (h + 3 f / ETP)) for MoE
//                            (SwiGLU gate, up, product), shared/dense likewise
//               plus the received stage inputs of the micro-batches waiting
//               (min(microbatches, PP) - 1) x T x h x b_a, plus the last
//               stage's fp32 logits of the last token of each sequence.
//               training: Korthikanti et al. 2022 ("Reducing Activation
//               Recomputation in Large Transformer Models", Table 2, no
//               sequence parallelism, FlashAttention so no 5as^2b term):
//               per layer per micro-batch
//                 T x h x (4 b_a + 2)              replicated (norm inputs, QKV
//                                                  and MLP inputs, dropout masks)
//               + T x b_a x (2 q_dim + 2 kv_dim) / TP   (Q, K, V, attention out)
//               + FFN: T x b_a x m_f x f / TP for dense (m_f = 3 SwiGLU, 2 GELU:
//                 Korthikanti's 16 sbh/t for f = 4h GELU), and for MoE
//                 T x k x b_a x (h + m_f x f / ETP) (routed tokens' copies)
//                 + shared experts like a dense FFN
//               times the micro-batches a 1F1B stage holds: min(m, PP - stage);
//               plus full-sequence fp32 logits on the last stage.
//   comm_buffers all-to-all: dispatch send + receive (T x k x h x b_d each)
//               and combine send + receive (T x k x h x b_a each), scaled by
//               the capacity factor when it exceeds 1 (padded buffers); plus
//               memory.nccl_buffer (NCCL_BUFFSIZE 4 MiB x 2 directions x up
//               to 32 channels per communicator, ~2 communicators: 512 MiB).
//   reserve     memory.reserve (CUDA context, cuBLAS/NCCL workspaces and
//               caching-allocator fragmentation; default 2 GiB)
//  training only (mode = training)
//   gradients   params of the GPU x b_w (bf16 gradients)
//   optimizer   params x 12 (fp32 master copy + Adam m and v; Rajbhandari et
//               al. 2020, ZeRO, section 3.1: 2 + 2 + 12 = 16 bytes/param)
//   ZeRO stage 1 shards the optimizer over the data-parallel replicas (DP x
//   EP orthogonal / DP folded for dense params, EDP for expert params);
//   stage 2 also the gradients; stage 3 also the weights.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/gpu_spec.hpp"
#include "sim/units.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

enum class MemoryMode : std::uint8_t { kInference, kTraining };
std::string_view to_string(MemoryMode m);

struct MemoryOptions {
  MemoryMode mode = MemoryMode::kInference;
  std::int64_t zero_stage = 0;              // 0..3, training only
  Bytes reserve = Bytes::gib(2);            // runtime reserve per GPU
  Bytes nccl_buffer = Bytes::mib(512);      // NCCL communicator buffers per GPU
  double capacity_factor = 0.0;             // routing capacity factor (0 = dropless)
};

/// The workload of one iteration, as the memory model needs it.
struct WorkloadShape {
  /// Sequences in the iteration, over all attention-DP replicas (global batch).
  std::int64_t batch = 1;
  /// Tokens each sequence feeds through the model in this iteration (prefill:
  /// the prompt; decode: 1; training: the sequence length).
  std::int64_t tokens_per_sequence = 1;
  /// Context tokens per sequence kept in the KV cache (prompt + output;
  /// inference only).
  std::int64_t context_tokens = 1;
};

/// One GPU's memory, by component. Names match the JSON breakdown keys.
struct MemoryBreakdown {
  std::int64_t stage = 0;
  std::int64_t layers = 0;
  Bytes attention_weights{};
  Bytes dense_ffn_weights{};
  Bytes expert_weights{};
  Bytes shared_expert_weights{};
  Bytes router_weights{};
  Bytes embedding_weights{};
  Bytes lm_head_weights{};
  Bytes kv_cache{};
  Bytes activations{};
  Bytes comm_buffers{};
  Bytes gradients{};
  Bytes optimizer_states{};
  Bytes reserve{};
  /// Parameters (elements) held by this GPU.
  std::int64_t params = 0;

  [[nodiscard]] Bytes weights() const;
  [[nodiscard]] Bytes total() const;
  /// (key, bytes) in a fixed order: "attention_weights", "dense_ffn_weights",
  /// "expert_weights", "shared_expert_weights", "router_weights",
  /// "embedding_weights", "lm_head_weights", "kv_cache", "activations",
  /// "comm_buffers", "gradients", "optimizer_states", "reserve".
  [[nodiscard]] std::vector<std::pair<std::string, Bytes>> items() const;
};

struct MemoryReport {
  std::vector<MemoryBreakdown> stages;  // one per pipeline stage
  std::int64_t max_stage = 0;           // the stage with the largest total
  Bytes capacity{};                     // the GPU's HBM

  [[nodiscard]] const MemoryBreakdown& max() const { return stages.at(static_cast<std::size_t>(max_stage)); }
  [[nodiscard]] Bytes max_total() const { return max().total(); }
  [[nodiscard]] bool fits() const { return max_total() <= capacity; }
};

/// Evaluates the formulas above for every stage. Tolerates structurally
/// invalid strategies (rounds divisions up) so that validate() can report the
/// memory together with the other violations. Throws InputError for
/// non-positive shape values.
MemoryReport estimate_memory(const ModelSpec& model, const Strategy& strategy, const GpuSpec& gpu,
                             const WorkloadShape& shape, const MemoryOptions& options);

/// A table of the breakdown: one column per stage shown (first, middle, last
/// or all when few), rows per component in GiB, the total, the capacity and
/// the percentage used.
std::string format_memory_table(const MemoryReport& report);

/// Structural checks (strategy.hpp's validate) plus the memory check: the
/// largest stage's total against the GPU's capacity (the violation message
/// carries the formatted breakdown), and the batch per replica against the
/// micro-batches.
ValidationResult validate(const ModelSpec& model, const Strategy& strategy, std::int64_t cluster_gpus,
                          const GpuSpec& gpu, const WorkloadShape& shape, const MemoryOptions& options);

}  // namespace moesim
