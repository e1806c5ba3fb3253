#pragma once
// The plan builder: turns ONE iteration of an MoE model under a parallel
// strategy into a Plan (sim/plan.hpp) of compute ops with compute-model
// durations and collectives with their byte sizes and routing matrices.
//
// Input is an explicit description of the iteration's batch (BatchDescription):
// for every attention data-parallel replica, its micro-batches, each a list of
// sequences with the tokens computed now (a prompt, a prefill chunk, or one
// decode token) and the tokens already in their KV cache. Batch mode uses
// BatchDescription::prefill(); the serving scheduler builds one per iteration
// from its running requests.
//
// Schedule (forward only, GPipe-like): stage s runs micro-batch m once it has
// received m from stage s-1; every GPU of a stage processes the micro-batches
// in order, layer by layer. Ops on a GPU's streams (see sim/plan.hpp):
//
//   stage 0:   embedding (vocab-parallel; TP all-reduce if tp > 1)
//   per layer, on every GPU g of the stage (T = tokens of g's attention
//   replica in this micro-batch; t_g = g's 1/tp slice of them):
//     norm(T) -> attention(T): projections (TP-sharded) + attention kernel
//     -> [tp > 1] TP all-reduce (T x hidden)                       comm stream
//     -> norm(T)
//     dense layer:  FFN(T, width/tp) -> [tp > 1] TP all-reduce
//     MoE layer:    router(t_g)
//                   -> dispatch all-to-allv over g's EP group (the routing
//                      matrix of this layer and micro-batch)        comm stream
//                   -> shared experts(T, width/tp) (runs while the dispatch
//                      is in flight: it does not depend on it)
//                   -> [etp > 1] ETP all-gather of the received tokens
//                   -> routed experts: one grouped GEMM over g's local
//                      experts with their token counts (gate/up, activation,
//                      down)
//                   -> [etp > 1] ETP reduce-scatter
//                   -> combine all-to-allv (the transposed matrix)  comm stream
//                   -> [tp > 1] TP all-reduce (T x hidden): sums the
//                      TP-sharded shared experts and gathers the TP slices
//                      of the routed output (each rank contributes its
//                      rows, zeros elsewhere), as the row-parallel
//                      all-reduce of a dense MLP block does
//   end of stage s < pp-1: send T x hidden to the same-coordinate GPU of
//                      stage s+1 (its pp_send stream -> their pp_recv stream)
//   last stage:        final norm + LM head GEMM for the sequences that
//                      sample a token in this iteration
//
// Token layout for the MoE block: each TP rank routes its 1/tp slice of the
// replica's tokens (Megatron-style sequence parallelism inside the MoE block,
// vLLM's sequence-parallel MoE), so an EP group's tokens are the slices of its
// members. Routing per (layer, micro-batch, EP group) comes from
// workloads/routing (seeded; the micro-batch index passed to it is salted
// with the EP group and the iteration so that groups and iterations differ).
//
// The slowest EP rank holds everyone back through the combine's rendezvous;
// the bubble comes out of the timeline, never from a formula.

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/compute_model.hpp"
#include "sim/plan.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/routing.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

/// One sequence's share of an iteration.
struct SequenceChunk {
  std::int64_t new_tokens = 0;     // computed now: a prompt (chunk), or 1 for a decode step
  std::int64_t cached_tokens = 0;  // already in the KV cache before this iteration
  bool samples = true;             // emits an output token (last prefill chunk, or a decode step)
  /// Decode step: one new token attending to a cached context.
  [[nodiscard]] bool is_decode() const { return new_tokens == 1 && cached_tokens > 0; }
};

struct MicroBatchWork {
  std::vector<SequenceChunk> sequences;
  [[nodiscard]] std::int64_t tokens() const;
};

/// The batch of one iteration: replicas[r][m] is micro-batch m of attention
/// data-parallel replica r. All replicas must have the same number of
/// micro-batches (they run in lockstep: the EP all-to-alls couple them); a
/// replica with nothing to do in a micro-batch has an empty one.
struct BatchDescription {
  std::vector<std::vector<MicroBatchWork>> replicas;
  /// Salts the routing draws, so that successive serving iterations route
  /// differently (batch mode: 0).
  std::int64_t iteration = 0;

  /// `batch` sequences of `prompt_tokens` each (prefill, empty cache), spread
  /// over `replicas` (the first batch % replicas get one more) and, within a
  /// replica, over `microbatches` (likewise). Throws InputError for
  /// non-positive arguments.
  static BatchDescription prefill(std::int64_t batch, std::int64_t prompt_tokens, std::int64_t replicas,
                                  std::int64_t microbatches);

  [[nodiscard]] std::int64_t microbatches() const;
  [[nodiscard]] std::int64_t sequences() const;
  [[nodiscard]] std::int64_t tokens() const;           // new tokens over all replicas
  [[nodiscard]] std::int64_t sampled_tokens() const;   // output tokens this iteration
};

/// Tokens per routed expert of each MoE layer, summed over the micro-batches
/// and EP groups of the iteration.
struct ExpertLoad {
  std::vector<std::int64_t> layers;                     // model layer index of each row
  std::vector<std::vector<std::int64_t>> expert_tokens;  // [row][expert]
  std::int64_t dropped = 0;                              // assignments over capacity
  /// max/mean tokens per expert of row i (1 = balanced; 0 without tokens).
  [[nodiscard]] double imbalance(std::size_t row) const;
  /// The mean and the max over the layers of the per-layer imbalance.
  [[nodiscard]] double mean_imbalance() const;
  [[nodiscard]] double max_imbalance() const;
};

struct BuiltPlan {
  Plan plan;
  std::int64_t sequences = 0;
  std::int64_t tokens = 0;          // new tokens computed by the iteration
  std::int64_t sampled_tokens = 0;  // output tokens produced
  ExpertLoad expert_load;
  /// For each (replica r, micro-batch m), at [r * microbatches + m]: the ops
  /// after which the micro-batch's output tokens exist (its LM head on every
  /// TP rank of the replica); empty when the plan does not reach the last
  /// stage or nothing samples.
  std::vector<std::vector<OpId>> output_ops;
  /// Tokens the slowest EP rank computed / the mean over EP ranks, per MoE
  /// layer and micro-batch and EP group, maximised: what the combine waits on.
  double worst_rank_imbalance = 0.0;
};

/// Which pipeline stages a plan covers: [first, first + count). A partial plan
/// (for a scheduler that runs stages separately) starts its first stage with
/// its input already there and ends its last stage, if not the final one, with
/// the send to the next stage.
struct StageRange {
  std::int64_t first = 0;
  std::int64_t count = -1;  // -1 = through the last stage
};

struct PlanBuilderOptions {
  /// GPUs in the cluster (the plan's GPU count); 0 = the strategy's world size.
  std::int32_t cluster_gpus = 0;
  /// Algorithm requested for the TP collectives and for the all-to-alls.
  CollectiveAlgorithm tp_algorithm = CollectiveAlgorithm::kAuto;
  CollectiveAlgorithm a2a_algorithm = CollectiveAlgorithm::kAuto;
};

class PlanBuilder {
 public:
  /// The referenced objects must outlive the builder. Throws InputError when
  /// the cluster is smaller than the strategy's world.
  PlanBuilder(const ModelSpec& model, const RankMapping& mapping, const ComputeModel& compute,
              const ExpertRouter& router, PlanBuilderOptions options = {});

  /// The plan of one iteration. Throws InputError when the batch does not fit
  /// the strategy (replica count differing from mapping.attention_dp(), no
  /// micro-batch, negative token counts).
  BuiltPlan build(const BatchDescription& batch, StageRange stages = {});

  [[nodiscard]] const ModelSpec& model() const { return *model_; }
  [[nodiscard]] const RankMapping& mapping() const { return *mapping_; }
  [[nodiscard]] std::int32_t gpu_count() const { return gpus_; }

  // ---- compute-op durations (exposed for tests and hand calculations) ----
  /// Input/post-attention RMSNorm over `tokens`.
  [[nodiscard]] Duration norm_time(std::int64_t tokens) const;
  /// Projections (TP-sharded) + attention kernel(s) of one layer for one
  /// micro-batch on one TP rank.
  [[nodiscard]] Duration attention_time(const MicroBatchWork& mb) const;
  [[nodiscard]] Duration router_time(std::int64_t tokens) const;
  /// Grouped GEMMs (gate/up, down) + activation of the local routed experts.
  [[nodiscard]] Duration expert_time(const std::vector<std::int64_t>& tokens_per_expert) const;
  /// All shared experts of a layer on `tokens` (width / tp).
  [[nodiscard]] Duration shared_expert_time(std::int64_t tokens) const;
  /// A leading dense layer's FFN on `tokens` (width / tp).
  [[nodiscard]] Duration dense_ffn_time(std::int64_t tokens) const;
  [[nodiscard]] Duration embedding_time(std::int64_t tokens) const;
  /// Final norm + LM head GEMM (vocab / tp) for `sampled` sequences.
  [[nodiscard]] Duration lm_head_time(std::int64_t sampled) const;

 private:
  struct StageInfo;
  [[nodiscard]] Precision weight_precision() const;
  [[nodiscard]] Precision activation_precision() const;
  [[nodiscard]] Duration ffn_time(std::int64_t tokens, std::int64_t width) const;

  const ModelSpec* model_;
  const RankMapping* mapping_;
  const ComputeModel* compute_;
  const ExpertRouter* router_;
  PlanBuilderOptions options_;
  std::int32_t gpus_ = 0;
  ExpertPlacement placement_;
  // Grouped-GEMM durations by token vector (identical vectors are common).
  mutable std::map<std::vector<std::int64_t>, Duration> expert_cache_;  // not thread-safe
};

}  // namespace moesim
