#include "workloads/iteration_timer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "sim/executor.hpp"
#include "sim/simulator.hpp"
#include "sim/options.hpp"
#include "topology/collectives.hpp"

namespace moesim {

namespace {

std::size_t uz(std::int64_t v) { return static_cast<std::size_t>(v); }

// Union-find over replicas.
std::int32_t find_root(std::vector<std::int32_t>& parent, std::int32_t x) {
  while (parent[uz(x)] != x) {
    parent[uz(x)] = parent[uz(parent[uz(x)])];
    x = parent[uz(x)];
  }
  return x;
}
void unite(std::vector<std::int32_t>& parent, std::int32_t a, std::int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) parent[uz(b)] = a;
  else parent[uz(a)] = b;
}

// Dealing n items over `parts`: item j's share of a total.
std::int64_t share(std::int64_t total, std::int64_t parts, std::int64_t i) {
  return total / parts + (i < total % parts ? 1 : 0);
}

std::int64_t rounded_mean(std::int64_t sum, std::int64_t count) {
  if (count <= 0) return 0;
  return (sum + count / 2) / count;
}

std::uint64_t mix(std::uint64_t h, std::int64_t v) {
  std::uint64_t s = h ^ (static_cast<std::uint64_t>(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  return splitmix64(s);
}

std::uint64_t hash_group(std::uint64_t h, const GroupShape& g) {
  h = mix(h, g.prefill_tokens);
  h = mix(h, g.prefill_seqs);
  h = mix(h, g.prefill_cached);
  h = mix(h, g.prefill_samples);
  h = mix(h, g.decode_seqs);
  return h;
}

// Raw per-replica sums (cached values summed, not averaged yet).
struct RawGroup {
  std::int64_t prefill_tokens = 0, prefill_seqs = 0, prefill_cached = 0, prefill_samples = 0;
  std::int64_t decode_seqs = 0, decode_context = 0;
  void add(const SequenceChunk& c) {
    if (c.new_tokens <= 0) return;
    if (c.is_decode()) {
      ++decode_seqs;
      decode_context += c.cached_tokens;
    } else {
      prefill_tokens += c.new_tokens;
      ++prefill_seqs;
      prefill_cached += c.cached_tokens;
      prefill_samples += c.samples ? 1 : 0;
    }
  }
  void add(const RawGroup& o) {
    prefill_tokens += o.prefill_tokens;
    prefill_seqs += o.prefill_seqs;
    prefill_cached += o.prefill_cached;
    prefill_samples += o.prefill_samples;
    decode_seqs += o.decode_seqs;
    decode_context += o.decode_context;
  }
  [[nodiscard]] GroupShape shape() const {
    return GroupShape{prefill_tokens, prefill_seqs, rounded_mean(prefill_cached, prefill_seqs), prefill_samples,
                      decode_seqs};
  }
};

GroupShape quantize_group(const GroupShape& g, int b) {
  GroupShape q;
  q.prefill_tokens = quantize_shape_value(g.prefill_tokens, b);
  q.prefill_seqs = std::min(quantize_shape_value(g.prefill_seqs, b), q.prefill_tokens);
  q.prefill_cached = quantize_shape_value(g.prefill_cached, context_buckets(b));
  q.prefill_samples = std::min(quantize_shape_value(g.prefill_samples, b), q.prefill_seqs);
  q.decode_seqs = quantize_shape_value(g.decode_seqs, b);
  return q;
}

}  // namespace

EngineLayout engine_layout(const RankMapping& mapping) {
  const auto replicas = static_cast<std::int32_t>(mapping.attention_dp());
  std::vector<std::int32_t> parent(uz(replicas));
  std::iota(parent.begin(), parent.end(), 0);
  const bool etp = mapping.strategy().etp > 1;
  for (std::int64_t s = 0; s < mapping.stages(); ++s) {
    for (const auto& group : mapping.ep_groups_of_stage(s)) {
      const auto first = static_cast<std::int32_t>(mapping.coord(group.front()).attn_dp);
      for (GpuId g : group) unite(parent, first, static_cast<std::int32_t>(mapping.coord(g).attn_dp));
      if (etp) {
        for (GpuId g : group) {
          for (GpuId peer : mapping.etp_group_of(g)) {
            unite(parent, first, static_cast<std::int32_t>(mapping.coord(peer).attn_dp));
          }
        }
      }
    }
  }
  EngineLayout layout;
  layout.engine_of.assign(uz(replicas), -1);
  layout.position_of.assign(uz(replicas), -1);
  std::vector<std::int32_t> engine_of_root(uz(replicas), -1);
  for (std::int32_t r = 0; r < replicas; ++r) {
    const std::int32_t root = find_root(parent, r);
    if (engine_of_root[uz(root)] < 0) {
      engine_of_root[uz(root)] = static_cast<std::int32_t>(layout.replicas.size());
      layout.replicas.emplace_back();
    }
    const std::int32_t e = engine_of_root[uz(root)];
    layout.engine_of[uz(r)] = e;
    layout.position_of[uz(r)] = static_cast<std::int32_t>(layout.replicas[uz(e)].size());
    layout.replicas[uz(e)].push_back(r);
  }
  return layout;
}

std::int64_t quantize_shape_value(std::int64_t x, int buckets) {
  if (buckets <= 0 || x <= kExactBelow) return x;
  const double b = static_cast<double>(buckets);
  const double k = std::round(b * std::log2(static_cast<double>(x)));
  return static_cast<std::int64_t>(std::llround(std::exp2(k / b)));
}

int context_buckets(int buckets) { return buckets <= 0 ? 0 : std::max(1, (buckets + 1) / 2); }

std::size_t EngineShapeHash::operator()(const EngineShape& s) const {
  return static_cast<std::size_t>(mix(hash_group(hash_group(0x51ed270b27a3c1f5ULL, s.lead), s.rest), s.decode_context));
}

EngineShape shape_of(const EngineBatch& batch) {
  std::vector<RawGroup> raw(batch.replicas.size());
  for (std::size_t r = 0; r < batch.replicas.size(); ++r) {
    for (const SequenceChunk& c : batch.replicas[r]) raw[r].add(c);
  }
  std::size_t lead = 0;
  for (std::size_t r = 1; r < raw.size(); ++r) {
    const std::int64_t t = raw[r].prefill_tokens + raw[r].decode_seqs;
    const std::int64_t tl = raw[lead].prefill_tokens + raw[lead].decode_seqs;
    const std::int64_t c = raw[r].prefill_cached + raw[r].decode_context;
    const std::int64_t cl = raw[lead].prefill_cached + raw[lead].decode_context;
    if (t > tl || (t == tl && c > cl)) lead = r;
  }
  EngineShape shape;
  RawGroup rest;
  for (std::size_t r = 0; r < raw.size(); ++r) {
    if (r != lead) rest.add(raw[r]);
  }
  if (!raw.empty()) shape.lead = raw[lead].shape();
  shape.rest = rest.shape();
  const std::int64_t decode_seqs = rest.decode_seqs + (raw.empty() ? 0 : raw[lead].decode_seqs);
  const std::int64_t decode_context = rest.decode_context + (raw.empty() ? 0 : raw[lead].decode_context);
  shape.decode_context = rounded_mean(decode_context, decode_seqs);
  return shape;
}

EngineShape quantize(const EngineShape& shape, int buckets) {
  return EngineShape{quantize_group(shape.lead, buckets), quantize_group(shape.rest, buckets),
                     quantize_shape_value(shape.decode_context, context_buckets(buckets))};
}

EngineBatch canonical_batch(const EngineShape& shape, std::int32_t replicas) {
  if (replicas < 1) throw std::invalid_argument("canonical_batch: no replica");
  EngineBatch b;
  b.replicas.resize(uz(replicas));
  const std::int64_t context = std::max<std::int64_t>(1, shape.decode_context);
  auto deal = [context](const GroupShape& g, std::vector<std::vector<SequenceChunk>>& out, std::size_t first,
                        std::size_t count) {
    for (std::int64_t j = 0; j < g.prefill_seqs; ++j) {
      auto& dst = out[first + uz(j) % count];
      dst.push_back(SequenceChunk{share(g.prefill_tokens, g.prefill_seqs, j), g.prefill_cached, j < g.prefill_samples});
    }
    for (std::int64_t j = 0; j < g.decode_seqs; ++j) {
      auto& dst = out[first + uz(j) % count];
      dst.push_back(SequenceChunk{1, context, true});
    }
  };
  deal(shape.lead, b.replicas, 0, 1);
  const bool rest_empty = shape.rest.prefill_seqs == 0 && shape.rest.decode_seqs == 0;
  if (!rest_empty) {
    if (replicas < 2) throw std::invalid_argument("canonical_batch: work for other replicas of a 1-replica engine");
    deal(shape.rest, b.replicas, 1, uz(replicas - 1));
  }
  return b;
}

// The reduced plan a cache miss runs: the model with `sample_layers` MoE
// (and dense) layers per stage, the strategy restricted to one engine.
struct PlanTimer::Sampled {
  ModelSpec model;
  Strategy strategy;
  std::unique_ptr<RankMapping> mapping;
  std::unique_ptr<ExpertRouter> router;
  std::unique_ptr<PlanBuilder> builder;
  bool engine_local = false;
  std::vector<GpuId> gpu_map;          // plan GPU -> cluster GPU (empty: identity)
  std::int32_t plan_gpus = 0;
  std::int32_t replicas = 0;           // attention replicas of the reduced mapping
  std::vector<std::int32_t> engine_replicas;  // engine-0 replicas in the reduced mapping (full-cluster case)
  std::vector<std::int32_t> stage_of_gpu;     // plan GPU -> stage
  std::vector<std::int64_t> full_dense, full_moe, kept_dense, kept_moe;  // per stage
};

namespace {

// Adds the wall time of its scope to `total`.
class WallClock {
 public:
  explicit WallClock(double& total) : total_(&total), t0_(std::chrono::steady_clock::now()) {}
  ~WallClock() { *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  WallClock(const WallClock&) = delete;
  WallClock& operator=(const WallClock&) = delete;

 private:
  double* total_;
  std::chrono::steady_clock::time_point t0_;
};

// Copies `in` with every GPU id g replaced by map[g], on `gpus` GPUs. Ops keep
// their ids (appended in the same order), so dependencies carry over.
Plan remap_plan(const Plan& in, const std::vector<GpuId>& map, std::int32_t gpus) {
  Plan out(gpus);
  out.reserve(in.size(), in.dependency_count());
  for (OpId op = 0; op < static_cast<OpId>(in.size()); ++op) {
    const auto lanes = in.lanes(op);
    const StreamKind stream = stream_of_lane(lanes.front());
    if (in.kind(op) == OpKind::kCompute) {
      out.add_compute(map[uz(gpu_of_lane(lanes.front()))], in.duration(op), in.label(op), in.dependencies(op), stream);
    } else {
      CollectiveRequest req = in.request(op);
      for (GpuId& g : req.group) g = map[uz(g)];
      out.add_collective(std::move(req), in.label(op), in.dependencies(op), stream);
    }
  }
  return out;
}

}  // namespace

PlanTimer::PlanTimer(const ModelSpec& model, const RankMapping& mapping, const ComputeModel& compute,
                     const RoutingConfig& routing, const RandomStreams& streams, const Topology& topology,
                     NetworkParams network, EngineLayout layout, PlanTimerOptions options)
    : model_(&model),
      mapping_(&mapping),
      topology_(&topology),
      network_(std::move(network)),
      layout_(std::move(layout)),
      options_(options),
      compute_(&compute),
      routing_(routing),
      streams_(streams) {
  const auto gpus = static_cast<std::int32_t>(topology.gpu_count());
  router_ = std::make_unique<ExpertRouter>(routing, model, streams);
  builder_ = std::make_unique<PlanBuilder>(model, mapping, compute, *router_,
                                           PlanBuilderOptions{gpus, CollectiveAlgorithm::kAuto, CollectiveAlgorithm::kAuto});
  stage_of_gpu_.assign(uz(gpus), -1);
  engine_of_gpu_.assign(uz(gpus), -1);
  for (GpuId g = 0; g < static_cast<GpuId>(mapping.world_size()); ++g) {
    const RankCoord c = mapping.coord(g);
    stage_of_gpu_[uz(g)] = static_cast<std::int32_t>(c.pp);
    engine_of_gpu_[uz(g)] = layout_.engine_of[uz(c.attn_dp)];
  }
}

std::unique_ptr<PlanTimer::Sampled> PlanTimer::make_sampled(std::int64_t keep) const {
  const ModelSpec& model = *model_;
  const RankMapping& mapping = *mapping_;
  const auto gpus = static_cast<std::int32_t>(topology_->gpu_count());
  // ---- the sampled configuration ----
  auto sp = std::make_unique<Sampled>();
  const Strategy& st = mapping.strategy();
  const std::int64_t pp = st.pp;
  std::vector<std::int64_t> per_stage;
  for (std::int64_t s = 0; s < pp; ++s) {
    const auto [first, end] = mapping.layer_range(s);
    const std::int64_t dense = std::max<std::int64_t>(0, std::min(end, model.dense_layers) - first);
    const std::int64_t moe = (end - first) - dense;
    sp->full_dense.push_back(dense);
    sp->full_moe.push_back(moe);
    sp->kept_dense.push_back(std::min(dense, keep));
    sp->kept_moe.push_back(std::min(moe, keep));
    per_stage.push_back(sp->kept_dense.back() + sp->kept_moe.back());
  }
  sp->model = model;
  sp->model.layers = 0;
  sp->model.dense_layers = 0;
  for (std::int64_t s = 0; s < pp; ++s) {
    sp->model.layers += per_stage[uz(s)];
    sp->model.dense_layers += sp->kept_dense[uz(s)];
  }
  sp->strategy = st;
  sp->strategy.layers_per_stage = per_stage;
  sp->strategy.microbatches = 1;

  // Engine-local: the strategy restricted to engine 0's replicas, when the
  // engines are alike and the restriction maps onto the cluster's groups.
  const auto R = static_cast<std::int64_t>(layout_.replicas.front().size());
  bool uniform = true;
  for (const auto& e : layout_.replicas) uniform = uniform && static_cast<std::int64_t>(e.size()) == R;
  const std::int64_t per_dp = st.attention_dp() / st.dp;  // attention replicas per DP index (EP when orthogonal)
  if (uniform && layout_.engines() > 1 && R % per_dp == 0) {
    Strategy local = sp->strategy;
    local.dp = R / per_dp;
    try {
      auto local_mapping = std::make_unique<RankMapping>(sp->model, local);
      if (local_mapping->attention_dp() == R && engine_layout(*local_mapping).engines() == 1) {
        std::vector<GpuId> map(uz(local_mapping->world_size()), -1);
        for (GpuId g = 0; g < static_cast<GpuId>(map.size()); ++g) {
          const RankCoord c = local_mapping->coord(g);
          const auto group = mapping.gpus_of_stage(c.pp, layout_.replicas.front()[uz(c.attn_dp)]);
          map[uz(g)] = group.at(uz(c.tp));
        }
        // The restriction must reproduce the cluster's EP (and ETP) groups.
        bool same = true;
        for (std::int64_t s = 0; s < pp && same; ++s) {
          for (const auto& grp : local_mapping->ep_groups_of_stage(s)) {
            std::vector<GpuId> mapped;
            for (GpuId g : grp) mapped.push_back(map[uz(g)]);
            same = same && mapped == mapping.ep_group_of(mapped.front());
            if (st.etp > 1) {
              for (GpuId g : grp) {
                std::vector<GpuId> e;
                for (GpuId x : local_mapping->etp_group_of(g)) e.push_back(map[uz(x)]);
                same = same && e == mapping.etp_group_of(map[uz(g)]);
              }
            }
          }
        }
        if (same) {
          sp->strategy = local;
          sp->mapping = std::move(local_mapping);
          sp->gpu_map = std::move(map);
          sp->engine_local = true;
        }
      }
    } catch (const InputError&) {
      // Not expressible as a smaller strategy: fall back to the whole cluster.
    }
  }
  if (!sp->engine_local) {
    sp->mapping = std::make_unique<RankMapping>(sp->model, sp->strategy);
    sp->engine_replicas = layout_.replicas.front();
  }
  sp->replicas = static_cast<std::int32_t>(sp->mapping->attention_dp());
  sp->plan_gpus = sp->engine_local ? static_cast<std::int32_t>(sp->mapping->world_size()) : gpus;
  sp->stage_of_gpu.assign(uz(gpus), -1);
  for (GpuId g = 0; g < static_cast<GpuId>(sp->mapping->world_size()); ++g) {
    const GpuId cluster = sp->engine_local ? sp->gpu_map[uz(g)] : g;
    sp->stage_of_gpu[uz(cluster)] = static_cast<std::int32_t>(sp->mapping->coord(g).pp);
  }
  sp->router = std::make_unique<ExpertRouter>(routing_, sp->model, streams_);
  sp->builder = std::make_unique<PlanBuilder>(sp->model, *sp->mapping, *compute_, *sp->router,
                                              PlanBuilderOptions{sp->plan_gpus, CollectiveAlgorithm::kAuto,
                                                                 CollectiveAlgorithm::kAuto});
  return sp;
}

PlanTimer::~PlanTimer() = default;

std::vector<EngineShape> PlanTimer::shapes() const {
  std::vector<EngineShape> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(k);
  return out;
}

PlanTimer::Sampled& PlanTimer::sampled(std::int64_t keep) {
  auto& slot = sampled_[keep];
  if (!slot) slot = make_sampled(keep);
  return *slot;
}

std::int64_t PlanTimer::layers_to_sample(std::int64_t tokens) const {
  std::int64_t most = 1;
  for (std::int64_t s = 0; s < mapping_->stages(); ++s) most = std::max(most, mapping_->layers_of_stage(s));
  if (options_.sample_layers <= 0) return most;
  // Routed assignments each EP rank receives per layer, on average.
  const double per_rank = static_cast<double>(std::max<std::int64_t>(tokens, 1)) *
                          static_cast<double>(model_->top_k) / static_cast<double>(mapping_->strategy().ep);
  std::int64_t k = options_.sample_layers;
  while (k < most && static_cast<double>(k) * per_rank < static_cast<double>(kSampledRankAssignments)) k *= 2;
  return std::min(k, most);
}

bool PlanTimer::engine_local() {
  return options_.buckets > 0 && sampled(layers_to_sample(std::int64_t{1} << 40)).engine_local;
}

IterationTiming PlanTimer::run_plan(Plan plan, std::int32_t engine_filter, const Sampled* sampled) {
  Simulator sim;
  std::unique_ptr<NetworkModel> net = make_network(network_, sim, *topology_);
  CollectiveEngine collectives(sim, *net);
  Executor exec(sim, collectives, std::move(plan));
  exec.run();

  const auto stages = uz(mapping_->stages());
  IterationTiming t;
  t.stage_begin.assign(stages, Duration::max());
  t.stage_end.assign(stages, Duration::zero());
  std::vector<Duration> any_begin(stages, Duration::max());
  // Sampled plans: when each layer's first op doing work began and its last
  // op ended.
  std::vector<Duration> layer_end(sampled != nullptr ? uz(sampled->model.layers) : 0, Duration::zero());
  std::vector<Duration> layer_begin(layer_end.size(), Duration::max());
  const Plan& p = exec.plan();
  const Time start = exec.start_time();
  for (OpId op = 0; op < static_cast<OpId>(p.size()); ++op) {
    const GpuId gpu = gpu_of_lane(p.lanes(op).front());
    if (engine_filter >= 0 && engine_of_gpu_[uz(gpu)] != engine_filter) continue;
    const Duration b = exec.begin_time(op) - start;
    const Duration e = exec.end_time(op) - start;
    const auto s = uz(sampled != nullptr ? sampled->stage_of_gpu[uz(gpu)] : stage_of_gpu_[uz(gpu)]);
    // A stage is busy from its first op that does work: a replica without
    // tokens runs zero-time ops (and zero-byte collectives) that begin early
    // and then wait at the next rendezvous.
    const bool work = p.kind(op) == OpKind::kCompute ? p.duration(op) > Duration::zero()
                                                      : p.request(op).bytes > Bytes(0);
    if (work) t.stage_begin[s] = std::min(t.stage_begin[s], b);
    any_begin[s] = std::min(any_begin[s], b);
    t.stage_end[s] = std::max(t.stage_end[s], e);
    t.latency = std::max(t.latency, e);
    const std::int16_t layer = p.label(op).layer;
    if (sampled != nullptr && layer >= 0) {
      layer_end[uz(layer)] = std::max(layer_end[uz(layer)], e);
      if (work) layer_begin[uz(layer)] = std::min(layer_begin[uz(layer)], b);
    }
  }
  for (std::size_t s = 0; s < stages; ++s) {
    if (t.stage_begin[s] == Duration::max()) t.stage_begin[s] = any_begin[s];
    if (t.stage_begin[s] == Duration::max()) t.stage_begin[s] = s == 0 ? Duration::zero() : t.stage_end[s - 1];
    t.stage_end[s] = std::max(t.stage_end[s], t.stage_begin[s]);
  }
  if (sampled != nullptr) {
    // Extrapolate: the layers of one kind in a stage run back to back (each
    // starts when the previous one's closing collectives end), so each
    // missing layer adds the measured period between the ends of consecutive
    // sampled layers. Stage s keeps its measured hand-over gap from stage s-1
    // and its own span outside the layers (embedding, LM head, sends).
    IterationTiming full;
    full.stage_begin.resize(stages);
    full.stage_end.resize(stages);
    auto extra_of = [&](std::size_t s, std::int64_t first, std::int64_t kept, std::int64_t full_n) {
      if (kept <= 0 || full_n <= kept) return Duration::zero();
      const std::int64_t last = first + kept - 1;
      // Between the ends of consecutive layers: the steady state. (The first
      // layer's own duration is not used: replicas with less work before it,
      // e.g. a shorter embedding, start it early, so from its first op to its
      // end is longer than a period.) One sampled layer: no period to measure
      // (sample_layers >= 2 is enforced); use it from its first op doing work.
      Duration period;
      if (kept >= 2) {
        period = (layer_end[uz(last)] - layer_end[uz(first)]) / (kept - 1);
      } else {
        const Duration from = layer_begin[uz(first)] == Duration::max() ? t.stage_begin[s] : layer_begin[uz(first)];
        period = layer_end[uz(first)] - from;
      }
      return std::max(Duration::zero(), period) * (full_n - kept);
    };
    for (std::size_t s = 0; s < stages; ++s) {
      const std::int64_t first = sampled->mapping->layer_range(static_cast<std::int64_t>(s)).first;
      const Duration extra = extra_of(s, first, sampled->kept_dense[s], sampled->full_dense[s]) +
                             extra_of(s, first + sampled->kept_dense[s], sampled->kept_moe[s], sampled->full_moe[s]);
      full.stage_begin[s] = s == 0 ? t.stage_begin[0]
                                   : full.stage_end[s - 1] + (t.stage_begin[s] - t.stage_end[s - 1]);
      full.stage_end[s] = full.stage_begin[s] + (t.stage_end[s] - t.stage_begin[s]) + extra;
    }
    full.latency = full.stage_end[stages - 1] + std::max(Duration::zero(), t.latency - t.stage_end[stages - 1]);
    t = std::move(full);
  }
  ++stats_.simulated;
  stats_.simulated_ops += static_cast<std::int64_t>(p.size());
  return t;
}

IterationTiming PlanTimer::simulate_exact(std::int32_t engine, const EngineBatch& batch, std::int64_t salt) {
  const WallClock clock(stats_.simulate_wall_s);
  const auto& members = layout_.replicas.at(uz(engine));
  if (batch.replicas.size() != members.size()) {
    throw std::invalid_argument("PlanTimer: the batch has " + std::to_string(batch.replicas.size()) +
                                " replicas, engine " + std::to_string(engine) + " has " +
                                std::to_string(members.size()));
  }
  BatchDescription d;
  d.iteration = salt;
  d.replicas.assign(uz(mapping_->attention_dp()), std::vector<MicroBatchWork>(1));
  for (std::size_t i = 0; i < members.size(); ++i) d.replicas[uz(members[i])][0].sequences = batch.replicas[i];
  return run_plan(builder_->build(d).plan, engine, nullptr);
}

IterationTiming PlanTimer::simulate_sampled(const EngineBatch& batch, std::int64_t salt, std::int64_t layers) {
  const WallClock clock(stats_.simulate_wall_s);
  std::int64_t tokens = 0;
  for (const auto& r : batch.replicas)
    for (const auto& c : r) tokens += c.new_tokens;
  const Sampled& sp = sampled(layers > 0 ? layers : layers_to_sample(tokens));
  BatchDescription d;
  d.iteration = salt;
  d.replicas.assign(uz(sp.replicas), std::vector<MicroBatchWork>(1));
  if (sp.engine_local) {
    if (batch.replicas.size() != uz(sp.replicas)) throw std::invalid_argument("PlanTimer: batch of the wrong size");
    for (std::size_t i = 0; i < batch.replicas.size(); ++i) d.replicas[i][0].sequences = batch.replicas[i];
    Plan plan = remap_plan(sp.builder->build(d).plan, sp.gpu_map, static_cast<std::int32_t>(topology_->gpu_count()));
    return run_plan(std::move(plan), -1, &sp);
  }
  if (batch.replicas.size() != sp.engine_replicas.size()) {
    throw std::invalid_argument("PlanTimer: batch of the wrong size");
  }
  for (std::size_t i = 0; i < batch.replicas.size(); ++i) {
    d.replicas[uz(sp.engine_replicas[i])][0].sequences = batch.replicas[i];
  }
  return run_plan(sp.builder->build(d).plan, 0, &sp);
}

IterationTiming PlanTimer::time(std::int32_t engine, const EngineBatch& batch, std::int64_t iteration) {
  ++stats_.lookups;
  if (options_.buckets <= 0) return simulate_exact(engine, batch, iteration);
  const EngineShape key = quantize(shape_of(batch), options_.buckets);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  // Every engine is timed at engine 0's GPUs (the engines are translations
  // of each other; see the file comment).
  const auto size = static_cast<std::int32_t>(layout_.replicas.at(uz(engine)).size());
  if (size != static_cast<std::int32_t>(layout_.replicas.front().size())) {
    throw std::logic_error("PlanTimer: engines of different sizes need scheduler.shape_buckets = 0");
  }
  const auto salt = static_cast<std::int64_t>(EngineShapeHash{}(key) & ((std::uint64_t{1} << 40) - 1));
  IterationTiming t = simulate_sampled(canonical_batch(key, size), salt);
  return cache_.emplace(key, std::move(t)).first->second;
}

}  // namespace moesim
