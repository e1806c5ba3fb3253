#include "workloads/serving_sim.hpp"

#include <algorithm>
#include <stdexcept>

namespace moesim {

namespace {
std::size_t uz(std::int64_t v) { return static_cast<std::size_t>(v); }
}  // namespace

std::string_view to_string(RouterKind kind) {
  switch (kind) {
    case RouterKind::kRoundRobin: return "round_robin";
    case RouterKind::kLeastOutstandingTokens: return "least_outstanding_tokens";
  }
  return "?";
}

struct ServingSimulator::Engine {
  struct Slot {
    bool used = false;
    Time start{};
    std::int64_t preempted = 0;
    std::vector<ReplicaIteration> batches;  // by engine position
  };
  std::vector<Time> stage_free;
  std::int64_t in_flight = 0;
  std::vector<Slot> slots;
  EventHandle retry;
  Time retry_at = Time::max();
  EngineBatch scratch;  // reused: the batch handed to the timer
};

ServingSimulator::ServingSimulator(Simulator& sim, std::vector<Request> requests, EngineLayout layout,
                                   std::int64_t pp, SchedulerConfig scheduler, RouterKind router,
                                   IterationTimer& timer)
    : sim_(&sim),
      requests_(std::move(requests)),
      layout_(std::move(layout)),
      pp_(pp),
      config_(scheduler),
      router_(router),
      timer_(&timer) {
  if (pp_ < 1) throw InputError("strategy.pp must be >= 1");
  if (layout_.replica_count() < 1) throw InputError("the strategy has no attention replica to serve requests");
  if (requests_.empty()) throw InputError("the request stream is empty");
  schedulers_.reserve(uz(layout_.replica_count()));
  for (std::int32_t r = 0; r < layout_.replica_count(); ++r) schedulers_.emplace_back(r, config_);
  const std::int64_t cache_tokens = config_.kv_blocks * config_.kv_block_tokens;
  states_.resize(requests_.size());
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    const Request& q = requests_[i];
    if (q.id != static_cast<std::int64_t>(i)) throw std::invalid_argument("requests must be numbered in order");
    if (i > 0 && q.arrival < requests_[i - 1].arrival) {
      throw std::invalid_argument("requests must be sorted by arrival");
    }
    RequestState& s = states_[i];
    s.prompt_tokens = q.prompt_tokens;
    s.output_tokens = q.output_tokens;
    s.arrival = q.arrival;
    if (q.prompt_tokens < 1 || q.output_tokens < 1) {
      throw InputError("request " + std::to_string(q.id) + " has a non-positive prompt or output length");
    }
    if (schedulers_.front().blocks_for(s.peak_kv_tokens()) > config_.kv_blocks) {
      throw InputError("request " + std::to_string(q.id) + " (prompt " + std::to_string(q.prompt_tokens) +
                       " + output " + std::to_string(q.output_tokens) + " tokens) needs " +
                       std::to_string(s.peak_kv_tokens()) + " tokens of KV cache, but a replica's cache holds " +
                       std::to_string(cache_tokens) +
                       " tokens: shorten the requests (workload.prompt_max, workload.output_max), free memory "
                       "(larger strategy.tp/ep/pp, smaller memory.reserve) or set scheduler.kv_blocks");
    }
    if (!config_.chunked_prefill && s.peak_kv_tokens() > config_.max_batched_tokens) {
      throw InputError("request " + std::to_string(q.id) + " (prompt " + std::to_string(q.prompt_tokens) +
                       " + output " + std::to_string(q.output_tokens) +
                       " tokens) cannot be prefilled (or recomputed after a preemption) in one iteration of "
                       "scheduler.max_batched_tokens = " + std::to_string(config_.max_batched_tokens) +
                       " tokens: raise it or set scheduler.chunked_prefill = true");
    }
  }
  engines_.reserve(uz(layout_.engines()));
  for (std::int32_t e = 0; e < layout_.engines(); ++e) {
    auto eng = std::make_unique<Engine>();
    eng->stage_free.assign(uz(pp_), Time::zero());
    eng->slots.resize(uz(pp_));
    eng->scratch.replicas.resize(layout_.replicas[uz(e)].size());
    engines_.push_back(std::move(eng));
  }
}

ServingSimulator::~ServingSimulator() = default;

std::int32_t ServingSimulator::route(std::int32_t /*request*/) {
  const std::int32_t n = layout_.replica_count();
  std::int32_t chosen = rr_next_;
  if (router_ == RouterKind::kLeastOutstandingTokens) {
    std::int64_t best = schedulers_[uz(chosen)].outstanding_tokens();
    for (std::int32_t k = 1; k < n; ++k) {
      const std::int32_t r = (rr_next_ + k) % n;
      const std::int64_t o = schedulers_[uz(r)].outstanding_tokens();
      if (o < best) {
        best = o;
        chosen = r;
      }
    }
  }
  rr_next_ = (chosen + 1) % n;
  return chosen;
}

void ServingSimulator::on_arrivals() {
  const Time now = sim_->now();
  std::vector<std::int32_t> touched;
  while (next_arrival_ < requests_.size() && requests_[next_arrival_].arrival <= now) {
    const auto idx = static_cast<std::int32_t>(next_arrival_++);
    const std::int32_t r = route(idx);
    schedulers_[uz(r)].enqueue(idx, states_);
    const std::int32_t e = layout_.engine_of[uz(r)];
    if (std::find(touched.begin(), touched.end(), e) == touched.end()) touched.push_back(e);
  }
  if (next_arrival_ < requests_.size()) {
    sim_->schedule_at(requests_[next_arrival_].arrival, [this] { on_arrivals(); });
  }
  for (std::int32_t e : touched) try_launch(e);
}

void ServingSimulator::schedule_retry(std::int32_t engine, Time at) {
  Engine& E = *engines_[uz(engine)];
  if (sim_->is_pending(E.retry) && E.retry_at <= at) return;
  if (sim_->is_pending(E.retry)) sim_->cancel(E.retry);
  E.retry_at = at;
  E.retry = sim_->schedule_at(at, [this, engine] { try_launch(engine); });
}

void ServingSimulator::try_launch(std::int32_t engine) {
  Engine& E = *engines_[uz(engine)];
  if (E.in_flight >= pp_) return;
  const Time now = sim_->now();
  if (E.stage_free[0] > now) {
    schedule_retry(engine, E.stage_free[0]);
    return;
  }
  const auto& members = layout_.replicas[uz(engine)];
  bool any = false;
  for (std::int32_t r : members) {
    if (schedulers_[uz(r)].has_schedulable(states_)) {
      any = true;
      break;
    }
  }
  if (!any) return;

  std::size_t slot = 0;
  while (slot < E.slots.size() && E.slots[slot].used) ++slot;
  if (slot == E.slots.size()) throw std::logic_error("serving: no free pipeline slot (bug)");
  Engine::Slot& S = E.slots[slot];
  S.batches.resize(members.size());
  S.preempted = 0;
  bool nonempty = false;
  for (std::size_t i = 0; i < members.size(); ++i) {
    ReplicaScheduler& sched = schedulers_[uz(members[i])];
    S.batches[i] = sched.has_schedulable(states_) ? sched.schedule(states_, now) : ReplicaIteration{};
    S.preempted += S.batches[i].preempted;
    auto& chunks = E.scratch.replicas[i];
    chunks.clear();
    for (const ScheduledChunk& c : S.batches[i].chunks) {
      chunks.push_back(SequenceChunk{c.new_tokens, c.cached_tokens, c.samples});
    }
    nonempty = nonempty || !S.batches[i].empty();
  }
  if (!nonempty) {
    if (E.in_flight == 0) {
      throw std::logic_error("serving: engine " + std::to_string(engine) +
                             " has requests but can schedule none with nothing in flight (scheduler bug)");
    }
    return;  // wait for an iteration in flight to end
  }

  const IterationTiming t = timer_->time(engine, E.scratch, iteration_counter_++);
  // Pipeline: stage s starts when the iteration has left stage s-1 (plus the
  // measured hand-over gap) and stage s has finished the previous iteration.
  Time prev_end = now;
  for (std::size_t s = 0; s < uz(pp_); ++s) {
    const Duration gap = s == 0 ? t.stage_begin[0] : std::max(Duration::zero(), t.stage_begin[s] - t.stage_end[s - 1]);
    const Time begin = std::max(prev_end + gap, E.stage_free[s]);
    const Time end = begin + (t.stage_end[s] - t.stage_begin[s]);
    E.stage_free[s] = end;
    prev_end = end;
  }
  const Time done = prev_end + std::max(Duration::zero(), t.latency - t.stage_end[uz(pp_ - 1)]);
  S.used = true;
  S.start = now;
  ++E.in_flight;
  sim_->schedule_at(done, [this, engine, slot] { on_iteration_end(engine, slot); });
  if (pp_ > 1 && E.in_flight < pp_) schedule_retry(engine, std::max(now, E.stage_free[0]));
}

void ServingSimulator::on_iteration_end(std::int32_t engine, std::size_t slot) {
  Engine& E = *engines_[uz(engine)];
  Engine::Slot& S = E.slots[slot];
  const Time now = sim_->now();
  const auto& members = layout_.replicas[uz(engine)];
  IterationRecord rec;
  rec.engine = engine;
  rec.start = S.start;
  rec.end = now;
  rec.preempted = S.preempted;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const ReplicaIteration& b = S.batches[i];
    rec.sequences += static_cast<std::int64_t>(b.chunks.size());
    rec.new_tokens += b.tokens();
    const IterationOutcome o = schedulers_[uz(members[i])].complete(b, states_, now);
    rec.prefill_tokens += o.prompt_tokens;
    rec.output_tokens += o.output_tokens;
    if (o.finished > 0) {
      for (const ScheduledChunk& c : b.chunks) {
        const RequestState& r = states_[uz(c.request)];
        if (r.phase == RequestState::Phase::kFinished && r.finished == now) {
          ++finished_;
          request_finished.emit(c.request);
        }
      }
    }
  }
  S.used = false;
  --E.in_flight;
  records_.push_back(rec);
  iteration_finished.emit(rec);
  try_launch(engine);
}

ServingResult ServingSimulator::run() {
  if (ran_) throw std::logic_error("ServingSimulator::run called twice");
  ran_ = true;
  const std::uint64_t events_before = sim_->events_executed();
  sim_->schedule_at(requests_.front().arrival, [this] { on_arrivals(); });
  sim_->run();
  if (finished_ != static_cast<std::int64_t>(requests_.size())) {
    throw std::logic_error("serving: the simulation ended with " +
                           std::to_string(static_cast<std::int64_t>(requests_.size()) - finished_) +
                           " requests unfinished (scheduler bug)");
  }
  ServingResult out;
  out.requests = requests_;
  out.states = states_;
  out.iterations = std::move(records_);
  out.replicas = layout_.replica_count();
  out.engines = layout_.engines();
  out.pp = pp_;
  out.kv_blocks = config_.kv_blocks;
  out.kv_block_tokens = config_.kv_block_tokens;
  for (const auto& s : schedulers_) {
    out.peak_kv_blocks.push_back(s.peak_blocks());
    out.preemptions += s.preemptions();
  }
  out.events = sim_->events_executed() - events_before;
  for (const auto& s : states_) out.makespan = std::max(out.makespan, s.finished);
  return out;
}

}  // namespace moesim

namespace moesim {

KvCapacity kv_capacity(const ModelSpec& model, const Strategy& strategy, const GpuSpec& gpu,
                       const MemoryOptions& options, std::int64_t max_batched_tokens, std::int64_t block_tokens) {
  if (block_tokens < 1) throw InputError("scheduler.kv_block_tokens must be >= 1");
  Strategy st = strategy;
  st.microbatches = st.pp;  // up to PP iterations in flight hold activations
  // One sequence per attention replica: the KV term is then one sequence's
  // bytes per GPU, and the difference between 2 and 1 context tokens is the
  // bytes of one token (whatever the formula's split over TP).
  WorkloadShape shape;
  shape.batch = strategy.attention_dp();
  shape.tokens_per_sequence = std::max<std::int64_t>(1, max_batched_tokens);
  shape.context_tokens = 1;
  const MemoryReport one = estimate_memory(model, st, gpu, shape, options);
  shape.context_tokens = 2;
  const MemoryReport two = estimate_memory(model, st, gpu, shape, options);
  KvCapacity best;
  bool first = true;
  for (std::size_t s = 0; s < one.stages.size(); ++s) {
    const Bytes per_token = two.stages[s].kv_cache - one.stages[s].kv_cache;
    if (per_token.count() <= 0) continue;  // a stage without attention layers holds no KV
    const Bytes other = one.stages[s].total() - one.stages[s].kv_cache;
    const Bytes free = one.capacity - other;
    const std::int64_t tokens = std::max<std::int64_t>(0, free.count()) / per_token.count();
    if (first || tokens < best.tokens) {
      first = false;
      best.tokens = tokens;
      best.free_bytes = free;
      best.bytes_per_token = per_token;
      best.limiting_stage = static_cast<std::int64_t>(s);
    }
  }
  if (first) throw InputError("the model has no KV cache to size (no attention layer on any stage)");
  best.blocks = best.tokens / block_tokens;
  if (best.blocks < 1) {
    throw InputError("no GPU memory is left for the KV cache on pipeline stage " +
                     std::to_string(best.limiting_stage) + " after weights, activations of " +
                     std::to_string(max_batched_tokens) +
                     " batched tokens, communication buffers and the reserve (free: " +
                     std::to_string(best.free_bytes.count()) +
                     " bytes); use more GPUs per replica (strategy.tp/ep/pp), a smaller "
                     "scheduler.max_batched_tokens or memory.reserve:\n" +
                     format_memory_table(one));
  }
  return best;
}

}  // namespace moesim
