// Executor semantics: stream program order, dependencies, collective
// rendezvous, signals, error handling. Expected times are worked out by hand
// in the comments beside each check.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "sim/executor.hpp"
#include "sim/plan.hpp"
#include "sim/simulator.hpp"

using namespace moesim;
using namespace moesim::literals;

namespace {

/// Every collective takes `base + bytes / bandwidth` (no contention): a
/// stand-in network whose times are trivially computed by hand.
class FixedCostBackend : public CommunicationBackend {
 public:
  FixedCostBackend(Simulator& sim, Duration base, Bandwidth bw = Bandwidth::gbytes_per_second(1.0))
      : sim_(&sim), base_(base), bw_(bw) {}
  void start(CollectiveRequest request, Completion on_complete) override {
    started.push_back(request.label);
    const Duration t = base_ + transfer_duration(request.bytes, bw_);
    sim_->schedule_in(t, [t, cb = std::move(on_complete)]() mutable { cb(CollectiveResult{t, 1}); });
  }
  std::vector<std::string> started;

 private:
  Simulator* sim_;
  Duration base_;
  Bandwidth bw_;
};

/// Accepts collectives and never completes them (a lost completion).
class BlackHoleBackend : public CommunicationBackend {
 public:
  void start(CollectiveRequest, Completion) override {}
};

OpLabel lbl(OpCategory c, int mb = -1) { return OpLabel{c, 0, 0, mb}; }

CollectiveRequest all_reduce(std::vector<GpuId> group, Bytes bytes, std::string label) {
  CollectiveRequest r;
  r.op = CollectiveOp::kAllReduce;
  r.group = std::move(group);
  r.bytes = bytes;
  r.label = std::move(label);
  return r;
}

}  // namespace

TEST_CASE("ops on one stream run in program order, other GPUs run concurrently", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 0_us);
  Plan plan(2);
  const OpId a = plan.add_compute(0, 10_us, lbl(OpCategory::kAttention));
  const OpId b = plan.add_compute(0, 5_us, lbl(OpCategory::kExpert));  // no dependency: only the stream orders it
  const OpId c = plan.add_compute(1, 7_us, lbl(OpCategory::kAttention));
  Executor ex(sim, net, std::move(plan));
  ex.run();
  // GPU 0: a [0,10), b [10,15). GPU 1: c [0,7).
  CHECK(ex.begin_time(a) == Time::at(0_us));
  CHECK(ex.end_time(a) == Time::at(10_us));
  CHECK(ex.begin_time(b) == Time::at(10_us));
  CHECK(ex.end_time(b) == Time::at(15_us));
  CHECK(ex.begin_time(c) == Time::at(0_us));
  CHECK(ex.end_time(c) == Time::at(7_us));
  CHECK(ex.makespan() == 15_us);
  CHECK(ex.finished());
}

TEST_CASE("an op waits for its dependencies on other GPUs and streams", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 0_us);
  Plan plan(2);
  const OpId a = plan.add_compute(0, 10_us, lbl(OpCategory::kAttention));
  const OpId b = plan.add_compute(1, 4_us, lbl(OpCategory::kAttention), {a});
  // A second stream of GPU 1 runs beside b: compute on the comm stream (a copy engine).
  const OpId c = plan.add_compute(1, 3_us, lbl(OpCategory::kOtherCompute), {}, StreamKind::kComm);
  const OpId d = plan.add_compute(1, 1_us, lbl(OpCategory::kNorm), {b, c});
  Executor ex(sim, net, std::move(plan));
  ex.run();
  // b waits for a: [10,14). c runs at once on its own stream: [0,3). d after both: [14,15).
  CHECK(ex.begin_time(b) == Time::at(10_us));
  CHECK(ex.begin_time(c) == Time::at(0_us));
  CHECK(ex.begin_time(d) == Time::at(14_us));
  CHECK(ex.end_time(d) == Time::at(15_us));
}

TEST_CASE("compute and communication streams overlap only where dependencies permit", "[executor]") {
  Simulator sim;
  // 1 GB/s and 2 us base: a 4,000-byte all-reduce takes 2 us + 4 us = 6 us.
  FixedCostBackend net(sim, 2_us);
  Plan plan(2);
  const OpId x0 = plan.add_compute(0, 10_us, lbl(OpCategory::kAttention));
  const OpId x1 = plan.add_compute(1, 10_us, lbl(OpCategory::kAttention));
  // Independent collective (e.g. the previous micro-batch's): overlaps x0/x1.
  const OpId ar_free = plan.add_collective(all_reduce({0, 1}, Bytes(4000), "free"), lbl(OpCategory::kTpAllReduce));
  // Dependent collective: only after both computations.
  const OpId ar_dep = plan.add_collective(all_reduce({0, 1}, Bytes(4000), "dep"), lbl(OpCategory::kTpAllReduce), {x0, x1});
  const OpId y0 = plan.add_compute(0, 1_us, lbl(OpCategory::kNorm), {ar_dep});
  Executor ex(sim, net, std::move(plan));
  ex.run();
  CHECK(ex.begin_time(ar_free) == Time::at(0_us));
  CHECK(ex.end_time(ar_free) == Time::at(6_us));
  CHECK(ex.begin_time(ar_dep) == Time::at(10_us));
  CHECK(ex.end_time(ar_dep) == Time::at(16_us));
  CHECK(ex.begin_time(y0) == Time::at(16_us));
  CHECK(ex.collective_result(ar_dep).time == 6_us);
  CHECK(net.started == std::vector<std::string>{"free", "dep"});
}

TEST_CASE("a collective starts only when every participant reaches it on its stream", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 1_us);  // zero bytes: 1 us each
  Plan plan(3);
  const OpId slow = plan.add_compute(2, 20_us, lbl(OpCategory::kExpert));
  const OpId fast = plan.add_compute(0, 5_us, lbl(OpCategory::kExpert));
  // GPU 1's comm stream first holds a collective with GPU 2 that needs `slow`.
  const OpId first = plan.add_collective(all_reduce({1, 2}, Bytes(0), "first"), lbl(OpCategory::kTpAllReduce), {slow});
  // Then the collective of GPUs 0 and 1, which depends only on `fast` (GPU 0).
  const OpId second = plan.add_collective(all_reduce({0, 1}, Bytes(0), "second"), lbl(OpCategory::kEpCombine), {fast});

  std::vector<std::pair<GpuId, Time>> arrivals;
  std::vector<std::pair<GpuId, Time>> begins;
  Executor ex(sim, net, std::move(plan));
  ex.op_arrived.connect([&](const OpEvent& e) {
    if (e.op == second) arrivals.emplace_back(e.gpu, e.time);
  });
  ex.op_began.connect([&](const OpEvent& e) {
    if (e.op == second) begins.emplace_back(e.gpu, e.time);
  });
  ex.run();
  // first: [20,21). second: GPU 0 ready at 5 us (after `fast`), GPU 1 only
  // when `first` leaves its stream at 21 us: rendezvous at 21, ends at 22.
  CHECK(ex.begin_time(first) == Time::at(20_us));
  CHECK(ex.begin_time(second) == Time::at(21_us));
  CHECK(ex.end_time(second) == Time::at(22_us));
  REQUIRE(arrivals.size() == 2);
  std::sort(arrivals.begin(), arrivals.end());
  CHECK(arrivals[0] == std::make_pair(GpuId{0}, Time::at(5_us)));
  CHECK(arrivals[1] == std::make_pair(GpuId{1}, Time::at(21_us)));
  REQUIRE(begins.size() == 2);  // one begin per participant
  CHECK(begins[0].second == Time::at(21_us));
  CHECK(begins[1].second == Time::at(21_us));
}

TEST_CASE("pipeline send/recv uses the send stream of one GPU and the receive stream of the other", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 0_us);  // 1 GB/s: 1,000 bytes = 1 us
  Plan plan(2);
  // Stage 0 computes micro-batches 0 and 1 (10 us each) and sends each; stage
  // 1 computes each after receiving it. GPipe timeline by hand:
  //   s0: c0 [0,10) c1 [10,20);  send0 [10,11) send1 [20,21)
  //   s1: d0 [11,21) d1 [21,31)
  std::vector<OpId> d;
  for (int m = 0; m < 2; ++m) {
    const OpId c = plan.add_compute(0, 10_us, lbl(OpCategory::kExpert, m));
    const OpId s = plan.add_send_recv(0, 1, Bytes(1000), OpLabel{OpCategory::kPpTransfer, 0, -1, m}, std::vector<OpId>{c});
    d.push_back(plan.add_compute(1, 10_us, lbl(OpCategory::kExpert, m), {s}));
  }
  const Plan& p = plan;
  CHECK(stream_of_lane(p.lanes(1)[0]) == StreamKind::kPpSend);
  CHECK(stream_of_lane(p.lanes(1)[1]) == StreamKind::kPpRecv);
  Executor ex(sim, net, std::move(plan));
  ex.run();
  CHECK(ex.begin_time(d[0]) == Time::at(11_us));
  CHECK(ex.begin_time(d[1]) == Time::at(21_us));
  CHECK(ex.makespan() == 31_us);
}

TEST_CASE("signals: every lane of every op begins and ends once, in time order", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 3_us);
  Plan plan(4);
  std::vector<OpId> prev;
  std::size_t lane_slots = 0;
  for (int layer = 0; layer < 3; ++layer) {
    std::vector<OpId> cur;
    for (GpuId g = 0; g < 4; ++g) {
      cur.push_back(plan.add_compute(g, Duration::us(1 + g), lbl(OpCategory::kAttention), prev));
      ++lane_slots;
    }
    CollectiveRequest a2a;
    a2a.op = CollectiveOp::kAllToAll;
    a2a.group = {0, 1, 2, 3};
    prev = {plan.add_collective(std::move(a2a), lbl(OpCategory::kEpDispatch), cur)};
    lane_slots += 4;
  }
  Executor ex(sim, net, std::move(plan));
  std::map<std::pair<OpId, GpuId>, int> began;
  std::map<std::pair<OpId, GpuId>, int> ended;
  std::size_t starts = 0;
  std::size_t finishes = 0;
  Time last{};
  bool ordered = true;
  ex.op_began.connect([&](const OpEvent& e) {
    ++began[{e.op, e.gpu}];
    ordered = ordered && e.time >= last;
    last = e.time;
  });
  ex.op_ended.connect([&](const OpEvent& e) {
    ++ended[{e.op, e.gpu}];
    ordered = ordered && e.time >= last;
    last = e.time;
    CHECK(e.plan->label(e.op).category == e.category);
  });
  ex.plan_started.connect([&](const Time&) { ++starts; });
  ex.plan_finished.connect([&](const Time&) { ++finishes; });
  ex.run();
  CHECK(began.size() == lane_slots);
  CHECK(ended.size() == lane_slots);
  for (const auto& [k, n] : began) CHECK(n == 1);
  for (const auto& [k, n] : ended) CHECK(n == 1);
  CHECK(ordered);
  CHECK(starts == 1);
  CHECK(finishes == 1);
  // Each layer: slowest GPU (4 us) then a 3 us all-to-all: 3 x 7 us.
  CHECK(ex.makespan() == 21_us);
}

TEST_CASE("start at a later time, on_finished callback, empty plan", "[executor]") {
  Simulator sim;
  FixedCostBackend net(sim, 0_us);
  sim.schedule_at(Time::at(100_us), [] {});
  sim.run();
  Plan plan(1);
  plan.add_compute(0, 5_us, lbl(OpCategory::kNorm));
  Executor ex(sim, net, std::move(plan));
  bool called = false;
  ex.start([&] { called = true; });
  sim.run();
  CHECK(called);
  CHECK(ex.start_time() == Time::at(100_us));
  CHECK(ex.finish_time() == Time::at(105_us));

  Executor empty(sim, net, Plan(2));
  bool empty_called = false;
  empty.start([&] { empty_called = true; });
  CHECK(empty_called);
  CHECK(empty.finished());
  CHECK(empty.makespan() == 0_us);
}

TEST_CASE("a collective that never completes is reported as a deadlock naming the stuck ops", "[executor]") {
  Simulator sim;
  BlackHoleBackend net;
  Plan plan(2);
  const OpId a = plan.add_compute(0, 1_us, lbl(OpCategory::kAttention));
  plan.add_collective(all_reduce({0, 1}, Bytes(8), "lost"), OpLabel{OpCategory::kTpAllReduce, 0, 7, 2}, {a});
  plan.add_compute(1, 1_us, OpLabel{OpCategory::kExpert, 0, 7, 2}, {1});
  Executor ex(sim, net, std::move(plan));
  try {
    ex.run();
    FAIL("expected a PlanError");
  } catch (const PlanError& e) {
    const std::string what = e.what();
    CHECK(what.find("deadlock") != std::string::npos);
    CHECK(what.find("1 of 3 ops") == std::string::npos);  // 2 ops left: the collective and its dependent
    CHECK(what.find("2 of 3 ops") != std::string::npos);
    CHECK(what.find("never reported completion") != std::string::npos);
    CHECK(what.find("expert stage 0 layer 7 micro-batch 2") != std::string::npos);
  }
  CHECK_FALSE(ex.finished());
}

TEST_CASE("malformed plans are rejected as builder bugs", "[executor]") {
  Plan plan(2);
  const OpId a = plan.add_compute(0, 1_us, lbl(OpCategory::kAttention));
  CHECK_THROWS_AS(plan.add_compute(0, 1_us, lbl(OpCategory::kAttention), {a + 1}), PlanError);  // future op
  CHECK_THROWS_AS(plan.add_compute(2, 1_us, lbl(OpCategory::kAttention)), PlanError);             // no GPU 2
  CHECK_THROWS_AS(plan.add_compute(0, Duration::ps(-1), lbl(OpCategory::kAttention)), PlanError);
  CHECK_THROWS_AS(plan.add_collective(all_reduce({0, 0}, Bytes(1), "dup"), lbl(OpCategory::kTpAllReduce)), PlanError);
  CHECK_THROWS_AS(plan.add_collective(all_reduce({}, Bytes(1), "empty"), lbl(OpCategory::kTpAllReduce)), PlanError);
  CollectiveRequest v;
  v.op = CollectiveOp::kAllToAllV;
  v.group = {0, 1};
  v.matrix = {Bytes(1), Bytes(2), Bytes(3)};  // needs 4
  CHECK_THROWS_AS(plan.add_collective(std::move(v), lbl(OpCategory::kEpDispatch)), PlanError);
  CHECK_THROWS_AS(plan.add_send_recv(1, 1, Bytes(1), lbl(OpCategory::kPpTransfer), {}), PlanError);
  CHECK_THROWS_AS(Plan(0), PlanError);
  CHECK(plan.size() == 1);  // rejected ops were not added
}

TEST_CASE("GPipe on the executor: makespan (m+p-1) t with free transfers", "[executor]") {
  // p single-GPU stages, m micro-batches of t each, zero-time transfers:
  // the last micro-batch leaves the last stage at (m + p - 1) t.
  for (const auto& [p, m] : std::vector<std::pair<int, int>>{{2, 1}, {4, 4}, {4, 8}, {8, 16}}) {
    Simulator sim;
    FixedCostBackend net(sim, 0_us, Bandwidth::gbytes_per_second(1e12));
    Plan plan(p);
    for (int mb = 0; mb < m; ++mb) {
      OpId prev = -1;
      for (int s = 0; s < p; ++s) {
        std::vector<OpId> deps;
        if (prev >= 0) deps.push_back(plan.add_send_recv(s - 1, s, Bytes(0), lbl(OpCategory::kPpTransfer, mb), std::vector<OpId>{prev}));
        prev = plan.add_compute(s, 10_us, lbl(OpCategory::kExpert, mb), deps);
      }
    }
    Executor ex(sim, net, std::move(plan));
    ex.run();
    CHECK(ex.makespan() == 10_us * (m + p - 1));
  }
}

TEST_CASE("no-deadlock guarantee: ops created in any order consistent with ids always finish", "[executor]") {
  // Collectives over overlapping groups posted in creation order can always
  // run: the lowest-id unfinished op never waits on anything unfinished.
  Simulator sim;
  FixedCostBackend net(sim, 1_us);
  Plan plan(3);
  plan.add_collective(all_reduce({0, 1}, Bytes(0), "A"), lbl(OpCategory::kTpAllReduce));
  plan.add_collective(all_reduce({1, 2}, Bytes(0), "B"), lbl(OpCategory::kTpAllReduce));
  plan.add_collective(all_reduce({2, 0}, Bytes(0), "C"), lbl(OpCategory::kTpAllReduce));
  Executor ex(sim, net, std::move(plan));
  ex.run();
  // A [0,1); B needs GPU 1 free: [1,2); C needs GPU 2 free: [2,3).
  CHECK(ex.makespan() == 3_us);
  CHECK(net.started == std::vector<std::string>{"A", "B", "C"});
}
