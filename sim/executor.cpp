#include "sim/executor.hpp"

#include <algorithm>
#include <sstream>
#include <utility>

namespace moesim {

namespace {
constexpr std::uint8_t kWaiting = 0;
constexpr std::uint8_t kRunning = 1;
constexpr std::uint8_t kDone = 2;
}  // namespace

Executor::Executor(Simulator& sim, CommunicationBackend& backend, Plan plan)
    : sim_(&sim), backend_(&backend), plan_(std::move(plan)) {
  prepare();
}

void Executor::prepare() {
  const std::size_t n = plan_.size();
  pending_deps_.assign(n, 0);
  heads_.assign(n, 0);
  state_.assign(n, kWaiting);
  begin_.assign(n, Time::max());
  end_.assign(n, Time::max());
  lane_pos_.assign(static_cast<std::size_t>(plan_.lane_count()), 0);
  results_.assign(plan_.collective_count(), CollectiveResult{});

  // Successor lists (CSR), by counting.
  succ_begin_.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const auto deps = plan_.dependencies(static_cast<OpId>(i));
    pending_deps_[i] = static_cast<std::int32_t>(deps.size());
    for (OpId d : deps) ++succ_begin_[static_cast<std::size_t>(d) + 1];
  }
  for (std::size_t i = 0; i < n; ++i) succ_begin_[i + 1] += succ_begin_[i];
  succ_.resize(succ_begin_[n]);
  {
    std::vector<std::uint32_t> fill(succ_begin_.begin(), succ_begin_.end() - 1);
    for (std::size_t i = 0; i < n; ++i) {
      for (OpId d : plan_.dependencies(static_cast<OpId>(i))) succ_[fill[static_cast<std::size_t>(d)]++] = static_cast<OpId>(i);
    }
  }

  // Local dependencies of collective participants: a dependency d is local to
  // participant p of collective s when d ran on p's GPU. Two passes (count,
  // fill) over the same loop.
  local_pending_.assign(plan_.total_lane_slots(), 0);
  local_begin_.assign(n + 1, 0);
  std::vector<std::int32_t> slot_of_gpu(static_cast<std::size_t>(plan_.gpu_count()), -1);
  auto for_each_local = [&](auto&& visit) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto s = static_cast<OpId>(i);
      if (plan_.kind(s) != OpKind::kCollective) continue;
      const auto lanes = plan_.lanes(s);
      for (std::size_t p = 0; p < lanes.size(); ++p) {
        slot_of_gpu[static_cast<std::size_t>(gpu_of_lane(lanes[p]))] = static_cast<std::int32_t>(p);
      }
      for (OpId d : plan_.dependencies(s)) {
        for (LaneId l : plan_.lanes(d)) {
          const std::int32_t p = slot_of_gpu[static_cast<std::size_t>(gpu_of_lane(l))];
          if (p >= 0) visit(d, s, p);
        }
      }
      for (LaneId l : lanes) slot_of_gpu[static_cast<std::size_t>(gpu_of_lane(l))] = -1;
    }
  };
  for_each_local([&](OpId d, OpId s, std::int32_t p) {
    ++local_begin_[static_cast<std::size_t>(d) + 1];
    ++local_pending_[plan_.lane_slot_begin(s) + static_cast<std::uint32_t>(p)];
  });
  for (std::size_t i = 0; i < n; ++i) local_begin_[i + 1] += local_begin_[i];
  local_succ_.resize(local_begin_[n]);
  {
    std::vector<std::uint32_t> fill(local_begin_.begin(), local_begin_.end() - 1);
    for_each_local([&](OpId d, OpId s, std::int32_t p) { local_succ_[fill[static_cast<std::size_t>(d)]++] = LocalEdge{s, p}; });
  }
}

OpEvent Executor::event(OpId op, LaneId lane) const {
  return OpEvent{sim_->now(), op, gpu_of_lane(lane), stream_of_lane(lane), plan_.label(op).category, &plan_};
}

const CollectiveResult& Executor::collective_result(OpId op) const {
  const std::int32_t i = plan_.collective_index(op);
  if (i < 0) throw PlanError("op " + std::to_string(op) + " is not a collective");
  return results_[static_cast<std::size_t>(i)];
}

void Executor::start(UniqueFunction<void()> on_finished) {
  if (started_) throw PlanError("Executor::start called twice");
  started_ = true;
  on_finished_ = std::move(on_finished);
  start_time_ = sim_->now();
  plan_started.emit(start_time_);
  if (plan_.size() == 0) {
    finish_time_ = start_time_;
    plan_finished.emit(finish_time_);
    if (on_finished_) {
      auto cb = std::move(on_finished_);
      cb();
    }
    return;
  }
  for (LaneId lane = 0; lane < plan_.lane_count(); ++lane) {
    const auto& ops = plan_.lane_ops(lane);
    if (!ops.empty()) on_head(ops.front().op, ops.front().participant);
  }
  if (running_ == 0) throw_deadlock();
}

void Executor::run() {
  start();
  sim_->run();
  if (!finished()) throw_deadlock();
}

void Executor::arrive(OpId op, std::int32_t participant) {
  if (!op_arrived.connected()) return;
  const LaneId lane = plan_.lanes(op)[static_cast<std::size_t>(participant)];
  op_arrived.emit(event(op, lane));
}

void Executor::on_head(OpId op, std::int32_t participant) {
  const auto i = static_cast<std::size_t>(op);
  ++heads_[i];
  if (plan_.kind(op) == OpKind::kCollective &&
      local_pending_[plan_.lane_slot_begin(op) + static_cast<std::uint32_t>(participant)] == 0) {
    arrive(op, participant);
  }
  try_start(op);
}

void Executor::try_start(OpId op) {
  const auto i = static_cast<std::size_t>(op);
  if (state_[i] != kWaiting || pending_deps_[i] != 0) return;
  if (static_cast<std::size_t>(heads_[i]) != plan_.lanes(op).size()) return;
  begin_op(op);
}

void Executor::begin_op(OpId op) {
  const auto i = static_cast<std::size_t>(op);
  state_[i] = kRunning;
  ++running_;
  begin_[i] = sim_->now();
  if (op_began.connected()) {
    for (LaneId lane : plan_.lanes(op)) op_began.emit(event(op, lane));
  }
  if (plan_.kind(op) == OpKind::kCompute) {
    sim_->schedule_in(plan_.duration(op), [this, op] { complete(op); });
  } else {
    backend_->start(std::move(plan_.mutable_request(op)), [this, op](const CollectiveResult& r) {
      results_[static_cast<std::size_t>(plan_.collective_index(op))] = r;
      complete(op);
    });
  }
}

void Executor::complete(OpId op) {
  const auto i = static_cast<std::size_t>(op);
  state_[i] = kDone;
  --running_;
  ++done_;
  end_[i] = sim_->now();
  const auto lanes = plan_.lanes(op);
  if (op_ended.connected()) {
    for (LaneId lane : lanes) op_ended.emit(event(op, lane));
  }
  // 1. Dependents: one dependency fewer (started below, once the streams have
  //    advanced, so that arrivals are signalled before beginnings).
  for (std::uint32_t k = succ_begin_[i]; k < succ_begin_[i + 1]; ++k) --pending_deps_[static_cast<std::size_t>(succ_[k])];
  // 2. Collective participants on this op's GPUs may now be locally ready.
  for (std::uint32_t k = local_begin_[i]; k < local_begin_[i + 1]; ++k) {
    const LocalEdge e = local_succ_[k];
    if (--local_pending_[plan_.lane_slot_begin(e.op) + static_cast<std::uint32_t>(e.participant)] != 0) continue;
    const LaneId lane = plan_.lanes(e.op)[static_cast<std::size_t>(e.participant)];
    const auto& lane_ops = plan_.lane_ops(lane);
    const std::uint32_t pos = lane_pos_[static_cast<std::size_t>(lane)];
    if (pos < lane_ops.size() && lane_ops[pos].op == e.op) arrive(e.op, e.participant);
  }
  // 3. Each lane of this op moves on to its next op.
  for (LaneId lane : lanes) {
    const auto& lane_ops = plan_.lane_ops(lane);
    const std::uint32_t pos = ++lane_pos_[static_cast<std::size_t>(lane)];
    if (pos < lane_ops.size()) on_head(lane_ops[pos].op, lane_ops[pos].participant);
  }
  // 4. Start the dependents that became ready.
  for (std::uint32_t k = succ_begin_[i]; k < succ_begin_[i + 1]; ++k) try_start(succ_[k]);

  if (done_ == plan_.size()) {
    finish_time_ = sim_->now();
    plan_finished.emit(finish_time_);
    if (on_finished_) {
      auto cb = std::move(on_finished_);
      cb();
    }
  } else if (running_ == 0) {
    throw_deadlock();
  }
}

void Executor::throw_deadlock() const {
  std::ostringstream msg;
  msg << "plan deadlock (a plan-builder bug): " << (plan_.size() - done_) << " of " << plan_.size()
      << " ops can never run";
  if (running_ > 0) msg << " (" << running_ << " collectives never reported completion by the backend)";
  msg << ".";
  int shown = 0;
  for (LaneId lane = 0; lane < plan_.lane_count() && shown < 6; ++lane) {
    const auto& ops = plan_.lane_ops(lane);
    const std::uint32_t pos = lane_pos_[static_cast<std::size_t>(lane)];
    if (pos >= ops.size()) continue;
    const OpId op = ops[pos].op;
    if (state_[static_cast<std::size_t>(op)] != kWaiting) continue;
    ++shown;
    msg << "\n  GPU " << gpu_of_lane(lane) << " " << to_string(stream_of_lane(lane)) << " stream: op " << op << " ("
        << describe(plan_.label(op)) << ") waits";
    for (LaneId other : plan_.lanes(op)) {
      const auto& oops = plan_.lane_ops(other);
      const std::uint32_t opos = lane_pos_[static_cast<std::size_t>(other)];
      if (opos < oops.size() && oops[opos].op != op) {
        msg << "; on GPU " << gpu_of_lane(other) << " " << to_string(stream_of_lane(other)) << " stream behind op "
            << oops[opos].op << " (" << describe(plan_.label(oops[opos].op)) << ")";
      }
    }
    int listed = 0;
    for (OpId d : plan_.dependencies(op)) {
      if (state_[static_cast<std::size_t>(d)] == kDone) continue;
      if (listed++ == 3) {
        msg << "; ...";
        break;
      }
      msg << "; for op " << d << " (" << describe(plan_.label(d)) << ")";
    }
  }
  throw PlanError(msg.str());
}

}  // namespace moesim
