#include "workloads/scheduler.hpp"

#include <algorithm>
#include <stdexcept>

#include "sim/options.hpp"

namespace moesim {

std::int64_t ReplicaIteration::tokens() const {
  std::int64_t t = 0;
  for (const auto& c : chunks) t += c.new_tokens;
  return t;
}

ReplicaScheduler::ReplicaScheduler(std::int32_t replica, SchedulerConfig config)
    : replica_(replica), config_(config) {
  if (config_.max_seqs < 1) throw InputError("scheduler.max_seqs must be >= 1");
  if (config_.max_batched_tokens < 1) throw InputError("scheduler.max_batched_tokens must be >= 1");
  if (config_.kv_block_tokens < 1) throw InputError("scheduler.kv_block_tokens must be >= 1");
  if (config_.kv_blocks < 1) throw InputError("the KV cache of a replica must hold at least one block");
}

void ReplicaScheduler::enqueue(std::int32_t request, std::vector<RequestState>& requests) {
  RequestState& r = requests[static_cast<std::size_t>(request)];
  r.phase = RequestState::Phase::kWaiting;
  r.replica = replica_;
  waiting_.push_back(request);
  outstanding_ += r.outstanding();
}

bool ReplicaScheduler::has_schedulable(const std::vector<RequestState>& requests) const {
  if (!waiting_.empty()) return true;
  for (std::int32_t idx : running_) {
    if (!requests[static_cast<std::size_t>(idx)].in_flight) return true;
  }
  return false;
}

bool ReplicaScheduler::grow(RequestState& r, std::int64_t tokens) {
  const std::int64_t need = blocks_for(tokens) - r.blocks;
  if (need <= 0) return true;
  if (used_blocks_ + need > config_.kv_blocks) return false;
  used_blocks_ += need;
  r.blocks += need;
  peak_blocks_ = std::max(peak_blocks_, used_blocks_);
  // The invariant the tests rely on: the cache never holds more than its capacity.
  if (used_blocks_ > config_.kv_blocks) throw std::logic_error("KV cache over capacity (scheduler bug)");
  return true;
}

void ReplicaScheduler::release(RequestState& r) {
  used_blocks_ -= r.blocks;
  r.blocks = 0;
  if (used_blocks_ < 0) throw std::logic_error("KV cache block count went negative (scheduler bug)");
}

void ReplicaScheduler::preempt(std::int32_t index, std::vector<RequestState>& requests) {
  RequestState& r = requests[static_cast<std::size_t>(index)];
  const std::int64_t before = r.outstanding();
  release(r);
  r.computed = 0;  // recompute: prompt + outputs so far become one prefill
  r.phase = RequestState::Phase::kWaiting;
  ++r.preemptions;
  ++preemptions_;
  outstanding_ += r.outstanding() - before;
  waiting_.push_front(index);
}

ReplicaIteration ReplicaScheduler::schedule(std::vector<RequestState>& requests, Time now) {
  ReplicaIteration it;
  std::int64_t budget = config_.max_batched_tokens;
  auto emit = [&](std::int32_t idx, RequestState& r, std::int64_t n) {
    it.chunks.push_back(ScheduledChunk{idx, n, r.computed, r.computed + n == r.known()});
    r.in_flight = true;
    if (r.first_scheduled == Time::max()) r.first_scheduled = now;
    budget -= n;
  };

  // 1. Running requests, oldest admission first.
  scheduled_mark_.assign(running_.size(), 0);
  bool preempted_any = false;
  for (std::size_t i = 0; i < running_.size() && budget > 0; ++i) {
    const std::int32_t idx = running_[i];
    RequestState& r = requests[static_cast<std::size_t>(idx)];
    if (r.in_flight) continue;
    const std::int64_t pending = r.pending();
    const std::int64_t n = std::min(pending, budget);
    if (!config_.chunked_prefill && n < pending) continue;  // a whole prompt only
    bool self_preempted = false;
    while (!grow(r, r.computed + n)) {
      // Victim: the newest running request not in flight and not scheduled
      // in this iteration (positions after i are not scheduled yet).
      std::size_t victim = running_.size();
      for (std::size_t j = running_.size(); j-- > i + 1;) {
        if (!requests[static_cast<std::size_t>(running_[j])].in_flight) {
          victim = j;
          break;
        }
      }
      preempted_any = true;
      ++it.preempted;
      if (victim == running_.size()) {
        // The request itself is the newest that can be preempted.
        preempt(idx, requests);
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        scheduled_mark_.erase(scheduled_mark_.begin() + static_cast<std::ptrdiff_t>(i));
        self_preempted = true;
        break;
      }
      preempt(running_[victim], requests);
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(victim));
      scheduled_mark_.erase(scheduled_mark_.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    if (self_preempted) break;  // as vLLM: stop scheduling running requests
    emit(idx, r, n);
    scheduled_mark_[i] = 1;
  }

  // 2. Admission from the waiting queue (not after a preemption).
  if (!preempted_any) {
    while (!waiting_.empty() && static_cast<std::int64_t>(running_.size()) < config_.max_seqs && budget > 0) {
      const std::int32_t idx = waiting_.front();
      RequestState& r = requests[static_cast<std::size_t>(idx)];
      const std::int64_t pending = r.pending();
      if (!config_.chunked_prefill && pending > budget) break;
      const std::int64_t n = std::min(pending, budget);
      if (!grow(r, r.computed + n)) break;  // admission waits for free blocks
      waiting_.pop_front();
      running_.push_back(idx);
      r.phase = RequestState::Phase::kRunning;
      emit(idx, r, n);
    }
  }
  return it;
}

IterationOutcome ReplicaScheduler::complete(const ReplicaIteration& iteration, std::vector<RequestState>& requests,
                                            Time now) {
  IterationOutcome out;
  bool any_finished = false;
  for (const ScheduledChunk& c : iteration.chunks) {
    RequestState& r = requests[static_cast<std::size_t>(c.request)];
    const std::int64_t before = r.outstanding();
    r.in_flight = false;
    // Prompt tokens computed by this chunk (a recomputation counts again: it
    // is work the GPUs did); a decode step computes none.
    out.prompt_tokens += std::max<std::int64_t>(
        0, std::min(c.cached_tokens + c.new_tokens, r.prompt_tokens) - c.cached_tokens);
    r.computed += c.new_tokens;
    if (c.samples) {
      ++r.generated;
      ++out.output_tokens;
      if (r.first_token == Time::max()) r.first_token = now;
      if (r.generated >= r.output_tokens) {
        release(r);
        r.phase = RequestState::Phase::kFinished;
        r.finished = now;
        ++out.finished;
        any_finished = true;
      }
    }
    outstanding_ += r.outstanding() - before;
  }
  if (any_finished) {
    std::erase_if(running_, [&](std::int32_t idx) {
      return requests[static_cast<std::size_t>(idx)].phase == RequestState::Phase::kFinished;
    });
  }
  return out;
}

}  // namespace moesim
