#pragma once
// Continuous batching for one attention data-parallel replica, iteration by
// iteration, the way vLLM's V1 scheduler does it (Kwon et al., "Efficient
// Memory Management for Large Language Model Serving with PagedAttention",
// SOSP 2023; Yu et al., "Orca", OSDI 2022; vllm/v1/core/sched/scheduler.py).
// docs/serving.md, "Scheduling", states the policy in prose.
//
// Every request has `known` tokens (its prompt plus the output tokens
// sampled so far) of which `computed` are in the KV cache. An iteration
// computes `new_tokens` more for each scheduled request; when that brings
// computed up to known, the iteration samples one output token. A prompt of
// P tokens therefore takes one (or, chunked, several) prefill iterations, the
// last of which samples the first output token; every later output token is
// one decode step of one new token.
//
// One iteration's schedule:
//  1. Running requests first, oldest admission first: each gets
//     min(known - computed, token budget) new tokens (chunked prefill
//     continues; a decode takes 1). Its KV blocks grow to cover
//     computed + new tokens. When the free blocks do not suffice, the newest
//     running request (the last admitted, not yet scheduled in this
//     iteration and not in flight) is preempted: its blocks are freed, its
//     computed tokens reset to 0 and it goes back to the FRONT of the waiting
//     queue, to be recomputed (prompt + outputs so far as one prefill) when
//     it is admitted again: vLLM's recompute preemption. If the request that
//     cannot grow is itself the newest, it is the one preempted.
//  2. If nothing was preempted in this iteration, waiting requests are
//     admitted in FIFO order while running < max_seqs, the token budget is
//     not exhausted and the KV cache has the blocks for the tokens to
//     compute; the first that does not fit stops admission (head-of-line,
//     as vLLM). Without chunked prefill a prompt is admitted only whole.
// Token budget: max_batched_tokens new tokens per iteration in total.
//
// Paged KV cache: a request holding c tokens holds ceil(c / block_tokens)
// blocks; the replica has `kv_blocks` in all. The scheduler never allocates
// beyond that (checked by an assertion after every allocation, and by the
// tests through peak_blocks()).
//
// Pipeline parallelism (several iterations in flight): a request scheduled in
// an iteration that has not finished is "in flight" and is skipped by later
// schedules (vLLM's virtual engines).

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "sim/units.hpp"

namespace moesim {

struct SchedulerConfig {
  std::int64_t max_seqs = 256;              // running requests per replica (vLLM max_num_seqs)
  std::int64_t max_batched_tokens = 8192;   // new tokens per iteration (vLLM max_num_batched_tokens)
  bool chunked_prefill = true;
  std::int64_t kv_block_tokens = 16;        // tokens per KV block (vLLM block_size)
  std::int64_t kv_blocks = 0;               // blocks per replica (resolved; > 0)
};

/// The state of one request inside the serving simulation.
struct RequestState {
  enum class Phase : std::uint8_t { kNotArrived, kWaiting, kRunning, kFinished };

  std::int64_t prompt_tokens = 1;
  std::int64_t output_tokens = 1;
  std::int32_t replica = -1;
  Phase phase = Phase::kNotArrived;
  bool in_flight = false;
  std::int64_t generated = 0;   // output tokens sampled so far
  std::int64_t computed = 0;    // tokens in the KV cache
  std::int64_t blocks = 0;      // KV blocks held
  std::int32_t preemptions = 0;
  Time arrival{};
  Time first_scheduled = Time::max();
  Time first_token = Time::max();
  Time finished = Time::max();

  /// Prompt + outputs sampled so far: what the KV cache must eventually hold
  /// before the next token can be sampled.
  [[nodiscard]] std::int64_t known() const { return prompt_tokens + generated; }
  /// Tokens still to compute before the next sample.
  [[nodiscard]] std::int64_t pending() const { return known() - computed; }
  /// The most KV tokens the request ever holds: prompt + output - 1 (the last
  /// sampled token is never fed back).
  [[nodiscard]] std::int64_t peak_kv_tokens() const { return prompt_tokens + output_tokens - 1; }
  /// Tokens still to process until it finishes: pending prefill plus the
  /// decode steps left (the router's "outstanding tokens").
  [[nodiscard]] std::int64_t outstanding() const {
    return pending() + (output_tokens - generated - 1);
  }
};

/// One request's part of an iteration.
struct ScheduledChunk {
  std::int32_t request = -1;    // index into the request table
  std::int64_t new_tokens = 0;
  std::int64_t cached_tokens = 0;
  bool samples = false;         // completes known tokens: samples one output token
};

/// What one replica computes in one iteration.
struct ReplicaIteration {
  std::vector<ScheduledChunk> chunks;
  std::int64_t preempted = 0;   // requests preempted while forming it
  [[nodiscard]] bool empty() const { return chunks.empty(); }
  [[nodiscard]] std::int64_t tokens() const;
};

/// What completing an iteration did, for metrics.
struct IterationOutcome {
  std::int64_t prompt_tokens = 0;   // prefill tokens computed (recomputation included)
  std::int64_t output_tokens = 0;   // output tokens sampled
  std::int64_t finished = 0;        // requests that completed
};

class ReplicaScheduler {
 public:
  /// Throws InputError for non-positive limits.
  ReplicaScheduler(std::int32_t replica, SchedulerConfig config);

  /// A request routed here arrives (appended to the waiting queue).
  void enqueue(std::int32_t request, std::vector<RequestState>& requests);

  /// Forms the next iteration at `now` (see the file comment); marks its
  /// requests in flight.
  ReplicaIteration schedule(std::vector<RequestState>& requests, Time now);

  /// The iteration finished at `now`: tokens move into the KV cache, samples
  /// are taken, finished requests free their blocks.
  IterationOutcome complete(const ReplicaIteration& iteration, std::vector<RequestState>& requests, Time now);

  /// True when some request waits or runs here.
  [[nodiscard]] bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  /// True when a request is waiting or running and not in flight (an
  /// iteration might have work to do).
  [[nodiscard]] bool has_schedulable(const std::vector<RequestState>& requests) const;

  [[nodiscard]] std::int32_t replica() const { return replica_; }
  [[nodiscard]] const SchedulerConfig& config() const { return config_; }
  [[nodiscard]] std::int64_t used_blocks() const { return used_blocks_; }
  [[nodiscard]] std::int64_t peak_blocks() const { return peak_blocks_; }
  [[nodiscard]] std::int64_t preemptions() const { return preemptions_; }
  [[nodiscard]] std::size_t waiting() const { return waiting_.size(); }
  [[nodiscard]] std::size_t running() const { return running_.size(); }
  /// Outstanding tokens of every request here (router input), kept
  /// incrementally.
  [[nodiscard]] std::int64_t outstanding_tokens() const { return outstanding_; }

  [[nodiscard]] std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + config_.kv_block_tokens - 1) / config_.kv_block_tokens;
  }

 private:
  /// Grows `r`'s allocation to cover `tokens`; false (and nothing changed)
  /// when the free blocks do not suffice.
  bool grow(RequestState& r, std::int64_t tokens);
  void release(RequestState& r);
  void preempt(std::int32_t index, std::vector<RequestState>& requests);

  std::int32_t replica_;
  SchedulerConfig config_;
  std::deque<std::int32_t> waiting_;
  std::vector<std::int32_t> running_;  // admission order
  std::vector<std::uint8_t> scheduled_mark_;  // scratch, by position in running_
  std::int64_t used_blocks_ = 0;
  std::int64_t peak_blocks_ = 0;
  std::int64_t preemptions_ = 0;
  std::int64_t outstanding_ = 0;
};

}  // namespace moesim
