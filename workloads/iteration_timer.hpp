#pragma once
// How long one serving iteration takes: the forward pass of its real mix of
// prefill chunks and decode tokens, built by the plan builder and executed on
// the network model (docs/serving.md, "Iteration time").
//
// ## Engines (lock-step groups of replicas)
// With expert parallelism, the dispatch and combine all-to-alls of an EP
// group couple the attention data-parallel replicas whose GPUs it spans:
// they must run their forward passes in lock step (vLLM's data-parallel
// attention with EP: idle ranks run dummy batches). An *engine* is a
// connected set of replicas under that coupling (union of the EP groups'
// replicas over all stages); engines are independent of each other. Each
// replica keeps its own scheduler; an engine iteration is the tuple of its
// replicas' batches.
//
// ## The acceleration (docs/serving.md, "Iteration time")
// Simulating every iteration's full op graph costs milliseconds (thousands of
// ops and flows), and a serving run has tens of thousands of iterations. The
// PlanTimer therefore
//  1. reduces an engine batch to a *shape* and memoises the iteration timing
//     by shape: the first time a shape is seen, the real plan of a canonical
//     batch of that shape is built and executed; later iterations of the
//     same shape reuse the result;
//  2. executes that plan on one engine only: the strategy restricted to one
//     engine's replicas (RankMapping of the same TP/PP/EP/ETP with the DP
//     degree of one engine), remapped onto engine 0's GPUs of the real
//     cluster and run on the real network model (falling back to the whole
//     cluster with the other engines idle when the restriction does not
//     reproduce the cluster's EP/ETP groups); and
//  3. simulates k layers of each kind (dense, MoE) per pipeline stage and
//     adds, for each missing layer, the measured layer period (between the
//     ends of consecutive sampled layers): the layers of a stage run one
//     after the other (every layer ends with the combine
//     rendezvous and the TP all-reduce), are identical in structure and differ
//     only in their routing draw. k starts at scheduler.sample_layers
//     (default 4) and doubles while k x (new tokens x top_k / EP) <
//     kSampledRankAssignments, so that small batches, whose per-layer time
//     depends most on the routing draw, average over more layers (Mixtral
//     top-2 under EP8: a batch of < 64 tokens runs 16 layers or more).
//
// Shape of an engine batch (all integers):
//   the *lead* replica (the one with the most new tokens; ties: most cached
//   context, then lowest index), and the sum over the other replicas
//   ("rest"), each described by
//     prefill: new tokens P, sequences n, mean cached tokens before the chunk
//              c_p, sequences that sample s
//     decode:  sequences D
//   and the mean context (cached tokens) of every decode sequence of the
//   engine, c_d.
// Quantisation: a value x <= kExactBelow is kept exact; above, it is rounded
// to the nearest power of 2^(1/b) (b = buckets per octave, option
// scheduler.shape_buckets, default 8), so each count is represented within a
// factor 2^(+-1/(2b)) (b = 8: +-4.4 %); the contexts (c_p, c_d) use b/2
// buckets (+-9 %): they only enter the attention kernels. b = 0 disables all
// of it: every iteration's exact batch runs on the full plan.
// Canonical batch of a shape: the lead replica holds n prefill sequences of
// P/n new tokens and c_p cached tokens (remainders dealt to the first ones)
// and D decode sequences of context c_d; the rest's sequences are dealt
// round-robin over the other replicas. The lead sits at engine position 0.
// Every engine is timed at engine 0's GPUs (the engines are translations of
// one another on the cluster) with the other engines idle, so contention
// between engines on shared spine links is not modelled (docs/serving.md).
// The routing draw of a shape is seeded by the shape (BatchDescription::
// iteration = a hash of the key), so it is reproducible and independent of
// the order in which shapes appear.
//
// The errors this introduces are measured in tests/workloads/
// test_serving_cache.cpp and by benchmarks/bench_serving, and stated in
// docs/serving.md.

#include <array>
#include <map>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "sim/compute_model.hpp"
#include "sim/plan.hpp"
#include "sim/random.hpp"
#include "sim/units.hpp"
#include "topology/network.hpp"
#include "topology/topology.hpp"
#include "workloads/model_spec.hpp"
#include "workloads/plan_builder.hpp"
#include "workloads/routing.hpp"
#include "workloads/strategy.hpp"

namespace moesim {

/// The lock-step groups of attention replicas (see the file comment).
struct EngineLayout {
  std::vector<std::vector<std::int32_t>> replicas;  // engine -> its replicas, ascending
  std::vector<std::int32_t> engine_of;              // replica -> engine
  std::vector<std::int32_t> position_of;            // replica -> index inside its engine
  [[nodiscard]] std::int32_t engines() const { return static_cast<std::int32_t>(replicas.size()); }
  [[nodiscard]] std::int32_t replica_count() const { return static_cast<std::int32_t>(engine_of.size()); }
};

/// Union of the replicas every EP group spans, over all stages.
EngineLayout engine_layout(const RankMapping& mapping);

/// One engine iteration: the sequence chunks of each of its replicas, in
/// engine order.
struct EngineBatch {
  std::vector<std::vector<SequenceChunk>> replicas;
};

/// Timing of one iteration relative to its start: the latency (last op of the
/// engine ends) and, per pipeline stage, when its first op begins and its
/// last op ends (stage s occupies [stage_begin[s], stage_end[s])).
struct IterationTiming {
  Duration latency{};
  std::vector<Duration> stage_begin;
  std::vector<Duration> stage_end;
};

class IterationTimer {
 public:
  virtual ~IterationTimer() = default;
  /// The timing of `batch` run by engine `engine`; `iteration` is a running
  /// counter (exact timers salt the routing with it).
  virtual IterationTiming time(std::int32_t engine, const EngineBatch& batch, std::int64_t iteration) = 0;
};

/// A cache miss simulates enough layers that layers x the routed
/// assignments an EP rank receives per layer (new tokens x top_k / EP)
/// reaches this (see PlanTimer::layers_to_sample).
inline constexpr std::int64_t kSampledRankAssignments = 128;

/// Values <= this are kept exact by the shape quantisation.
inline constexpr std::int64_t kExactBelow = 16;

/// The quantised value of `x` (>= 0) with `buckets` per octave (0: x itself).
std::int64_t quantize_shape_value(std::int64_t x, int buckets);

/// Shape of a set of sequences (one replica, or several summed).
struct GroupShape {
  std::int64_t prefill_tokens = 0;
  std::int64_t prefill_seqs = 0;
  std::int64_t prefill_cached = 0;  // mean cached tokens per prefill sequence
  std::int64_t prefill_samples = 0;
  std::int64_t decode_seqs = 0;
  friend bool operator==(const GroupShape&, const GroupShape&) = default;
};

struct EngineShape {
  GroupShape lead;
  GroupShape rest;
  std::int64_t decode_context = 0;  // mean cached tokens per decode sequence, whole engine
  friend bool operator==(const EngineShape&, const EngineShape&) = default;
};

/// Buckets per octave used for the context values (prefill cached tokens,
/// decode context) when counts use `buckets`: half as many (at least 1),
/// because the iteration time is far less sensitive to them (they only
/// enter the attention kernels).
int context_buckets(int buckets);

struct EngineShapeHash {
  std::size_t operator()(const EngineShape& s) const;
};

/// The (unquantised) shape of a batch, and its quantisation.
EngineShape shape_of(const EngineBatch& batch);
EngineShape quantize(const EngineShape& shape, int buckets);
/// The canonical batch of a shape over `replicas` replicas.
EngineBatch canonical_batch(const EngineShape& shape, std::int32_t replicas);

struct PlanTimerStats {
  std::int64_t lookups = 0;
  std::int64_t simulated = 0;       // plans built and executed (cache misses)
  double simulate_wall_s = 0.0;     // wall time spent building and executing them
  std::int64_t simulated_ops = 0;
};

struct PlanTimerOptions {
  /// Shape buckets per octave; 0 = no cache: every iteration's exact batch
  /// is simulated on the full plan (all layers, whole cluster).
  int buckets = 8;
  /// Cached shapes only: MoE (and dense) layers simulated per stage; the
  /// others are extrapolated from them (see the file comment). 0 = all.
  int sample_layers = 4;
};

/// Times iterations by building and executing the real plan (see the file
/// comment). The referenced objects must outlive the timer.
class PlanTimer final : public IterationTimer {
 public:
  PlanTimer(const ModelSpec& model, const RankMapping& mapping, const ComputeModel& compute,
            const RoutingConfig& routing, const RandomStreams& streams, const Topology& topology,
            NetworkParams network, EngineLayout layout, PlanTimerOptions options = {});
  ~PlanTimer() override;
  PlanTimer(const PlanTimer&) = delete;
  PlanTimer& operator=(const PlanTimer&) = delete;

  IterationTiming time(std::int32_t engine, const EngineBatch& batch, std::int64_t iteration) override;

  /// The reference: builds and executes the full plan of `batch` (every
  /// layer, the whole cluster, the other engines idle) on engine `engine`'s
  /// replicas with routing salt `salt`. No cache, no sampling.
  IterationTiming simulate_exact(std::int32_t engine, const EngineBatch& batch, std::int64_t salt);
  /// What a cache miss runs: the plan of `batch` on one engine (at engine
  /// 0's GPUs) with `layers` sampled layers per stage (0: layers_to_sample()
  /// of the batch's tokens), extrapolated to every layer.
  IterationTiming simulate_sampled(const EngineBatch& batch, std::int64_t salt, std::int64_t layers = 0);
  /// Layers per stage a cache miss of a batch of `tokens` new tokens
  /// simulates: options().sample_layers, doubled until layers x tokens x
  /// top_k / EP >= kSampledRankAssignments, at most the largest stage's
  /// layers (see the file comment).
  [[nodiscard]] std::int64_t layers_to_sample(std::int64_t tokens) const;

  [[nodiscard]] const PlanTimerStats& stats() const { return stats_; }
  [[nodiscard]] const PlanTimerOptions& options() const { return options_; }
  [[nodiscard]] std::size_t cached_shapes() const { return cache_.size(); }
  /// The shapes simulated so far (unordered).
  [[nodiscard]] std::vector<EngineShape> shapes() const;
  [[nodiscard]] const EngineLayout& layout() const { return layout_; }
  /// True when cache misses run on an engine-local plan (the strategy
  /// restricted to one engine's replicas, remapped onto its GPUs); false
  /// when they run on the whole cluster with the other engines idle.
  [[nodiscard]] bool engine_local();

 private:
  struct Sampled;
  IterationTiming run_plan(Plan plan, std::int32_t engine_filter, const Sampled* sampled);
  [[nodiscard]] std::unique_ptr<Sampled> make_sampled(std::int64_t keep) const;
  Sampled& sampled(std::int64_t keep);

  const ModelSpec* model_;
  const RankMapping* mapping_;
  const Topology* topology_;
  NetworkParams network_;
  EngineLayout layout_;
  PlanTimerOptions options_;
  const ComputeModel* compute_;
  RoutingConfig routing_;
  RandomStreams streams_;
  std::unique_ptr<ExpertRouter> router_;
  std::unique_ptr<PlanBuilder> builder_;
  std::map<std::int64_t, std::unique_ptr<Sampled>> sampled_;  // by layers kept per stage
  std::vector<std::int32_t> stage_of_gpu_;
  std::vector<std::int32_t> engine_of_gpu_;
  std::unordered_map<EngineShape, IterationTiming, EngineShapeHash> cache_;
  PlanTimerStats stats_;
};

}  // namespace moesim
