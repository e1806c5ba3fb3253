#include "workloads/strategy.hpp"

#include <algorithm>
#include <cctype>
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

std::string str(std::int64_t v) { return std::to_string(v); }

// One dimension of a mixed-radix rank decomposition.
struct Radix {
  ParallelDim dim;
  std::int64_t size;
};

// The digit of each dimension in `g` (mixed radix, innermost first); a
// dimension absent from `radix` reads 0.
struct Digits {
  std::int64_t tp = 0;
  std::int64_t ep = 0;
  std::int64_t dp = 0;
  std::int64_t pp = 0;
};

Digits decompose(std::int64_t g, const std::vector<Radix>& radix) {
  Digits d;
  for (const Radix& r : radix) {
    const std::int64_t digit = g % r.size;
    g /= r.size;
    switch (r.dim) {
      case ParallelDim::kTp: d.tp = digit; break;
      case ParallelDim::kEp: d.ep = digit; break;
      case ParallelDim::kDp: d.dp = digit; break;
      case ParallelDim::kPp: d.pp = digit; break;
    }
  }
  return d;
}

// Sizes of the views. Folded attention view: order without ep (tp, dp, pp);
// folded expert view: tp -> etp, dp -> edp. Orthogonal: the four dimensions.
std::vector<Radix> attention_radix(const Strategy& s) {
  std::vector<Radix> out;
  for (ParallelDim d : s.order) {
    switch (d) {
      case ParallelDim::kTp: out.push_back({d, s.tp}); break;
      case ParallelDim::kEp:
        if (s.convention == Convention::kOrthogonal) out.push_back({d, s.ep});
        break;
      case ParallelDim::kDp: out.push_back({d, s.dp}); break;
      case ParallelDim::kPp: out.push_back({d, s.pp}); break;
    }
  }
  return out;
}

std::vector<Radix> expert_radix(const Strategy& s, std::int64_t edp) {
  std::vector<Radix> out;
  for (ParallelDim d : s.order) {
    switch (d) {
      case ParallelDim::kTp: out.push_back({d, s.etp}); break;
      case ParallelDim::kEp: out.push_back({d, s.ep}); break;
      case ParallelDim::kDp: out.push_back({d, edp}); break;
      case ParallelDim::kPp: out.push_back({d, s.pp}); break;
    }
  }
  return out;
}

bool degrees_positive(const Strategy& s) {
  return s.tp >= 1 && s.pp >= 1 && s.dp >= 1 && s.ep >= 1 && s.etp >= 1;
}

// The first global rank whose PP coordinate differs between the attention
// and the expert view of a folded strategy; -1 when they agree everywhere.
std::int64_t folded_order_conflict(const Strategy& s) {
  if (s.convention != Convention::kFolded || s.expert_dp() < 1) return -1;
  if (s.world_size() > kMaxWorldSize) return -1;  // too large to map anyway (reported elsewhere)
  const auto att = attention_radix(s);
  const auto exp = expert_radix(s, s.expert_dp());
  const std::int64_t world = s.world_size();
  for (std::int64_t g = 0; g < world; ++g) {
    if (decompose(g, att).pp != decompose(g, exp).pp) return g;
  }
  return -1;
}

}  // namespace

std::string_view to_string(Convention c) {
  return c == Convention::kFolded ? "folded" : "orthogonal";
}

Convention parse_convention(std::string_view text, std::string_view what) {
  const std::string t = lower(text);
  if (t == "folded") return Convention::kFolded;
  if (t == "orthogonal") return Convention::kOrthogonal;
  throw InputError(std::string(what) + ": unknown convention '" + std::string(text) +
                   "' (allowed: folded = world TP x PP x DP with EP carved out of TP x DP, as Megatron-Core/vLLM; "
                   "orthogonal = world TP x PP x EP x DP)");
}

std::string_view to_string(ParallelDim d) {
  switch (d) {
    case ParallelDim::kTp: return "tp";
    case ParallelDim::kEp: return "ep";
    case ParallelDim::kDp: return "dp";
    case ParallelDim::kPp: return "pp";
  }
  return "?";
}

RankOrder parse_rank_order(std::string_view text, std::string_view what) {
  std::vector<ParallelDim> dims;
  const std::string t = lower(text);
  std::size_t pos = 0;
  auto fail = [&](const std::string& why) -> InputError {
    return InputError(std::string(what) + ": bad rank order '" + std::string(text) + "': " + why +
                      " (write the dimensions innermost first, separated by '-', e.g. tp-ep-dp-pp or tp-dp-pp)");
  };
  while (pos <= t.size()) {
    const std::size_t dash = t.find('-', pos);
    const std::string tok = t.substr(pos, dash == std::string::npos ? std::string::npos : dash - pos);
    pos = dash == std::string::npos ? t.size() + 1 : dash + 1;
    ParallelDim d{};
    if (tok == "tp") {
      d = ParallelDim::kTp;
    } else if (tok == "ep") {
      d = ParallelDim::kEp;
    } else if (tok == "dp") {
      d = ParallelDim::kDp;
    } else if (tok == "pp") {
      d = ParallelDim::kPp;
    } else {
      throw fail("unknown dimension '" + tok + "'");
    }
    if (std::find(dims.begin(), dims.end(), d) != dims.end()) throw fail("'" + tok + "' appears twice");
    dims.push_back(d);
  }
  const bool has_ep = std::find(dims.begin(), dims.end(), ParallelDim::kEp) != dims.end();
  if (!has_ep && dims.size() == 3) {
    // Megatron-Core's default "tp-cp-ep-dp-pp": EP sits just inside DP.
    dims.insert(std::find(dims.begin(), dims.end(), ParallelDim::kDp), ParallelDim::kEp);
  }
  if (dims.size() != 4) throw fail("it must name tp, dp and pp (and optionally ep) once each");
  return RankOrder{dims[0], dims[1], dims[2], dims[3]};
}

std::string to_string(const RankOrder& order) {
  std::string out;
  for (ParallelDim d : order) {
    if (!out.empty()) out += "-";
    out += to_string(d);
  }
  return out;
}

std::int64_t Strategy::world_size(Convention c) const {
  return c == Convention::kFolded ? tp * pp * dp : tp * pp * ep * dp;
}

std::int64_t Strategy::attention_dp() const {
  return convention == Convention::kFolded ? dp : ep * dp;
}

std::int64_t Strategy::expert_dp() const {
  if (!degrees_positive(*this)) return 0;
  const std::int64_t per_stage = world_size() / pp;
  const std::int64_t group = etp * ep;
  if (per_stage % group != 0) return 0;
  if (convention == Convention::kOrthogonal && tp % etp != 0) return 0;
  return per_stage / group;
}

std::string Strategy::describe() const {
  std::ostringstream os;
  os << "TP" << tp << " PP" << pp << " DP" << dp << " EP" << ep << " ETP" << etp << " (" << to_string(convention)
     << ", " << microbatches << " micro-batch" << (microbatches == 1 ? "" : "es") << ", order "
     << to_string(order);
  if (!layers_per_stage.empty()) {
    os << ", layers per stage ";
    for (std::size_t i = 0; i < layers_per_stage.size(); ++i) os << (i ? "," : "") << layers_per_stage[i];
  }
  os << ")";
  return os.str();
}

std::string ValidationResult::to_string() const {
  std::ostringstream os;
  if (violations.empty()) {
    os << "no violated constraint\n";
  } else {
    os << violations.size() << " violated constraint" << (violations.size() == 1 ? "" : "s") << ":\n";
    for (std::size_t i = 0; i < violations.size(); ++i) os << "  " << (i + 1) << ". " << violations[i] << "\n";
  }
  if (!notes.empty()) {
    os << "notes:\n";
    for (const std::string& n : notes) os << "  - " << n << "\n";
  }
  return os.str();
}

void ValidationResult::throw_if_invalid() const {
  if (!ok()) throw InputError("invalid parallel strategy: " + to_string());
}

ValidationResult validate(const ModelSpec& model, const Strategy& s, std::int64_t cluster_gpus) {
  ValidationResult r;
  auto& v = r.violations;
  auto& notes = r.notes;

  const std::pair<const char*, std::int64_t> degrees[] = {{"tp", s.tp}, {"pp", s.pp}, {"dp", s.dp},
                                                           {"ep", s.ep}, {"etp", s.etp}};
  for (const auto& [name, value] : degrees) {
    if (value < 1) v.push_back(std::string("strategy.") + name + " must be >= 1 (is " + str(value) + ")");
  }
  if (s.microbatches < 1) v.push_back("strategy.microbatches must be >= 1 (is " + str(s.microbatches) + ")");
  if (!degrees_positive(s)) return r;  // every product below would be meaningless

  // World size, under the chosen convention and the other.
  const std::string folded_expr = "TP x PP x DP = " + str(s.tp) + " x " + str(s.pp) + " x " + str(s.dp) + " = " +
                                  str(s.world_size(Convention::kFolded));
  const std::string orth_expr = "TP x PP x EP x DP = " + str(s.tp) + " x " + str(s.pp) + " x " + str(s.ep) + " x " +
                                str(s.dp) + " = " + str(s.world_size(Convention::kOrthogonal));
  const bool folded = s.convention == Convention::kFolded;
  const std::string own_expr = folded ? folded_expr : orth_expr;
  const std::string other_expr = folded ? orth_expr : folded_expr;
  const std::int64_t world = s.world_size();
  if (world > cluster_gpus) {
    v.push_back("world size: " + own_expr + " GPUs under the " + std::string(to_string(s.convention)) +
                " convention, but the cluster has " + str(cluster_gpus) + " GPUs (under the " +
                std::string(folded ? "orthogonal" : "folded") + " convention: " + other_expr + ")");
  } else {
    if (world < cluster_gpus) {
      notes.push_back("the strategy uses " + str(world) + " of the cluster's " + str(cluster_gpus) + " GPUs (" +
                      own_expr + "); " + str(cluster_gpus - world) + " stay idle");
    }
    notes.push_back("world size " + own_expr + " (" + std::string(to_string(s.convention)) + "); under the " +
                    std::string(folded ? "orthogonal" : "folded") + " convention it would be " + other_expr);
  }

  // How experts re-partition the ranks of a stage.
  if (folded) {
    const std::int64_t per_stage = s.tp * s.dp;
    if (per_stage % (s.etp * s.ep) != 0) {
      v.push_back("folded experts: each stage's TP x DP = " + str(per_stage) +
                  " ranks must split into ETP x EP x EDP, but ETP x EP = " + str(s.etp) + " x " + str(s.ep) + " = " +
                  str(s.etp * s.ep) + " does not divide " + str(per_stage));
    }
  } else if (s.tp % s.etp != 0) {
    v.push_back("orthogonal experts: ETP (" + str(s.etp) + ") must divide TP (" + str(s.tp) +
                ") because expert tensor-parallel groups are carved out of the TP groups");
  }

  // Tensor parallelism.
  if (model.heads % s.tp != 0) {
    v.push_back("attention heads (" + str(model.heads) + ") are not divisible by TP (" + str(s.tp) + ")");
  }
  if (model.hidden % s.tp != 0) {
    v.push_back("hidden size (" + str(model.hidden) + ") is not divisible by TP (" + str(s.tp) + ")");
  }
  if (model.attention == AttentionKind::kGqa) {
    if (model.kv_heads % s.tp != 0) {
      if (s.tp % model.kv_heads == 0) {
        notes.push_back("KV heads (" + str(model.kv_heads) + ") < TP (" + str(s.tp) + "): each KV head is replicated on " +
                        str(s.tp / model.kv_heads) + " TP ranks (as Megatron-LM and vLLM do)");
      } else {
        v.push_back("KV heads (" + str(model.kv_heads) + ") and TP (" + str(s.tp) +
                    "): TP must divide the KV heads, or be a multiple of them (KV-head replication)");
      }
    }
  }
  if (model.dense_layers > 0 && model.dense_ffn % s.tp != 0) {
    v.push_back("dense FFN size (" + str(model.dense_ffn) + ") is not divisible by TP (" + str(s.tp) + ")");
  }
  if (model.shared_experts > 0 && model.shared_expert_ffn % s.tp != 0) {
    v.push_back("shared-expert FFN size (" + str(model.shared_expert_ffn) + ") is not divisible by TP (" +
                str(s.tp) + ")");
  }
  if (model.vocab % s.tp != 0) {
    notes.push_back("vocabulary (" + str(model.vocab) + ") is not divisible by TP (" + str(s.tp) +
                    "): the vocab-parallel embedding and LM head are padded (as Megatron-LM does)");
  }

  // Expert parallelism.
  if (model.experts % s.ep != 0) {
    v.push_back("experts per layer (" + str(model.experts) + ") are not divisible by EP (" + str(s.ep) + ")");
  }
  if (model.expert_ffn % s.etp != 0) {
    v.push_back("expert FFN size (" + str(model.expert_ffn) + ") is not divisible by ETP (" + str(s.etp) + ")");
  }

  // Pipeline.
  if (!s.layers_per_stage.empty()) {
    std::int64_t sum = 0;
    bool positive = true;
    for (std::int64_t l : s.layers_per_stage) {
      sum += l;
      positive = positive && l >= 1;
    }
    if (static_cast<std::int64_t>(s.layers_per_stage.size()) != s.pp) {
      v.push_back("strategy.layers_per_stage has " + str(static_cast<std::int64_t>(s.layers_per_stage.size())) +
                  " entries but PP is " + str(s.pp));
    }
    if (!positive) v.push_back("strategy.layers_per_stage: every stage needs at least one layer");
    if (sum != model.layers) {
      v.push_back("strategy.layers_per_stage sums to " + str(sum) + " layers but the model has " +
                  str(model.layers));
    }
  } else if (s.pp > model.layers) {
    v.push_back("PP (" + str(s.pp) + ") exceeds the layers (" + str(model.layers) + ")");
  } else if (model.layers % s.pp != 0) {
    v.push_back("layers (" + str(model.layers) + ") are not divisible by PP (" + str(s.pp) +
                "); give an explicit uneven split with strategy.layers_per_stage");
  }

  // Rank order (folded: both views must agree on the stage of every rank).
  const std::int64_t conflict = folded_order_conflict(s);
  if (conflict >= 0) {
    v.push_back("rank order " + to_string(s.order) + " is inconsistent under the folded convention: rank " +
                str(conflict) + " falls in different pipeline stages in the attention (TP, DP, PP) and expert "
                "(ETP, EP, EDP, PP) views; put pp outermost (e.g. tp-ep-dp-pp)");
  }
  return r;
}

// ---- RankMapping -------------------------------------------------------------

RankMapping::RankMapping(const ModelSpec& model, const Strategy& strategy) : strategy_(strategy) {
  ValidationResult r = validate(model, strategy, strategy.world_size());
  if (strategy.world_size() > kMaxWorldSize) {
    r.violations.push_back("world size " + str(strategy.world_size()) + " exceeds the " + str(kMaxWorldSize) +
                           " ranks moesim maps");
  }
  r.throw_if_invalid();
  const Strategy& s = strategy_;
  layers_ = model.layers;
  dense_layers_ = model.dense_layers;
  experts_ = model.experts;
  world_ = s.world_size();
  per_stage_ = world_ / s.pp;
  experts_per_rank_ = model.experts / s.ep;

  stage_first_layer_.assign(static_cast<std::size_t>(s.pp + 1), 0);
  for (std::int64_t st = 0; st < s.pp; ++st) {
    const std::int64_t n = s.layers_per_stage.empty() ? model.layers / s.pp
                                                      : s.layers_per_stage[static_cast<std::size_t>(st)];
    stage_first_layer_[static_cast<std::size_t>(st + 1)] = stage_first_layer_[static_cast<std::size_t>(st)] + n;
  }

  const std::int64_t edp = s.expert_dp();
  const auto att = attention_radix(s);
  const auto exp = expert_radix(s, edp);
  coords_.resize(static_cast<std::size_t>(world_));
  for (std::int64_t g = 0; g < world_; ++g) {
    RankCoord c;
    c.rank = g;
    const Digits a = decompose(g, att);
    c.pp = a.pp;
    c.tp = a.tp;
    if (s.convention == Convention::kFolded) {
      c.dp = a.dp;
      c.attn_dp = a.dp;
      const Digits e = decompose(g, exp);
      c.etp = e.tp;
      c.ep = e.ep;
      c.edp = e.dp;
    } else {
      c.dp = a.dp;
      c.ep = a.ep;
      c.attn_dp = a.ep + s.ep * a.dp;
      c.etp = a.tp % s.etp;
      c.edp = a.tp / s.etp + (s.tp / s.etp) * a.dp;
    }
    coords_[static_cast<std::size_t>(g)] = c;
  }
  attention_index_.assign(static_cast<std::size_t>(world_), -1);
  expert_index_.assign(static_cast<std::size_t>(world_), -1);
  for (const RankCoord& c : coords_) {
    const std::int64_t ai = (c.pp * s.attention_dp() + c.attn_dp) * s.tp + c.tp;
    const std::int64_t ei = ((c.pp * edp + c.edp) * s.ep + c.ep) * s.etp + c.etp;
    attention_index_[static_cast<std::size_t>(ai)] = static_cast<GpuId>(c.rank);
    expert_index_[static_cast<std::size_t>(ei)] = static_cast<GpuId>(c.rank);
  }
}

void RankMapping::check_gpu(GpuId gpu) const {
  if (gpu < 0 || gpu >= world_) {
    throw std::out_of_range("GPU " + std::to_string(gpu) + " is not in the strategy's world of " +
                            std::to_string(world_) + " ranks");
  }
}

RankCoord RankMapping::coord(GpuId gpu) const {
  check_gpu(gpu);
  return coords_[static_cast<std::size_t>(gpu)];
}

GpuId RankMapping::rank_of_attention(std::int64_t pp, std::int64_t tp, std::int64_t attn_dp) const {
  const std::int64_t i = (pp * strategy_.attention_dp() + attn_dp) * strategy_.tp + tp;
  return attention_index_[static_cast<std::size_t>(i)];
}

GpuId RankMapping::rank_of_expert(std::int64_t pp, std::int64_t etp, std::int64_t ep, std::int64_t edp) const {
  const std::int64_t i = ((pp * expert_dp() + edp) * strategy_.ep + ep) * strategy_.etp + etp;
  return expert_index_[static_cast<std::size_t>(i)];
}

std::vector<GpuId> RankMapping::tp_group_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t t = 0; t < strategy_.tp; ++t) out.push_back(rank_of_attention(c.pp, t, c.attn_dp));
  return out;
}

std::vector<GpuId> RankMapping::dp_group_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t a = 0; a < attention_dp(); ++a) out.push_back(rank_of_attention(c.pp, c.tp, a));
  return out;
}

std::vector<GpuId> RankMapping::ep_group_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t e = 0; e < strategy_.ep; ++e) out.push_back(rank_of_expert(c.pp, c.etp, e, c.edp));
  return out;
}

std::vector<GpuId> RankMapping::etp_group_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t t = 0; t < strategy_.etp; ++t) out.push_back(rank_of_expert(c.pp, t, c.ep, c.edp));
  return out;
}

std::vector<GpuId> RankMapping::edp_group_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t d = 0; d < expert_dp(); ++d) out.push_back(rank_of_expert(c.pp, c.etp, c.ep, d));
  return out;
}

std::vector<GpuId> RankMapping::pp_peers_of(GpuId gpu) const {
  const RankCoord c = coord(gpu);
  std::vector<GpuId> out;
  for (std::int64_t s = 0; s < strategy_.pp; ++s) out.push_back(rank_of_attention(s, c.tp, c.attn_dp));
  return out;
}

std::vector<GpuId> RankMapping::gpus_of_stage(std::int64_t stage) const {
  if (stage < 0 || stage >= strategy_.pp) throw std::out_of_range("stage " + std::to_string(stage) + " out of range");
  std::vector<GpuId> out;
  for (const RankCoord& c : coords_) {
    if (c.pp == stage) out.push_back(static_cast<GpuId>(c.rank));
  }
  return out;
}

std::vector<GpuId> RankMapping::gpus_of_stage(std::int64_t stage, std::int64_t attn_dp_replica) const {
  if (stage < 0 || stage >= strategy_.pp) throw std::out_of_range("stage " + std::to_string(stage) + " out of range");
  if (attn_dp_replica < 0 || attn_dp_replica >= attention_dp()) {
    throw std::out_of_range("attention DP replica " + std::to_string(attn_dp_replica) + " out of range");
  }
  std::vector<GpuId> out;
  for (std::int64_t t = 0; t < strategy_.tp; ++t) out.push_back(rank_of_attention(stage, t, attn_dp_replica));
  return out;
}

std::vector<std::vector<GpuId>> RankMapping::tp_groups_of_stage(std::int64_t stage) const {
  std::vector<std::vector<GpuId>> out;
  for (std::int64_t a = 0; a < attention_dp(); ++a) out.push_back(gpus_of_stage(stage, a));
  return out;
}

std::vector<std::vector<GpuId>> RankMapping::ep_groups_of_stage(std::int64_t stage) const {
  if (stage < 0 || stage >= strategy_.pp) throw std::out_of_range("stage " + std::to_string(stage) + " out of range");
  std::vector<std::vector<GpuId>> out;
  for (std::int64_t d = 0; d < expert_dp(); ++d) {
    for (std::int64_t t = 0; t < strategy_.etp; ++t) {
      std::vector<GpuId> group;
      for (std::int64_t e = 0; e < strategy_.ep; ++e) group.push_back(rank_of_expert(stage, t, e, d));
      out.push_back(std::move(group));
    }
  }
  return out;
}

std::pair<std::int64_t, std::int64_t> RankMapping::layer_range(std::int64_t stage) const {
  if (stage < 0 || stage >= strategy_.pp) throw std::out_of_range("stage " + std::to_string(stage) + " out of range");
  const auto i = static_cast<std::size_t>(stage);
  return {stage_first_layer_[i], stage_first_layer_[i + 1]};
}

std::int64_t RankMapping::layers_of_stage(std::int64_t stage) const {
  const auto [first, end] = layer_range(stage);
  return end - first;
}

std::int64_t RankMapping::moe_layers_of_stage(std::int64_t stage) const {
  const auto [first, end] = layer_range(stage);
  return end - std::max(first, std::min(end, dense_layers_));
}

std::int64_t RankMapping::stage_of_layer(std::int64_t layer) const {
  if (layer < 0 || layer >= layers_) throw std::out_of_range("layer " + std::to_string(layer) + " out of range");
  const auto it = std::upper_bound(stage_first_layer_.begin(), stage_first_layer_.end(), layer);
  return static_cast<std::int64_t>(it - stage_first_layer_.begin()) - 1;
}

std::pair<std::int64_t, std::int64_t> RankMapping::experts_of_ep_rank(std::int64_t ep_rank) const {
  if (ep_rank < 0 || ep_rank >= strategy_.ep) {
    throw std::out_of_range("EP rank " + std::to_string(ep_rank) + " out of range");
  }
  return {ep_rank * experts_per_rank_, (ep_rank + 1) * experts_per_rank_};
}

std::int64_t RankMapping::ep_rank_of_expert(std::int64_t expert) const {
  if (expert < 0 || expert >= experts_) throw std::out_of_range("expert " + std::to_string(expert) + " out of range");
  return expert / experts_per_rank_;
}

std::vector<std::int32_t> RankMapping::expert_owner() const {
  std::vector<std::int32_t> out(static_cast<std::size_t>(experts_));
  for (std::int64_t e = 0; e < experts_; ++e) out[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(e / experts_per_rank_);
  return out;
}

}  // namespace moesim
