#pragma once
// The serving simulation: requests arrive, a router spreads them over the
// attention data-parallel replicas, each replica's continuous-batching
// scheduler (workloads/scheduler.hpp) forms an iteration, the replicas of an
// engine (workloads/iteration_timer.hpp) run their iterations in lock step,
// and the iteration's time comes from the real forward-pass plan executed on
// the network model. Arrivals, iteration starts and ends are events of one
// Simulator; the plan of an iteration is executed in a simulator of its own
// (memoised by shape), whose result is the iteration's duration and stage
// timing. docs/serving.md describes the whole model.
//
// Pipeline parallelism: an engine keeps up to PP iterations in flight. A new
// iteration may start when stage 0 has finished the previous one; its stage
// s starts when it has left stage s-1 (plus the measured hand-over gap) and
// stage s has finished the iteration before it, and occupies the stage for
// the measured span of that stage (vLLM's virtual engines; SGLang likewise).
// In serving mode each iteration is one micro-batch (strategy.microbatches
// applies to batch mode only).
//
// Router (scheduler.router), at each arrival:
//   round_robin               replicas in turn;
//   least_outstanding_tokens  the replica with the fewest tokens still to
//                             process (pending prefill + decode steps left of
//                             all its requests); ties go to the next replica
//                             in round-robin order.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/options.hpp"
#include "sim/signal.hpp"
#include "sim/simulator.hpp"
#include "sim/units.hpp"
#include "workloads/iteration_timer.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/requests.hpp"
#include "workloads/scheduler.hpp"

namespace moesim {

enum class RouterKind : std::uint8_t { kRoundRobin, kLeastOutstandingTokens };
std::string_view to_string(RouterKind kind);

/// One engine iteration, as observers see it when it ends.
struct IterationRecord {
  std::int32_t engine = -1;
  Time start{};
  Time end{};
  std::int64_t sequences = 0;       // scheduled chunks over the engine's replicas
  std::int64_t new_tokens = 0;      // tokens computed
  std::int64_t prefill_tokens = 0;  // of which prompt tokens (recomputation included)
  std::int64_t output_tokens = 0;   // output tokens sampled
  std::int64_t preempted = 0;       // preemptions while forming it
};

/// Everything a serving run produced (the metrics are computed from it by
/// analysis/serving_metrics).
struct ServingResult {
  std::vector<Request> requests;        // the stream, by id
  std::vector<RequestState> states;     // by id
  std::vector<IterationRecord> iterations;  // in the order they ended
  std::int32_t replicas = 0;
  std::int32_t engines = 0;
  std::int64_t pp = 1;
  std::int64_t kv_blocks = 0;           // per replica
  std::int64_t kv_block_tokens = 0;
  std::vector<std::int64_t> peak_kv_blocks;  // per replica
  std::int64_t preemptions = 0;
  std::uint64_t events = 0;             // events of the serving simulator
  Time makespan{};                      // last request finished
};

class ServingSimulator {
 public:
  /// `timer` and `sim` must outlive the simulator. Throws InputError when a
  /// request can never be served (its peak KV need exceeds a replica's cache,
  /// or, without chunked prefill, its prompt + output exceeds the token
  /// budget).
  ServingSimulator(Simulator& sim, std::vector<Request> requests, EngineLayout layout, std::int64_t pp,
                   SchedulerConfig scheduler, RouterKind router, IterationTimer& timer);
  ServingSimulator(const ServingSimulator&) = delete;
  ServingSimulator& operator=(const ServingSimulator&) = delete;
  ~ServingSimulator();

  /// Runs every request to completion and returns the result. Call once.
  ServingResult run();

  /// Emitted when an iteration ends (after the requests were updated).
  Signal<IterationRecord> iteration_finished;
  /// Emitted when a request finishes (its index).
  Signal<std::int32_t> request_finished;

 private:
  struct Engine;
  void on_arrivals();
  std::int32_t route(std::int32_t request);
  void try_launch(std::int32_t engine);
  void on_iteration_end(std::int32_t engine, std::size_t slot);
  void schedule_retry(std::int32_t engine, Time at);

  Simulator* sim_;
  std::vector<Request> requests_;
  std::vector<RequestState> states_;
  EngineLayout layout_;
  std::int64_t pp_;
  SchedulerConfig config_;
  RouterKind router_;
  IterationTimer* timer_;
  std::vector<ReplicaScheduler> schedulers_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<IterationRecord> records_;
  std::size_t next_arrival_ = 0;
  std::int32_t rr_next_ = 0;
  std::int64_t iteration_counter_ = 0;
  std::int64_t finished_ = 0;
  bool ran_ = false;
};

/// KV-cache capacity of one replica from the memory model: what each GPU
/// has left after weights, activations (of max_batched_tokens tokens in
/// flight), communication buffers and the reserve, divided by its KV bytes
/// per token; the most constrained stage decides.
struct KvCapacity {
  std::int64_t tokens = 0;          // per replica
  std::int64_t blocks = 0;          // tokens / block_tokens
  Bytes free_bytes{};               // on the limiting stage's GPUs
  Bytes bytes_per_token{};          // per GPU of the limiting stage
  std::int64_t limiting_stage = 0;
};

/// Evaluates the memory model (workloads/memory_model.hpp) for one sequence
/// per replica with `max_batched_tokens` tokens in flight and PP micro-batches
/// (the iterations a pipeline holds), and turns what is left per GPU into KV
/// tokens. Throws InputError (with the memory table) when nothing is left.
KvCapacity kv_capacity(const ModelSpec& model, const Strategy& strategy, const GpuSpec& gpu,
                       const MemoryOptions& options, std::int64_t max_batched_tokens, std::int64_t block_tokens);

}  // namespace moesim
