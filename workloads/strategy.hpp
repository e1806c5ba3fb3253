#pragma once
// The parallel strategy (TP, PP, DP, EP, ETP, micro-batches), its world-size
// convention, and the mapping of ranks onto GPUs.
//
// ## Conventions (DESIGN.md "Parallel-strategy semantics")
// * folded (Megatron-Core, vLLM, SGLang): attention and dense layers use
//   TP x DP ranks per stage; the experts re-partition the SAME ranks as
//   ETP x EP x EDP with EDP = TP x DP / (ETP x EP), which must be a positive
//   integer. World = TP x PP x DP.
// * orthogonal: EP is a dimension of its own: world = TP x PP x EP x DP. The
//   attention of the EP ranks works on different tokens, so attention runs
//   data-parallel over EP x DP replicas; the experts of EP rank e are held by
//   the TP group(s) at EP coordinate e, sharded over ETP ranks (ETP must
//   divide TP) and replicated over EDP = DP x TP / ETP.
// In both, "ranks per stage" S = world / PP, and every stage's S ranks are
// decomposed twice: attention view (tp, attn_dp) and expert view
// (etp, ep, edp).
//
// ## Rank order (which rank lands on which GPU)
// The order string names the dimensions from innermost (fastest varying) to
// outermost, as Megatron-Core's RankGenerator does; default "tp-ep-dp-pp":
// TP innermost (consecutive GPUs, i.e. inside a node), then EP, then DP, and
// PP outermost (stage s holds global ranks s*S .. s*S+S-1). Global rank g runs
// on GPU g (the topology numbers GPUs node by node).
// * orthogonal: plain mixed radix over the four dimensions in that order.
// * folded: the attention view is mixed radix over the order without "ep"
//   (tp, dp, pp); the expert view is mixed radix over the order with
//   tp -> etp and dp -> edp (Megatron-Core's expert RankGenerator). The PP
//   coordinate is read from the attention view; both views agree on it when
//   pp is outermost or innermost, and for any order when ETP x EP divides
//   the ranks inside pp's position (validation checks it).
// "ep" may be omitted ("tp-dp-pp"): it is then placed just before "dp".
//
// ## Layers per stage
// Even split (layers % pp == 0 required), or an explicit split
// (`strategy.layers_per_stage = 15,16,15,15`) that must sum to the layers.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/communication.hpp"  // GpuId
#include "workloads/model_spec.hpp"

namespace moesim {

enum class Convention : std::uint8_t { kFolded, kOrthogonal };
std::string_view to_string(Convention c);
/// "folded" | "orthogonal"; throws InputError naming `what`.
Convention parse_convention(std::string_view text, std::string_view what);

enum class ParallelDim : std::uint8_t { kTp, kEp, kDp, kPp };
std::string_view to_string(ParallelDim d);

/// Innermost first.
using RankOrder = std::array<ParallelDim, 4>;
inline constexpr RankOrder kDefaultRankOrder = {ParallelDim::kTp, ParallelDim::kEp, ParallelDim::kDp,
                                                ParallelDim::kPp};
/// Parses "tp-ep-dp-pp", "tp-dp-pp" (ep placed before dp), any permutation;
/// throws InputError naming `what` on unknown or repeated names.
RankOrder parse_rank_order(std::string_view text, std::string_view what);
std::string to_string(const RankOrder& order);

struct Strategy {
  std::int64_t tp = 1;
  std::int64_t pp = 1;
  std::int64_t dp = 1;
  std::int64_t ep = 1;
  std::int64_t etp = 1;           // expert tensor parallel
  std::int64_t microbatches = 1;  // per iteration, per DP replica
  Convention convention = Convention::kFolded;
  RankOrder order = kDefaultRankOrder;
  /// Explicit layers per stage (size pp, sums to the layers); empty = even.
  std::vector<std::int64_t> layers_per_stage;

  /// World size under this strategy's own convention.
  [[nodiscard]] std::int64_t world_size() const { return world_size(convention); }
  /// World size under `c`: folded TP x PP x DP, orthogonal TP x PP x EP x DP.
  [[nodiscard]] std::int64_t world_size(Convention c) const;
  /// Ranks per pipeline stage (world / pp).
  [[nodiscard]] std::int64_t ranks_per_stage() const { return world_size() / pp; }
  /// Attention data-parallel replicas per stage: folded DP, orthogonal EP x DP.
  [[nodiscard]] std::int64_t attention_dp() const;
  /// Expert data-parallel degree EDP = ranks_per_stage / (ETP x EP); 0 when
  /// that is not a positive integer (an invalid strategy).
  [[nodiscard]] std::int64_t expert_dp() const;
  /// "TP2 PP1 DP32 EP8 ETP1 (folded, order tp-ep-dp-pp)".
  [[nodiscard]] std::string describe() const;
};

/// The outcome of a validation: every violated constraint (each a sentence
/// that says what is wrong and what the numbers are), and notes that are not
/// errors (unused GPUs, KV-head replication, the other convention's count).
struct ValidationResult {
  std::vector<std::string> violations;
  std::vector<std::string> notes;
  [[nodiscard]] bool ok() const { return violations.empty(); }
  /// Numbered list of the violations then the notes.
  [[nodiscard]] std::string to_string() const;
  /// Throws InputError with to_string() when not ok().
  void throw_if_invalid() const;
};

/// Structural checks, all at once: degrees >= 1; world size against
/// `cluster_gpus` under the chosen convention (a larger world is a
/// violation, a smaller one a note; the other convention's count is always
/// noted); folded EDP integral; orthogonal ETP | TP; heads, hidden (and dense
/// and shared FFN widths) divisible by TP; KV heads divisible by TP, or TP
/// divisible by KV heads (each KV head then replicated on TP/KV ranks, as
/// Megatron and vLLM do); experts divisible by EP; ETP divides the expert
/// FFN; PP <= layers and layers % PP == 0, or the explicit split has PP
/// entries >= 1 summing to the layers; micro-batches >= 1; the rank order is
/// consistent (see above). The memory check is in memory_model.hpp's
/// validate() overload.
ValidationResult validate(const ModelSpec& model, const Strategy& strategy, std::int64_t cluster_gpus);

/// Coordinates of one global rank. Attention view: tp, attn_dp; expert view:
/// etp, ep, edp; both: pp (the stage). For folded, dp == attn_dp; for
/// orthogonal, dp is the DP coordinate and attn_dp = ep + EP x dp.
/// Largest world the mapping tabulates (per-rank tables).
inline constexpr std::int64_t kMaxWorldSize = 1 << 20;

struct RankCoord {
  std::int64_t rank = 0;
  std::int64_t pp = 0;
  std::int64_t tp = 0;
  std::int64_t dp = 0;
  std::int64_t attn_dp = 0;
  std::int64_t ep = 0;
  std::int64_t etp = 0;
  std::int64_t edp = 0;
};

/// The rank -> GPU mapping and the communication groups of a strategy.
/// Groups are returned in rank order of the collective (element r = the GPU
/// of rank r in that group). Global rank g runs on GPU g.
class RankMapping {
 public:
  /// Throws InputError (with every violation) when the strategy is not
  /// structurally valid for the model (world size vs cluster excepted: pass
  /// cluster_gpus to validate() for that), or its world exceeds
  /// kMaxWorldSize.
  RankMapping(const ModelSpec& model, const Strategy& strategy);

  [[nodiscard]] const Strategy& strategy() const { return strategy_; }
  [[nodiscard]] std::int64_t world_size() const { return world_; }
  [[nodiscard]] std::int64_t ranks_per_stage() const { return per_stage_; }
  [[nodiscard]] std::int64_t stages() const { return strategy_.pp; }
  [[nodiscard]] std::int64_t attention_dp() const { return strategy_.attention_dp(); }
  [[nodiscard]] std::int64_t expert_dp() const { return strategy_.expert_dp(); }

  [[nodiscard]] RankCoord coord(GpuId gpu) const;
  [[nodiscard]] std::int64_t stage_of(GpuId gpu) const { return coord(gpu).pp; }

  /// TP group of `gpu` (attention/dense TP all-reduce), ordered by tp.
  [[nodiscard]] std::vector<GpuId> tp_group_of(GpuId gpu) const;
  /// EP group of `gpu`: the GPUs among which the dispatch/combine all-to-all
  /// runs, ordered by EP rank (element r holds the experts of EP rank r).
  [[nodiscard]] std::vector<GpuId> ep_group_of(GpuId gpu) const;
  /// ETP group (expert tensor parallel all-reduce / reduce-scatter), by etp.
  [[nodiscard]] std::vector<GpuId> etp_group_of(GpuId gpu) const;
  /// Attention DP replicas of `gpu` (same tp and stage), by attn_dp.
  [[nodiscard]] std::vector<GpuId> dp_group_of(GpuId gpu) const;
  /// Expert DP replicas (same etp, ep and stage), by edp.
  [[nodiscard]] std::vector<GpuId> edp_group_of(GpuId gpu) const;
  /// The GPUs with the same coordinates in every stage, by stage: the
  /// pipeline path of `gpu` (element s = its peer in stage s).
  [[nodiscard]] std::vector<GpuId> pp_peers_of(GpuId gpu) const;

  /// All GPUs of `stage`, by rank.
  [[nodiscard]] std::vector<GpuId> gpus_of_stage(std::int64_t stage) const;
  /// The TP group of attention DP replica `attn_dp_replica` in `stage`.
  [[nodiscard]] std::vector<GpuId> gpus_of_stage(std::int64_t stage, std::int64_t attn_dp_replica) const;
  /// Every TP group of a stage (attn_dp order).
  [[nodiscard]] std::vector<std::vector<GpuId>> tp_groups_of_stage(std::int64_t stage) const;
  /// Every EP group of a stage (ordered by (etp, edp) of its members).
  [[nodiscard]] std::vector<std::vector<GpuId>> ep_groups_of_stage(std::int64_t stage) const;

  /// Layers of `stage`: [first, end).
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> layer_range(std::int64_t stage) const;
  [[nodiscard]] std::int64_t layers_of_stage(std::int64_t stage) const;
  [[nodiscard]] std::int64_t moe_layers_of_stage(std::int64_t stage) const;
  [[nodiscard]] std::int64_t stage_of_layer(std::int64_t layer) const;

  /// Routed experts held by each EP rank per MoE layer (experts / EP).
  [[nodiscard]] std::int64_t experts_per_gpu() const { return experts_per_rank_; }
  /// Experts of EP rank `ep_rank`: contiguous block [first, end); expert e on
  /// EP rank e / experts_per_gpu().
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> experts_of_ep_rank(std::int64_t ep_rank) const;
  [[nodiscard]] std::int64_t ep_rank_of_expert(std::int64_t expert) const;
  /// expert -> EP rank, for every routed expert (input to routing).
  [[nodiscard]] std::vector<std::int32_t> expert_owner() const;

 private:
  void check_gpu(GpuId gpu) const;
  [[nodiscard]] GpuId rank_of_attention(std::int64_t pp, std::int64_t tp, std::int64_t attn_dp) const;
  [[nodiscard]] GpuId rank_of_expert(std::int64_t pp, std::int64_t etp, std::int64_t ep, std::int64_t edp) const;

  Strategy strategy_;
  std::int64_t layers_ = 0;
  std::int64_t dense_layers_ = 0;
  std::int64_t experts_ = 0;
  std::int64_t world_ = 0;
  std::int64_t per_stage_ = 0;
  std::int64_t experts_per_rank_ = 0;
  std::vector<std::int64_t> stage_first_layer_;  // size pp + 1
  std::vector<RankCoord> coords_;                // by global rank
  std::vector<GpuId> attention_index_;           // (pp, attn_dp, tp) -> rank
  std::vector<GpuId> expert_index_;              // (pp, edp, ep, etp) -> rank
};

}  // namespace moesim
