#pragma once
// The flow-level network model: max-min fair sharing of every directed link.
//
// FlowSolver is the engine, on plain arrays (link capacities and paths of link
// ids), so it can be tested without a Topology; FlowNetwork feeds it the
// routes of a Topology. Timing conventions: topology/network.hpp.
//
// How the rates are kept (performance matters: a 1,024-GPU all-to-all is about
// a million concurrent transfers):
//  - Flows live in reusable slots, struct of arrays; each link keeps the list
//    of the flows crossing it. Nothing is allocated per flow in steady state.
//  - Any change (a flow enters its bandwidth phase, a flow drains) marks the
//    links it crosses dirty and schedules ONE zero-delay recomputation event;
//    every change of the same instant is folded into it.
//  - Rates come from progressive filling: repeatedly take the link with the
//    smallest fair share (unallocated capacity / unfrozen flows, a min-heap of
//    links), freeze its flows at that share (the water level), allocate it on
//    their other links. Shares within 1e-12 (relative) of the current water
//    level are taken as the level, so exact ties stay exact in floating point.
//  - When flows start, the recomputation re-solves the connected component of
//    the changed links (links -> flows crossing them -> their links ...).
//  - When flows only leave, less is re-solved, still exactly: let m be the
//    lowest water level at which a changed link froze flows in the last solve.
//    Every flow frozen below m keeps its rate (the filling up to level m only
//    involved unchanged links and flows), so only the flows at or above m that
//    are connected to the change through such flows are re-solved, starting
//    from level m. Each link keeps its flows in freeze order (non-decreasing
//    rate) with exact prefix sums of their rates, so those flows are a suffix
//    of each list and the capacity the others use is one lookup. In an
//    all-to-all the flows that drain first are the fastest, so each drain
//    re-solves only the few flows at least as fast.
//  - Before that, a local re-solve: a feasible allocation is max-min fair iff
//    every flow has a bottleneck (a saturated link on which its rate is the
//    largest; Bertsekas & Gallager, 6.5.2). Only the flows on the changed
//    links can have lost theirs; those (often none) are re-solved with all
//    other rates fixed, and the region grows by any flow the new rates leave
//    without a bottleneck, until none is. When a drain changes few rates it
//    costs about the flows of a few links instead of a component; when it
//    shifts much of the allocation (a skewed all-to-all), the region outgrows
//    its limit (max(256, active/8) flows) and the level re-solve takes over.
//  - A flow's remaining bytes are advanced lazily, only when its rate changes;
//    its drain time is then last_update + transfer_duration(remaining, rate)
//    (rounded up to the picosecond) and goes into a heap. ONE simulator event
//    is kept pending, at the earliest drain time.
//  - At a drain event every flow due by then is drained (bulk, when many are),
//    including flows due within a relative `drain_tolerance` (default 1e-9,
//    about 20 ps for a 20 ms flow) of their own duration, so that flows
//    which finish together in exact arithmetic but differ in the last bits of
//    float are not drained one recomputation at a time. A larger tolerance
//    (network.drain_tolerance = 1e-3, say) trades that much timing accuracy
//    for fewer recomputations when many flows of different sizes drain one
//    by one. Bytes delivered are always the bytes sent.
//  - Delivery (the callback) follows at drain + path latency, grouped into one
//    event per distinct delivery time.
//  - A coflow (start_coflow: a direct all-to-all(v), network.alltoall_sharing)
//    is one flow with a weight per link (its usage there per unit of rate);
//    a plain transfer has weight 1 everywhere. Every sum above (capacity
//    allocated, prefix sums, fair shares = free capacity / sum of weights)
//    is weighted; rates, levels and the bottleneck test are unchanged
//    (weighted max-min: Bertsekas & Gallager 6.5.2 with weights).
// Determinism: every container is a vector walked in a fixed order, ties are
// broken by link and slot index; no hashing of pointers, no wall clock.

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "sim/simulator.hpp"
#include "sim/unique_function.hpp"
#include "sim/units.hpp"
#include "topology/network.hpp"

namespace moesim {

class FlowSolver {
 public:
  using PathId = std::int32_t;

  /// `capacity[l]` = effective capacity of link l in bytes/s (> 0).
  /// `alpha` = per-message overhead before a flow enters its bandwidth phase.
  /// `drain_tolerance`: a flow due within this fraction of its own duration
  /// (since it started) is drained together with the flows draining now (see the header
  /// comment; network.drain_tolerance). Throws std::invalid_argument for a
  /// non-positive or non-finite capacity, alpha < 0, a tolerance outside [0, 0.1].
  FlowSolver(Simulator& sim, std::vector<double> capacity, Duration alpha,
             double drain_tolerance = kDefaultDrainTolerance);
  ~FlowSolver();
  FlowSolver(const FlowSolver&) = delete;
  FlowSolver& operator=(const FlowSolver&) = delete;

  /// Registers a path (the links in order, latency = sum of hop latencies).
  /// Throws std::invalid_argument for an unknown link id or a negative latency.
  PathId add_path(std::span<const LinkId> links, Duration latency);
  [[nodiscard]] std::span<const LinkId> path_links(PathId path) const;
  [[nodiscard]] std::size_t path_count() const { return path_offset_.size(); }

  /// Starts a transfer of `bytes` along `path` now (see network.hpp for its
  /// phases). `src`/`dst` are only reported to observers.
  TransferId start(PathId path, Bytes bytes, UniqueFunction<void()> on_delivered, GpuId src = -1, GpuId dst = -1);

  /// Starts a coflow now: the transfers (paths[i], bytes[i], src[i], dst[i])
  /// move as ONE entity whose parts progress in proportion to their sizes, so
  /// they all drain together; `on_delivered` runs once, when the last part
  /// has arrived (drain + the largest path latency). In the max-min sharing
  /// the coflow claims, on each link l, what its parts crossing l would claim
  /// together: its usage there is B_l / b x, where B_l = its bytes crossing l,
  /// b = the mean bytes of its moving parts and x its rate (the rate of a
  /// part of mean size); it drains after b bytes at rate x. Alone on the
  /// network it therefore takes max over links of B_l / C_l (the coflow lower
  /// bound; "MADD" in Chowdhury et al., "Efficient coflow scheduling with
  /// Varys", SIGCOMM 2014). Parts of 0 bytes or with an empty path only pay
  /// alpha and latency. Throws std::invalid_argument for mismatched spans,
  /// an unknown path or negative bytes.
  TransferId start_coflow(std::span<const PathId> paths, std::span<const std::int64_t> bytes,
                          std::span<const GpuId> src, std::span<const GpuId> dst, UniqueFunction<void()> on_delivered);

  /// Current max-min rate of a transfer in bytes/s (of a coflow: the rate of
  /// its mean-size part); 0 when it is not in its
  /// bandwidth phase (waiting out alpha, drained, delivered, unknown).
  [[nodiscard]] double rate(TransferId id) const;
  /// Transfers in their bandwidth phase now.
  [[nodiscard]] std::size_t active_flows() const { return active_; }

  [[nodiscard]] const NetworkStats& stats() const { return stats_; }
  [[nodiscard]] std::vector<LinkUsage> link_usage() const;
  [[nodiscard]] double capacity(LinkId link) const { return cap_[static_cast<std::size_t>(link)]; }

  /// Observers (may be null): emitted on start and on delivery.
  void set_signals(const Signal<TransferRecord>* started, const Signal<TransferRecord>* delivered) {
    started_signal_ = started;
    delivered_signal_ = delivered;
  }

 private:
  enum class State : std::uint8_t { kFree, kWaiting, kPending, kActive, kDrained };
  // An entry of a link's flow list. Lists are kept in the order the flows were
  // frozen by progressive filling, i.e. by non-decreasing rate; `psum` is the
  // exact running sum of the rates up to and including this entry.
  // `weight` is the flow's usage of the link per unit of rate (1 for a
  // transfer; B_l / b for a coflow, see start_coflow) and `psum` the running
  // sum of weight x rate.
  struct FlowRef {
    std::int32_t slot;
    std::uint32_t gen;
    double psum;
    double weight;
  };
  // The links a flow crosses and its weight on each (weights == nullptr: all 1).
  struct Hops {
    const LinkId* links;
    const double* weights;
    std::size_t size;
    [[nodiscard]] double weight(std::size_t i) const { return weights == nullptr ? 1.0 : weights[i]; }
  };
  // A coflow's own route and parts (start_coflow).
  struct Coflow {
    std::vector<LinkId> links;
    std::vector<double> weights;
    std::vector<std::int64_t> link_bytes;
    std::vector<std::uint32_t> link_transfers;
    std::vector<PathId> part_path;
    std::vector<GpuId> part_src;
    std::vector<GpuId> part_dst;
    std::vector<std::int64_t> part_bytes;
    std::int64_t latency = 0;  // ps, the largest of its parts'
  };
  struct DrainEntry {
    std::int64_t finish;  // ps
    std::int32_t slot;
    std::uint32_t version;
  };
  struct ShareEntry {
    double share;
    std::int32_t link;
  };
  struct DeliveryGroup {
    std::int64_t time = 0;
    std::vector<std::int32_t> slots;
    EventHandle event;
    bool open = false;
  };

  [[nodiscard]] Hops hops(std::size_t slot) const;
  [[nodiscard]] std::span<const LinkId> links_of(std::size_t slot) const {
    const Hops h = hops(slot);
    return {h.links, h.size};
  }
  void emit_coflow(const Signal<TransferRecord>& signal, std::int32_t slot, std::int64_t end) const;
  std::int32_t allocate_slot();
  /// After start(): waits out alpha, then enters the bandwidth phase (or, when
  /// nothing moves, is delivered after alpha + latency).
  void enter(std::int32_t slot, bool moves, std::int64_t latency);
  void free_slot(std::int32_t slot);
  [[nodiscard]] TransferId id_of(std::int32_t slot) const;
  void schedule_recompute();
  void on_activation();
  void recompute();
  /// Collects the flows to re-solve and fills. `partial`: only the flows at or
  /// above the lowest level of the dirty links (removals only, see .cpp).
  void solve(bool partial, std::int64_t now);
  /// Moves the valid entries of `link` from position `from` on into the
  /// solve's scratch and truncates the list there; enqueues new flows' links.
  void take_entries(LinkId link, std::size_t from, std::int64_t& flows);
  /// Removals only: re-solves just the flows that lost their bottleneck, with
  /// the others fixed, growing that region until every flow has a bottleneck
  /// (see .cpp). False when the region grows too large (then solve by level).
  bool local_resolve(std::int64_t now);
  /// Whether the flow has a bottleneck: an unchanged saturated link where its
  /// rate is the largest, or (use_round) a link the local re-solve recomputed.
  /// (Remembers where it found one, in f_hint_, to look there first next time.)
  [[nodiscard]] bool has_bottleneck(std::int32_t slot, bool use_round);
  void set_rate(std::int32_t slot, double rate, std::int64_t now);
  void reschedule_drain();
  void on_drain();
  void drain_flow(std::int32_t slot, std::int64_t now);
  void schedule_delivery(std::int32_t slot, std::int64_t time);
  void on_delivery(std::size_t group);
  void mark_dirty(LinkId link);
  [[nodiscard]] bool drain_entry_valid(const DrainEntry& e) const;
  void compact_drain_heap();
  TransferRecord record(std::int32_t slot, std::int64_t end) const;

  Simulator& sim_;
  Duration alpha_;
  double drain_tolerance_;
  const Signal<TransferRecord>* started_signal_ = nullptr;
  const Signal<TransferRecord>* delivered_signal_ = nullptr;

  // Paths.
  std::vector<std::int32_t> path_offset_;
  std::vector<std::int32_t> path_length_;
  std::vector<std::int64_t> path_latency_;
  std::vector<LinkId> path_links_;

  // Flows (slots), struct of arrays.
  std::vector<State> f_state_;
  std::vector<PathId> f_path_;
  std::vector<std::int32_t> f_coflow_;  // index into coflows_, -1: a plain transfer
  std::vector<std::uint32_t> f_hint_;   // hop index of the flow's last known bottleneck
  std::vector<double> f_work_;          // bytes to move at the flow's rate (a coflow: its mean part)
  std::vector<GpuId> f_src_;
  std::vector<GpuId> f_dst_;
  std::vector<std::int64_t> f_bytes_;
  std::vector<std::int64_t> f_start_;  // ps, when start() was called
  std::vector<std::int64_t> f_last_;   // ps, when f_remaining_ was last brought up to date
  std::vector<double> f_remaining_;    // bytes left at f_last_
  std::vector<double> f_rate_;         // bytes/s
  std::vector<std::uint32_t> f_gen_;   // bumped when the slot is freed
  std::vector<std::uint32_t> f_version_;  // bumped when the rate changes (drain heap validity)
  std::vector<std::uint32_t> f_mark_;     // component search epoch
  std::vector<std::uint32_t> f_frozen_;   // progressive filling epoch
  std::vector<std::int32_t> f_region_pos_;  // position in region_ (valid when f_mark_ == epoch_)
  std::vector<std::uint32_t> f_local_frozen_;  // local re-solve filling round
  std::vector<UniqueFunction<void()>> f_callback_;
  std::vector<std::int32_t> free_slots_;
  std::vector<Coflow> coflows_;
  std::vector<std::int32_t> free_coflows_;

  // Links.
  std::vector<double> cap_;
  std::vector<std::vector<FlowRef>> l_flows_;  // may hold stale refs (drained flows) until the next solve
  std::vector<std::int32_t> l_live_;           // flows in their bandwidth phase on the link
  std::vector<std::uint8_t> l_dirty_;
  std::vector<std::uint32_t> l_mark_;
  std::vector<std::int64_t> l_busy_since_;
  std::vector<std::int64_t> l_busy_;
  std::vector<std::int64_t> l_bytes_;
  std::vector<std::uint64_t> l_transfers_;
  // Progressive-filling scratch, per link.
  std::vector<double> l_acc_;       // rate already allocated on the link
  std::vector<std::int32_t> l_cnt_;  // flows still to freeze on the link
  std::vector<double> l_wsum_;       // ... and the sum of their weights
  std::vector<double> l_level_;      // water level at which the link froze flows (+inf: never)
  std::vector<std::size_t> l_src_begin_;  // the link's flows to re-solve: scratch_[begin, begin + count)
  std::vector<std::int32_t> l_src_count_;
  // Local re-solve scratch, per link: capacity used by the fixed flows, the
  // new largest rate, saturated or not, and the round that computed them.
  std::vector<double> l_fixed_;
  std::vector<double> l_new_max_;
  std::vector<std::uint8_t> l_new_sat_;
  std::vector<std::uint32_t> l_round_;
  std::vector<std::int64_t> l_coflow_bytes_;  // start_coflow scratch (zero between calls)
  std::vector<std::uint32_t> l_coflow_parts_;
  std::uint32_t round_ = 0;
  std::uint32_t round_frozen_ = 0;
  std::vector<std::int32_t> region_;       // flows being re-solved locally
  std::vector<double> region_rate_;        // their new rates
  std::vector<LinkId> region_links_;

  // Batching and events.
  std::vector<LinkId> dirty_links_;
  std::vector<std::int32_t> pending_;  // to enter the bandwidth phase at the next recomputation
  bool recompute_scheduled_ = false;
  EventHandle recompute_event_;
  std::vector<std::int32_t> waiting_;  // FIFO of flows waiting out alpha (non-decreasing activation time)
  std::size_t waiting_head_ = 0;
  std::int64_t last_activation_time_ = -1;
  std::deque<EventHandle> activation_events_;
  std::vector<DrainEntry> drain_heap_;
  EventHandle drain_event_;
  std::int64_t drain_at_ = -1;
  std::vector<DeliveryGroup> groups_;
  std::vector<std::size_t> free_groups_;
  std::vector<std::size_t> open_groups_;  // groups being filled at open_groups_time_
  std::int64_t open_groups_time_ = -1;

  // Scratch.
  std::vector<LinkId> comp_links_;
  std::vector<FlowRef> scratch_;
  std::vector<ShareEntry> share_heap_;
  std::vector<DrainEntry> deferred_;
  std::uint32_t epoch_ = 0;

  std::size_t active_ = 0;
  NetworkStats stats_;
};

/// The flow-level NetworkModel over a Topology.
class FlowNetwork final : public NetworkModel {
 public:
  FlowNetwork(Simulator& sim, const Topology& topology, NetworkParams params);
  ~FlowNetwork() override;

  TransferId start_transfer(GpuId src, GpuId dst, Bytes bytes, UniqueFunction<void()> on_delivered) override;
  /// A coflow (FlowSolver::start_coflow), or transfer by transfer when
  /// network.alltoall_sharing is per_transfer.
  void start_group(std::span<const GpuId> src, std::span<const GpuId> dst, std::span<const std::int64_t> bytes,
                   UniqueFunction<void()> on_all_delivered) override;
  [[nodiscard]] NetworkStats stats() const override { return solver_.stats(); }
  [[nodiscard]] std::vector<LinkUsage> link_usage() const override { return solver_.link_usage(); }
  /// Current rate of a transfer (bytes/s), see FlowSolver::rate.
  [[nodiscard]] double rate(TransferId id) const { return solver_.rate(id); }
  [[nodiscard]] const FlowSolver& solver() const { return solver_; }

 private:
  void on_new_path(std::int32_t index) override;
  FlowSolver solver_;
  std::vector<FlowSolver::PathId> group_paths_;  // start_group scratch
};

}  // namespace moesim
