#pragma once
// Expert routing: which experts the tokens of one micro-batch pick at one MoE
// layer, the per-expert token counts after capacity drops, and the EP
// rank-to-rank token and byte matrices of the dispatch and combine
// all-to-alls.
//
// Model: the micro-batch's tokens of one EP group are spread evenly over its
// EP ranks (rank r holds tokens/EP, the first tokens % EP ranks one more);
// each token picks top_k DISTINCT experts; an assignment from source rank r
// to expert e travels to the rank that holds e (the placement). Assignments
// whose destination is the source stay local: they are counted in the token
// matrix but carry no network bytes.
//
// Distributions (routing.distribution):
//   balanced  deterministic round robin: assignment j of the a-th token
//             overall picks expert (a x k + j) mod E, so every expert gets
//             floor(T k / E) or one more; no randomness.
//   uniform   each token draws a uniformly random k-subset of the experts.
//   zipf      expert popularity ~ 1 / rank^s (s = routing.skew); which expert
//             has which rank is a random permutation drawn per layer (stream
//             "routing/layer<L>/popularity", the same for every micro-batch of
//             that layer).
//   hot       routing.hot_experts experts (a random set per layer, drawn like
//             zipf's permutation) share routing.hot_share of the popularity,
//             the others the rest evenly.
//   trace     from routing.trace (CSV, see TraceFile below).
// For zipf, hot and count traces each token draws k distinct experts by
// successive sampling without replacement (each pick proportional to the
// weights of the experts it does not have yet: the Plackett-Luce /
// Gumbel-top-k law of a noisy top-k router), so an expert takes at most one
// assignment per token: its realised share saturates at 1/k of the
// assignments, as in a real router. The sampler is exact: alias draws (Vose)
// with rejection while most of the weight is free, else an exact split into
// the 2k heaviest experts (scanned) and the rest (their own alias table).
// The draws of (layer L, micro-batch M) come from the named stream
// "routing/layer<L>/mb<M>", so results do not depend on the order of calls.
//
// Why per-token sampling rather than a multinomial over counts: distinctness
// of the k experts of a token matters when k is a sizeable fraction of E
// (Mixtral: 2 of 8), and a multinomial ignores it. Per token it costs about k
// draws of O(1) each: a DeepSeek-V3 prefill micro-batch of 16k tokens x 8 x
// 58 MoE layers is ~7.6 M picks, ~15 ms uniform and ~50 ms zipf s=1 of CPU
// (docs/models-and-strategies.md); `balanced` is closed form.
//
// ExpertRouter::route() is const and keeps no state between calls, so one
// router may be shared by threads.
//
// Capacity (routing.capacity_factor cf > 0, and routing.dropless false):
// following Megatron-Core's token dropping (moe_expert_capacity_factor,
// applied on each source rank before the dispatch), source rank r may send at
// most ceil(cf x T_r x k / E) assignments to each expert; the overflow is
// dropped (never sent) and counted. With EP = 1 this is the GShard/Switch
// capacity ceil(cf x T x k / E). cf = 0 or dropless = true: nothing dropped.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/random.hpp"
#include "sim/units.hpp"
#include "workloads/model_spec.hpp"

namespace moesim {

enum class RoutingDistribution : std::uint8_t { kBalanced, kUniform, kZipf, kHot, kTrace };
std::string_view to_string(RoutingDistribution d);

struct RoutingConfig {
  RoutingDistribution distribution = RoutingDistribution::kUniform;
  double skew = 1.0;               // zipf exponent s
  std::int64_t hot_experts = 1;    // hot: how many experts are hot
  double hot_share = 0.5;          // hot: their share of the popularity (0..1)
  std::string trace_path;          // trace: CSV file
  double capacity_factor = 0.0;    // 0 = dropless
  bool dropless = false;           // true: ignore capacity_factor (never drop)
  [[nodiscard]] bool drops_enabled() const { return !dropless && capacity_factor > 0.0; }
};

/// Which EP rank holds each routed expert.
struct ExpertPlacement {
  std::int32_t ep = 1;
  std::vector<std::int32_t> owner;  // expert -> EP rank in [0, ep)
  /// Contiguous blocks: expert e on rank e / ceil(experts / ep).
  static ExpertPlacement contiguous(std::int64_t experts, std::int64_t ep);
};

/// The routing of one micro-batch at one MoE layer over one EP group.
struct RoutingResult {
  std::int32_t ep = 1;
  std::int32_t experts = 0;
  std::int32_t top_k = 0;
  std::int64_t tokens = 0;                   // tokens of the micro-batch in this EP group
  std::vector<std::int64_t> source_tokens;   // per EP rank: tokens it holds
  /// Assignments kept, per expert (sum = tokens x k - dropped).
  std::vector<std::int64_t> expert_tokens;
  /// Assignments kept, [src x ep + dst]: from the tokens of src to experts on dst.
  std::vector<std::int64_t> rank_tokens;
  std::int64_t dropped = 0;                  // assignments over capacity
  /// Capacity per expert per source rank (of source rank 0, which holds the
  /// most tokens); 0 = dropless.
  std::int64_t capacity = 0;

  [[nodiscard]] std::int64_t assignments() const;  // kept: sum of expert_tokens
  /// Max over mean of expert_tokens (1 = perfectly balanced; 0 if no tokens).
  [[nodiscard]] double imbalance() const;
  /// Assignments received by each EP rank (column sums of rank_tokens).
  [[nodiscard]] std::vector<std::int64_t> received_per_rank() const;
  /// The token counts of the experts held by `ep_rank`, in expert order
  /// (input of the grouped expert GEMM).
  [[nodiscard]] std::vector<std::int64_t> local_expert_tokens(const ExpertPlacement& placement,
                                                              std::int32_t ep_rank) const;
  /// Dispatch all-to-all byte matrix (ep x ep, row = sender), diagonal zero:
  /// rank_tokens x hidden x dtype bytes (the model's dispatch dtype).
  [[nodiscard]] std::vector<Bytes> dispatch_bytes(std::int64_t hidden, DType dtype) const;
  /// Combine all-to-all: the transpose of dispatch (experts' outputs return
  /// to the tokens' ranks), in `dtype` (the model's activation dtype).
  [[nodiscard]] std::vector<Bytes> combine_bytes(std::int64_t hidden, DType dtype) const;
  /// Total network bytes of dispatch_bytes (off-diagonal sum).
  [[nodiscard]] Bytes dispatch_network_bytes(std::int64_t hidden, DType dtype) const;
};

/// A routing trace loaded from CSV. Two forms, told apart by the header row
/// (lines starting with '#' and blank lines are ignored):
///   per token:  `layer,token,experts`  then rows `L,t,e1,e2,...,ek` — the
///               experts picked by token t at layer L (k ids, distinct, in
///               [0, experts)); replayed cyclically: token i of micro-batch m
///               of layer L is the trace's token (m x T + i) mod n_L.
///   per expert: `layer,expert,count` then rows `L,e,c` — popularity weights
///               (counts >= 0, not all 0), sampled like zipf.
/// Layers are model layer indices (0-based, counting dense layers); a MoE
/// layer absent from the trace uses the trace layer at (its MoE index mod
/// the number of trace layers), in ascending layer order.
class RoutingTrace;

class ExpertRouter {
 public:
  /// Throws InputError for bad settings (hot_experts > experts, hot_share
  /// out of [0,1], negative skew, top_k > experts) or a bad trace (naming the
  /// file and line).
  ExpertRouter(RoutingConfig config, const ModelSpec& model, RandomStreams streams);
  ~ExpertRouter();
  ExpertRouter(ExpertRouter&&) noexcept;
  ExpertRouter& operator=(ExpertRouter&&) noexcept;

  /// Routes `tokens` tokens of micro-batch `microbatch` at model layer
  /// `layer` over the EP group described by `placement`. Deterministic in
  /// (seed, layer, microbatch, tokens, placement).
  [[nodiscard]] RoutingResult route(std::int64_t layer, std::int64_t microbatch, std::int64_t tokens,
                                    const ExpertPlacement& placement) const;

  [[nodiscard]] const RoutingConfig& config() const { return config_; }

 private:
  RoutingConfig config_;
  std::int64_t experts_ = 0;
  std::int64_t top_k_ = 0;
  std::int64_t dense_layers_ = 0;
  RandomStreams streams_;
  std::shared_ptr<const RoutingTrace> trace_;
};

}  // namespace moesim
