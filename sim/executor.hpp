#pragma once
// The executor: runs a Plan on the simulated GPUs with CUDA-stream + NCCL
// semantics.
//
//  - Ops on one lane (GPU, stream) run one at a time, in program order.
//  - An op starts when it is at the head of each of its lanes AND every op it
//    depends on has finished. A compute op then takes its precomputed
//    duration; a collective (at the head of the stream on EVERY participant:
//    the rendezvous) is handed to the CommunicationBackend and finishes when
//    the backend reports its last byte delivered, freeing all participants.
//  - Overlap therefore happens exactly where the dependencies and streams let
//    it, never by assumption.
//
// The executor emits signals (op arrived / began / ended, plan started /
// finished) for observers (analysis/time_breakdown, traces); it never writes
// files. A plan that cannot finish (no op running, ops left) is a plan-builder
// bug: the executor throws PlanError at that instant, naming the stuck ops.
//
// Hot path: flat arrays indexed by op id and lane id, one simulator event per
// compute op, no per-op allocation.

#include <cstdint>
#include <vector>

#include "sim/communication.hpp"
#include "sim/plan.hpp"
#include "sim/signal.hpp"
#include "sim/simulator.hpp"
#include "sim/unique_function.hpp"
#include "sim/units.hpp"

namespace moesim {

/// One op on one of its lanes, at one instant. A collective emits one event
/// per participant (each on that GPU's lane).
struct OpEvent {
  Time time;
  OpId op = -1;
  GpuId gpu = -1;
  StreamKind stream = StreamKind::kCompute;
  OpCategory category = OpCategory::kOtherCompute;
  const Plan* plan = nullptr;  // for labels, durations, request sizes
};

class Executor {
 public:
  /// Takes the plan (collective requests are moved into the backend as they
  /// start). `backend` and `sim` must outlive the executor.
  Executor(Simulator& sim, CommunicationBackend& backend, Plan plan);
  Executor(const Executor&) = delete;  // completion callbacks hold `this`
  Executor& operator=(const Executor&) = delete;
  ~Executor() = default;

  /// Starts the plan at sim.now(); `on_finished` runs when its last op ends
  /// (immediately, inside start(), for an empty plan). Call once.
  void start(UniqueFunction<void()> on_finished = {});
  /// start() + sim.run(); throws PlanError when the plan did not finish.
  /// Other models sharing `sim` keep running too.
  void run();

  [[nodiscard]] bool started() const { return started_; }
  [[nodiscard]] bool finished() const { return done_ == plan_.size() && started_; }
  [[nodiscard]] Time start_time() const { return start_time_; }
  /// Time the last op ended (valid once finished()).
  [[nodiscard]] Time finish_time() const { return finish_time_; }
  [[nodiscard]] Duration makespan() const { return finish_time_ - start_time_; }
  [[nodiscard]] const Plan& plan() const { return plan_; }
  [[nodiscard]] std::size_t ops_done() const { return done_; }

  /// When op `op` began / ended (Time::max() if it has not).
  [[nodiscard]] Time begin_time(OpId op) const { return begin_[static_cast<std::size_t>(op)]; }
  [[nodiscard]] Time end_time(OpId op) const { return end_[static_cast<std::size_t>(op)]; }
  /// The backend's report for a finished collective op.
  [[nodiscard]] const CollectiveResult& collective_result(OpId op) const;

  /// A collective participant is "locally ready": the op is at the head of
  /// that GPU's lane and every dependency that ran on that GPU is done, so on
  /// real hardware its NCCL kernel would be launched and waiting for peers.
  /// (Compute ops do not emit it: for them it coincides with op_began.)
  Signal<OpEvent> op_arrived;
  Signal<OpEvent> op_began;
  Signal<OpEvent> op_ended;
  Signal<Time> plan_started;
  Signal<Time> plan_finished;

 private:
  void prepare();
  void on_head(OpId op, std::int32_t participant);
  void try_start(OpId op);
  void begin_op(OpId op);
  void complete(OpId op);
  void arrive(OpId op, std::int32_t participant);
  [[nodiscard]] OpEvent event(OpId op, LaneId lane) const;
  [[noreturn]] void throw_deadlock() const;

  Simulator* sim_;
  CommunicationBackend* backend_;
  Plan plan_;
  UniqueFunction<void()> on_finished_;

  // Successors (CSR), built by prepare().
  std::vector<std::uint32_t> succ_begin_;
  std::vector<OpId> succ_;
  // For collectives: for each dependency op d, the (successor, participant)
  // pairs whose participant runs on one of d's GPUs (CSR by d), and per
  // collective lane slot the count of such local dependencies not yet done.
  struct LocalEdge {
    OpId op;
    std::int32_t participant;
  };
  std::vector<std::uint32_t> local_begin_;
  std::vector<LocalEdge> local_succ_;
  std::vector<std::int32_t> local_pending_;  // indexed like the plan's lanes (lane slot of an op)
  std::vector<std::uint32_t> slot_base_;     // op -> first lane-slot index

  // Run state.
  std::vector<std::int32_t> pending_deps_;
  std::vector<std::int32_t> heads_;       // lanes on which the op is at the head
  std::vector<std::uint8_t> state_;       // 0 waiting, 1 running, 2 done
  std::vector<std::uint32_t> lane_pos_;   // index of the head op in each lane
  std::vector<Time> begin_;
  std::vector<Time> end_;
  std::vector<CollectiveResult> results_;  // per collective (plan order)
  std::vector<std::int32_t> result_index_;
  std::size_t done_ = 0;
  std::size_t running_ = 0;
  bool started_ = false;
  Time start_time_{};
  Time finish_time_{};
};

}  // namespace moesim
