#include "workloads/plan_builder.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "sim/options.hpp"

namespace moesim {

namespace {

Precision to_precision(DType t) {
  switch (t) {
    case DType::kBf16: return Precision::kBf16;
    case DType::kFp16: return Precision::kFp16;
    case DType::kFp8: return Precision::kFp8;
    case DType::kFp32: return Precision::kFp32;
  }
  return Precision::kBf16;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

/// Rank `i`'s share when `n` items are dealt over `parts` (the first n % parts
/// get one more).
std::int64_t share(std::int64_t n, std::int64_t parts, std::int64_t i) {
  return n / parts + (i < n % parts ? 1 : 0);
}

std::size_t uz(std::int64_t v) { return static_cast<std::size_t>(v); }

constexpr std::size_t kExpertCacheLimit = 1 << 16;

}  // namespace

// ---------------------------------------------------------------------------
// Batch description

std::int64_t MicroBatchWork::tokens() const {
  std::int64_t t = 0;
  for (const auto& s : sequences) t += s.new_tokens;
  return t;
}

BatchDescription BatchDescription::prefill(std::int64_t batch, std::int64_t prompt_tokens, std::int64_t replicas,
                                           std::int64_t microbatches) {
  if (batch < 1) throw InputError("workload.batch must be >= 1 (got " + std::to_string(batch) + ")");
  if (prompt_tokens < 1) {
    throw InputError("workload.prompt_tokens must be >= 1 (got " + std::to_string(prompt_tokens) + ")");
  }
  if (replicas < 1) throw InputError("the attention data-parallel degree must be >= 1");
  if (microbatches < 1) throw InputError("strategy.microbatches must be >= 1");
  BatchDescription d;
  d.replicas.resize(uz(replicas));
  for (std::int64_t r = 0; r < replicas; ++r) {
    const std::int64_t seqs = share(batch, replicas, r);
    auto& mbs = d.replicas[uz(r)];
    mbs.resize(uz(microbatches));
    for (std::int64_t m = 0; m < microbatches; ++m) {
      mbs[uz(m)].sequences.assign(uz(share(seqs, microbatches, m)), SequenceChunk{prompt_tokens, 0, true});
    }
  }
  return d;
}

std::int64_t BatchDescription::microbatches() const {
  return replicas.empty() ? 0 : static_cast<std::int64_t>(replicas.front().size());
}

std::int64_t BatchDescription::sequences() const {
  std::int64_t n = 0;
  for (const auto& r : replicas)
    for (const auto& m : r) n += static_cast<std::int64_t>(m.sequences.size());
  return n;
}

std::int64_t BatchDescription::tokens() const {
  std::int64_t n = 0;
  for (const auto& r : replicas)
    for (const auto& m : r) n += m.tokens();
  return n;
}

std::int64_t BatchDescription::sampled_tokens() const {
  std::int64_t n = 0;
  for (const auto& r : replicas)
    for (const auto& m : r)
      for (const auto& s : m.sequences) n += s.samples ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------------------
// Expert load

double ExpertLoad::imbalance(std::size_t row) const {
  const auto& t = expert_tokens.at(row);
  if (t.empty()) return 0.0;
  const std::int64_t total = std::accumulate(t.begin(), t.end(), std::int64_t{0});
  if (total == 0) return 0.0;
  const std::int64_t mx = *std::max_element(t.begin(), t.end());
  return static_cast<double>(mx) * static_cast<double>(t.size()) / static_cast<double>(total);
}

double ExpertLoad::mean_imbalance() const {
  if (expert_tokens.empty()) return 0.0;
  double s = 0.0;
  for (std::size_t i = 0; i < expert_tokens.size(); ++i) s += imbalance(i);
  return s / static_cast<double>(expert_tokens.size());
}

double ExpertLoad::max_imbalance() const {
  double m = 0.0;
  for (std::size_t i = 0; i < expert_tokens.size(); ++i) m = std::max(m, imbalance(i));
  return m;
}

// ---------------------------------------------------------------------------
// Builder

PlanBuilder::PlanBuilder(const ModelSpec& model, const RankMapping& mapping, const ComputeModel& compute,
                         const ExpertRouter& router, PlanBuilderOptions options)
    : model_(&model), mapping_(&mapping), compute_(&compute), router_(&router), options_(options) {
  const std::int64_t world = mapping.world_size();
  gpus_ = options.cluster_gpus > 0 ? options.cluster_gpus : static_cast<std::int32_t>(world);
  if (gpus_ < world) {
    throw InputError("the strategy needs " + std::to_string(world) + " GPUs but the cluster has " +
                     std::to_string(gpus_));
  }
  placement_.ep = static_cast<std::int32_t>(mapping.strategy().ep);
  placement_.owner = mapping.expert_owner();
}

Precision PlanBuilder::weight_precision() const { return to_precision(model_->weight_dtype); }
Precision PlanBuilder::activation_precision() const { return to_precision(model_->activation_dtype); }

Duration PlanBuilder::norm_time(std::int64_t tokens) const {
  if (tokens <= 0) return Duration::zero();
  return compute_->time(NormOp{tokens, model_->hidden, activation_precision(), NormKind::kRmsNorm});
}

Duration PlanBuilder::attention_time(const MicroBatchWork& mb) const {
  const std::int64_t t = mb.tokens();
  if (t <= 0) return Duration::zero();
  const ModelSpec& m = *model_;
  const std::int64_t tp = mapping_->strategy().tp;
  const Precision w = weight_precision();
  const std::int64_t heads = ceil_div(m.heads, tp);
  Duration total{};
  std::int64_t kv_heads = 0;
  std::int64_t head_dim = m.attention_qk_dim();
  std::int64_t decode_kv_heads = 0;
  std::int64_t decode_head_dim = 0;
  if (m.attention == AttentionKind::kMla) {
    // MLA projections (DeepSeek-V2 paper, sec. 2.1): the down projections
    // q_a and kv_a are replicated on every TP rank; q_b, kv_b and o are split.
    const MlaSpec& a = m.mla;
    const std::int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    if (a.q_lora_rank > 0) {
      total += compute_->time(GemmOp{t, a.q_lora_rank, m.hidden, w});
      total += compute_->time(GemmOp{t, heads * qk, a.q_lora_rank, w});
    } else {
      total += compute_->time(GemmOp{t, heads * qk, m.hidden, w});
    }
    total += compute_->time(GemmOp{t, a.kv_lora_rank + a.qk_rope_head_dim, m.hidden, w});
    total += compute_->time(GemmOp{t, heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, w});
    total += compute_->time(GemmOp{t, m.hidden, heads * a.v_head_dim, w});
    // Prefill as decompressed MHA (model_spec.hpp's approximation).
    kv_heads = heads;
    // Decode reads the cached latent (kv_lora_rank + rope values per token):
    // expressed as one "KV head" of half that width, since the decode op
    // counts K and V (2 x kv_heads x head_dim elements per token).
    decode_kv_heads = 1;
    decode_head_dim = ceil_div(a.kv_lora_rank + a.qk_rope_head_dim, 2);
  } else {
    // GQA: KV heads split over min(tp, kv_heads) ranks, replicated beyond.
    kv_heads = std::max<std::int64_t>(1, m.kv_heads / tp);
    total += compute_->time(GemmOp{t, (heads + 2 * kv_heads) * m.head_dim, m.hidden, w});
    total += compute_->time(GemmOp{t, m.hidden, heads * m.head_dim, w});
    decode_kv_heads = kv_heads;
    decode_head_dim = m.head_dim;
  }
  // Attention kernels: one prefill kernel per distinct (new, cached) shape,
  // one decode kernel over all decoding sequences (ragged, as vLLM's paged
  // attention runs them).
  std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> prefill_shapes;
  std::int64_t decode_context = 0;
  for (const auto& s : mb.sequences) {
    if (s.new_tokens < 0 || s.cached_tokens < 0) throw InputError("a sequence has a negative token count");
    if (s.new_tokens == 0) continue;
    if (s.is_decode()) {
      decode_context += s.cached_tokens + 1;
    } else {
      ++prefill_shapes[{s.new_tokens, s.cached_tokens}];
    }
  }
  const Precision act = activation_precision();
  for (const auto& [shape, count] : prefill_shapes) {
    total += compute_->time(AttentionPrefillOp{count, heads, kv_heads, shape.first, shape.first + shape.second,
                                               head_dim, true, act});
  }
  if (decode_context > 0) {
    total += compute_->time(
        AttentionDecodeOp{1, heads, decode_kv_heads, decode_context, decode_head_dim, to_precision(m.kv_dtype)});
  }
  return total;
}

Duration PlanBuilder::router_time(std::int64_t tokens) const {
  if (tokens <= 0) return Duration::zero();
  return compute_->time(RouterOp{tokens, model_->hidden, model_->experts, model_->top_k, activation_precision()});
}

Duration PlanBuilder::ffn_time(std::int64_t tokens, std::int64_t width) const {
  if (tokens <= 0 || width <= 0) return Duration::zero();
  const Precision w = weight_precision();
  const bool swiglu = model_->ffn_kind == FfnKind::kSwiGlu;
  Duration d = compute_->time(GemmOp{tokens, (swiglu ? 2 : 1) * width, model_->hidden, w});
  // SwiGLU: silu(gate) * up reads two tensors, writes one (~5 FLOPs/element);
  // GELU: one in, one out (~8 FLOPs/element, tanh form).
  d += compute_->time(ElementwiseOp{tokens * width, activation_precision(), swiglu ? 2 : 1, 1, swiglu ? 5.0 : 8.0});
  d += compute_->time(GemmOp{tokens, model_->hidden, width, w});
  return d;
}

Duration PlanBuilder::expert_time(const std::vector<std::int64_t>& tokens_per_expert) const {
  std::int64_t total = 0;
  for (std::int64_t t : tokens_per_expert) total += t;
  if (total <= 0) return Duration::zero();
  if (auto it = expert_cache_.find(tokens_per_expert); it != expert_cache_.end()) return it->second;
  const std::int64_t width = ceil_div(model_->expert_ffn, mapping_->strategy().etp);
  const Precision w = weight_precision();
  const bool swiglu = model_->ffn_kind == FfnKind::kSwiGlu;
  const std::span<const std::int64_t> counts(tokens_per_expert);
  Duration d = compute_->time(GroupedGemmOp{counts, (swiglu ? 2 : 1) * width, model_->hidden, w});
  d += compute_->time(ElementwiseOp{total * width, activation_precision(), swiglu ? 2 : 1, 1, swiglu ? 5.0 : 8.0});
  d += compute_->time(GroupedGemmOp{counts, model_->hidden, width, w});
  // Bounded: a long serving run sees ever new token vectors.
  if (expert_cache_.size() >= kExpertCacheLimit) expert_cache_.clear();
  expert_cache_.emplace(tokens_per_expert, d);
  return d;
}

Duration PlanBuilder::shared_expert_time(std::int64_t tokens) const {
  if (model_->shared_experts <= 0) return Duration::zero();
  return ffn_time(tokens, ceil_div(model_->shared_experts * model_->shared_expert_ffn, mapping_->strategy().tp));
}

Duration PlanBuilder::dense_ffn_time(std::int64_t tokens) const {
  return ffn_time(tokens, ceil_div(model_->dense_ffn, mapping_->strategy().tp));
}

Duration PlanBuilder::embedding_time(std::int64_t tokens) const {
  if (tokens <= 0) return Duration::zero();
  // Row gather: read and write tokens x hidden activations.
  return compute_->time(MemoryOp{Bytes(2 * tokens * model_->hidden * dtype_bytes(model_->activation_dtype))});
}

Duration PlanBuilder::lm_head_time(std::int64_t sampled) const {
  if (sampled <= 0) return Duration::zero();
  return norm_time(sampled) +
         compute_->time(GemmOp{sampled, ceil_div(model_->vocab, mapping_->strategy().tp), model_->hidden,
                               weight_precision()});
}

BuiltPlan PlanBuilder::build(const BatchDescription& batch, StageRange stages) {
  const Strategy& st = mapping_->strategy();
  const ModelSpec& model = *model_;
  const std::int64_t replicas = mapping_->attention_dp();
  if (static_cast<std::int64_t>(batch.replicas.size()) != replicas) {
    throw InputError("the batch describes " + std::to_string(batch.replicas.size()) +
                     " attention data-parallel replicas but the strategy has " + std::to_string(replicas));
  }
  const std::int64_t mbs = batch.microbatches();
  if (mbs < 1) throw InputError("the batch has no micro-batch");
  for (const auto& r : batch.replicas) {
    if (static_cast<std::int64_t>(r.size()) != mbs) {
      throw InputError("every attention replica must have the same number of micro-batches (" +
                       std::to_string(mbs) + ")");
    }
  }
  const std::int64_t pp = st.pp;
  const std::int64_t first_stage = stages.first;
  const std::int64_t stage_end = stages.count < 0 ? pp : first_stage + stages.count;
  if (first_stage < 0 || first_stage >= pp || stage_end <= first_stage || stage_end > pp) {
    throw InputError("stage range [" + std::to_string(first_stage) + ", " + std::to_string(stage_end) +
                     ") is outside the " + std::to_string(pp) + " pipeline stages");
  }

  const std::int64_t tp = st.tp;
  const std::int64_t etp = st.etp;
  const std::int64_t h = model.hidden;
  const std::int64_t act_bytes = dtype_bytes(model.activation_dtype);

  // Per (replica, micro-batch): tokens and the durations that only depend on them.
  struct MbCost {
    std::int64_t tokens = 0;
    std::int64_t sampled = 0;
    Duration norm, attention, shared, dense, embedding, lm_head;
  };
  std::vector<MbCost> mb_cost(uz(replicas * mbs));
  for (std::int64_t r = 0; r < replicas; ++r) {
    for (std::int64_t m = 0; m < mbs; ++m) {
      const MicroBatchWork& w = batch.replicas[uz(r)][uz(m)];
      MbCost& c = mb_cost[uz(r * mbs + m)];
      c.tokens = w.tokens();
      for (const auto& s : w.sequences) c.sampled += s.samples ? 1 : 0;
      c.norm = norm_time(c.tokens);
      c.attention = attention_time(w);
      c.shared = shared_expert_time(c.tokens);
      c.dense = dense_ffn_time(c.tokens);
      c.embedding = embedding_time(c.tokens);
      c.lm_head = lm_head_time(c.sampled);
    }
  }

  BuiltPlan out{Plan(gpus_), batch.sequences(), batch.tokens(), batch.sampled_tokens(), {}, {}, 0.0};
  out.output_ops.resize(uz(replicas * mbs));
  Plan& plan = out.plan;
  {
    // Rough size hint: ~8 ops per GPU per layer per micro-batch.
    const std::size_t ops = uz(mapping_->world_size()) * uz(model.layers / pp + 1) * uz(mbs) * 8;
    plan.reserve(ops, ops * 2);
  }
  // Expert-load rows for the MoE layers of the covered stages.
  {
    const auto first_layer = mapping_->layer_range(first_stage).first;
    const auto end_layer = mapping_->layer_range(stage_end - 1).second;
    for (std::int64_t l = first_layer; l < end_layer; ++l) {
      if (!model.is_moe_layer(l)) continue;
      out.expert_load.layers.push_back(l);
      out.expert_load.expert_tokens.emplace_back(uz(model.experts), 0);
    }
  }

  // incoming[gpu][m]: the send/recv op that brings micro-batch m to `gpu`.
  std::vector<std::vector<OpId>> incoming(uz(gpus_));

  for (std::int64_t s = first_stage; s < stage_end; ++s) {
    const std::vector<GpuId> gpus = mapping_->gpus_of_stage(s);
    const auto tp_groups = mapping_->tp_groups_of_stage(s);
    const auto ep_groups = mapping_->ep_groups_of_stage(s);
    // Per GPU of the stage: replica, TP rank, token slice, groups.
    std::vector<std::int32_t> replica_of(uz(gpus_), -1), tp_rank_of(uz(gpus_), -1);
    std::vector<std::int32_t> tp_group_of(uz(gpus_), -1), ep_group_of(uz(gpus_), -1), ep_rank_of(uz(gpus_), -1);
    for (GpuId g : gpus) {
      const RankCoord c = mapping_->coord(g);
      replica_of[uz(g)] = static_cast<std::int32_t>(c.attn_dp);
      tp_rank_of[uz(g)] = static_cast<std::int32_t>(c.tp);
    }
    for (std::size_t i = 0; i < tp_groups.size(); ++i)
      for (GpuId g : tp_groups[i]) tp_group_of[uz(g)] = static_cast<std::int32_t>(i);
    for (std::size_t i = 0; i < ep_groups.size(); ++i) {
      for (std::size_t e = 0; e < ep_groups[i].size(); ++e) {
        ep_group_of[uz(ep_groups[i][e])] = static_cast<std::int32_t>(i);
        ep_rank_of[uz(ep_groups[i][e])] = static_cast<std::int32_t>(e);
      }
    }
    // ETP groups (expert tensor parallel): the GPUs holding the same experts'
    // shards; each sits in a different EP group.
    std::vector<std::vector<GpuId>> etp_groups;
    std::vector<std::int32_t> etp_group_of(uz(gpus_), -1);
    if (etp > 1) {
      for (GpuId g : gpus) {
        if (etp_group_of[uz(g)] >= 0) continue;
        auto grp = mapping_->etp_group_of(g);
        for (GpuId x : grp) etp_group_of[uz(x)] = static_cast<std::int32_t>(etp_groups.size());
        etp_groups.push_back(std::move(grp));
      }
    }
    const auto [layer_begin, layer_end] = mapping_->layer_range(s);
    const auto n_groups = static_cast<std::int64_t>(ep_groups.size());

    auto slice = [&](GpuId g, std::int64_t m) {
      const std::int64_t T = mb_cost[uz(replica_of[uz(g)] * mbs + m)].tokens;
      return share(T, tp, tp_rank_of[uz(g)]);
    };
    auto cost_of = [&](GpuId g, std::int64_t m) -> const MbCost& {
      return mb_cost[uz(replica_of[uz(g)] * mbs + m)];
    };

    std::vector<OpId> last(uz(gpus_), -1);
    std::vector<OpId> scratch(uz(gpus_), -1);
    std::vector<OpId> shared_op(uz(gpus_), -1);
    std::vector<OpId> group_op(ep_groups.size(), -1);
    std::vector<OpId> etp_op(etp_groups.size(), -1);
    std::vector<OpId> deps;
    std::vector<RoutingResult> routes(ep_groups.size());

    // One TP all-reduce per TP group of T x hidden, after `before[g]` of each
    // member; sets last[g] to it.
    auto tp_all_reduce = [&](const std::vector<OpId>& before, std::int64_t m, std::int16_t layer,
                             const std::vector<OpId>* also) {
      for (const auto& grp : tp_groups) {
        deps.clear();
        for (GpuId g : grp) {
          deps.push_back(before[uz(g)]);
          if (also != nullptr && (*also)[uz(g)] >= 0) deps.push_back((*also)[uz(g)]);
        }
        CollectiveRequest req;
        req.op = CollectiveOp::kAllReduce;
        req.algorithm = options_.tp_algorithm;
        req.group = grp;
        req.bytes = Bytes(cost_of(grp.front(), m).tokens * h * act_bytes);
        req.label = "tp_allreduce L" + std::to_string(layer) + " mb" + std::to_string(m);
        const OpId id = plan.add_collective(std::move(req),
                                            OpLabel{OpCategory::kTpAllReduce, static_cast<std::int16_t>(s), layer,
                                                    static_cast<std::int32_t>(m)},
                                            deps);
        for (GpuId g : grp) last[uz(g)] = id;
      }
    };
    auto dep_on = [&](OpId id) {
      deps.clear();
      if (id >= 0) deps.push_back(id);
      return std::span<const OpId>(deps);
    };

    for (std::int64_t m = 0; m < mbs; ++m) {
      const auto m32 = static_cast<std::int32_t>(m);
      const auto s16 = static_cast<std::int16_t>(s);
      for (GpuId g : gpus) {
        last[uz(g)] = (s > first_stage && !incoming[uz(g)].empty()) ? incoming[uz(g)][uz(m)] : -1;
      }
      if (s == 0) {
        for (GpuId g : gpus) {
          last[uz(g)] = plan.add_compute(g, cost_of(g, m).embedding, OpLabel{OpCategory::kEmbedding, s16, -1, m32},
                                         dep_on(last[uz(g)]));
        }
        if (tp > 1) tp_all_reduce(last, m, -1, nullptr);  // vocab-parallel embedding
      }

      for (std::int64_t layer = layer_begin; layer < layer_end; ++layer) {
        const auto l16 = static_cast<std::int16_t>(layer);
        auto lbl = [&](OpCategory c) { return OpLabel{c, s16, l16, m32}; };
        // Attention block.
        for (GpuId g : gpus) {
          const MbCost& c = cost_of(g, m);
          plan.add_compute(g, c.norm, lbl(OpCategory::kNorm), dep_on(last[uz(g)]));
          last[uz(g)] = plan.add_compute(g, c.attention, lbl(OpCategory::kAttention));
        }
        if (tp > 1) tp_all_reduce(last, m, l16, nullptr);
        for (GpuId g : gpus) {
          last[uz(g)] = plan.add_compute(g, cost_of(g, m).norm, lbl(OpCategory::kNorm), dep_on(last[uz(g)]));
        }

        if (!model.is_moe_layer(layer)) {
          for (GpuId g : gpus) {
            last[uz(g)] = plan.add_compute(g, cost_of(g, m).dense, lbl(OpCategory::kDenseFfn));
          }
          if (tp > 1) tp_all_reduce(last, m, l16, nullptr);
          continue;
        }

        // MoE block. Router on each GPU's token slice.
        for (GpuId g : gpus) {
          last[uz(g)] = plan.add_compute(g, router_time(slice(g, m)), lbl(OpCategory::kRouter));
        }
        // Routing of this layer and micro-batch, per EP group.
        const std::size_t load_row =
            uz(std::find(out.expert_load.layers.begin(), out.expert_load.layers.end(), layer) -
               out.expert_load.layers.begin());
        for (std::size_t gi = 0; gi < ep_groups.size(); ++gi) {
          std::int64_t tokens = 0;
          for (GpuId g : ep_groups[gi]) tokens += slice(g, m);
          const std::int64_t salt = (batch.iteration * mbs + m) * n_groups + static_cast<std::int64_t>(gi);
          routes[gi] = router_->route(layer, salt, tokens, placement_);
          const RoutingResult& rr = routes[gi];
          auto& load = out.expert_load.expert_tokens[load_row];
          for (std::size_t e = 0; e < rr.expert_tokens.size() && e < load.size(); ++e) load[e] += rr.expert_tokens[e];
          out.expert_load.dropped += rr.dropped;
          const auto recv = rr.received_per_rank();
          const std::int64_t total = std::accumulate(recv.begin(), recv.end(), std::int64_t{0});
          if (total > 0) {
            const std::int64_t mx = *std::max_element(recv.begin(), recv.end());
            out.worst_rank_imbalance = std::max(
                out.worst_rank_imbalance,
                static_cast<double>(mx) * static_cast<double>(recv.size()) / static_cast<double>(total));
          }
          // Dispatch all-to-allv after every member's router.
          deps.clear();
          for (GpuId g : ep_groups[gi]) deps.push_back(last[uz(g)]);
          CollectiveRequest req;
          req.op = CollectiveOp::kAllToAllV;
          req.algorithm = options_.a2a_algorithm;
          req.group = ep_groups[gi];
          req.matrix = rr.dispatch_bytes(h, model.dispatch_dtype);
          req.bytes = Bytes(0);
          for (std::size_t i = 0; i < req.group.size(); ++i) {
            std::int64_t row = 0;
            for (std::size_t j = 0; j < req.group.size(); ++j) row += req.matrix[i * req.group.size() + j].count();
            req.bytes = std::max(req.bytes, Bytes(row));
          }
          req.label = "ep_dispatch L" + std::to_string(layer) + " mb" + std::to_string(m);
          group_op[gi] = plan.add_collective(std::move(req), lbl(OpCategory::kEpDispatch), deps);
        }
        // Shared experts: independent of the dispatch, so they overlap it.
        for (GpuId g : gpus) {
          shared_op[uz(g)] = -1;
          if (model.shared_experts > 0) {
            shared_op[uz(g)] = plan.add_compute(g, cost_of(g, m).shared, lbl(OpCategory::kSharedExpert));
          }
        }
        // Received tokens per local expert (summed over the ETP group).
        auto local_tokens = [&](GpuId g) {
          const auto e = ep_rank_of[uz(g)];
          if (etp <= 1) return routes[uz(ep_group_of[uz(g)])].local_expert_tokens(placement_, e);
          std::vector<std::int64_t> sum;
          for (GpuId peer : etp_groups[uz(etp_group_of[uz(g)])]) {
            const auto v = routes[uz(ep_group_of[uz(peer)])].local_expert_tokens(placement_, e);
            if (sum.empty()) sum.assign(v.size(), 0);
            for (std::size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
          }
          return sum;
        };
        if (etp > 1) {
          // ETP all-gather of the tokens each member received.
          for (std::size_t k = 0; k < etp_groups.size(); ++k) {
            deps.clear();
            std::int64_t tokens = 0;
            for (GpuId g : etp_groups[k]) {
              deps.push_back(group_op[uz(ep_group_of[uz(g)])]);
              const auto v = routes[uz(ep_group_of[uz(g)])].local_expert_tokens(placement_, ep_rank_of[uz(g)]);
              tokens += std::accumulate(v.begin(), v.end(), std::int64_t{0});
            }
            CollectiveRequest req;
            req.op = CollectiveOp::kAllGather;
            req.algorithm = options_.tp_algorithm;
            req.group = etp_groups[k];
            req.bytes = Bytes(tokens * h * act_bytes);
            req.label = "etp_allgather L" + std::to_string(layer) + " mb" + std::to_string(m);
            etp_op[k] = plan.add_collective(std::move(req), lbl(OpCategory::kTpAllReduce), deps);
          }
        }
        for (GpuId g : gpus) {
          const OpId before = etp > 1 ? etp_op[uz(etp_group_of[uz(g)])] : group_op[uz(ep_group_of[uz(g)])];
          scratch[uz(g)] = plan.add_compute(g, expert_time(local_tokens(g)), lbl(OpCategory::kExpert), dep_on(before));
        }
        if (etp > 1) {
          for (std::size_t k = 0; k < etp_groups.size(); ++k) {
            deps.clear();
            std::int64_t tokens = 0;
            for (GpuId g : etp_groups[k]) {
              deps.push_back(scratch[uz(g)]);
              const auto v = routes[uz(ep_group_of[uz(g)])].local_expert_tokens(placement_, ep_rank_of[uz(g)]);
              tokens += std::accumulate(v.begin(), v.end(), std::int64_t{0});
            }
            CollectiveRequest req;
            req.op = CollectiveOp::kReduceScatter;
            req.algorithm = options_.tp_algorithm;
            req.group = etp_groups[k];
            req.bytes = Bytes(tokens * h * act_bytes);
            req.label = "etp_reduce_scatter L" + std::to_string(layer) + " mb" + std::to_string(m);
            const OpId id = plan.add_collective(std::move(req), lbl(OpCategory::kTpAllReduce), deps);
            for (GpuId g : etp_groups[k]) scratch[uz(g)] = id;
          }
        }
        // Combine all-to-allv (transposed matrix) after every member's experts.
        for (std::size_t gi = 0; gi < ep_groups.size(); ++gi) {
          deps.clear();
          for (GpuId g : ep_groups[gi]) {
            if (std::find(deps.begin(), deps.end(), scratch[uz(g)]) == deps.end()) deps.push_back(scratch[uz(g)]);
          }
          CollectiveRequest req;
          req.op = CollectiveOp::kAllToAllV;
          req.algorithm = options_.a2a_algorithm;
          req.group = ep_groups[gi];
          req.matrix = routes[gi].combine_bytes(h, model.activation_dtype);
          req.bytes = Bytes(0);
          for (std::size_t i = 0; i < req.group.size(); ++i) {
            std::int64_t row = 0;
            for (std::size_t j = 0; j < req.group.size(); ++j) row += req.matrix[i * req.group.size() + j].count();
            req.bytes = std::max(req.bytes, Bytes(row));
          }
          req.label = "ep_combine L" + std::to_string(layer) + " mb" + std::to_string(m);
          group_op[gi] = plan.add_collective(std::move(req), lbl(OpCategory::kEpCombine), deps);
        }
        for (GpuId g : gpus) last[uz(g)] = group_op[uz(ep_group_of[uz(g)])];
        // TP all-reduce closing the MoE block (shared-expert partial sums and
        // the TP slices of the routed output).
        if (tp > 1) tp_all_reduce(last, m, l16, &shared_op);
      }

      // End of the stage for this micro-batch.
      if (s == pp - 1) {
        for (GpuId g : gpus) {
          const MbCost& c = cost_of(g, m);
          if (c.sampled > 0) {
            last[uz(g)] = plan.add_compute(g, c.lm_head, OpLabel{OpCategory::kLmHead, s16, -1, m32}, dep_on(last[uz(g)]));
            out.output_ops[uz(replica_of[uz(g)] * mbs + m)].push_back(last[uz(g)]);
          }
        }
      } else {
        for (GpuId g : gpus) {
          const GpuId peer = mapping_->pp_peers_of(g)[uz(s + 1)];
          const OpId id = plan.add_send_recv(g, peer, Bytes(cost_of(g, m).tokens * h * act_bytes),
                                             OpLabel{OpCategory::kPpTransfer, s16, -1, m32}, dep_on(last[uz(g)]),
                                             "pp_send s" + std::to_string(s) + " mb" + std::to_string(m));
          auto& in = incoming[uz(peer)];
          if (in.empty()) in.assign(uz(mbs), -1);
          in[uz(m)] = id;
        }
      }
    }
  }
  return out;
}

}  // namespace moesim
