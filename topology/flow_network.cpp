#include "topology/flow_network.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace moesim {
namespace {

constexpr double kSecondsPerPs = 1e-12;

// Min-heaps through std::push_heap/pop_heap (which build max-heaps): the
// comparator says "a comes after b".
struct DrainAfter {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.finish > b.finish || (a.finish == b.finish && a.slot > b.slot);
  }
};
struct ShareAfter {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.share > b.share || (a.share == b.share && a.link > b.link);
  }
};

inline std::size_t us(std::int32_t v) { return static_cast<std::size_t>(v); }

// A fair share equal to the water level in exact arithmetic comes out a few
// ulps above or below it after the subtractions. Shares within a relative
// 1e-12 of the level are taken as the level itself, and never below it, so
// ties (a flow at the same rate on several links) stay exact: flows that end
// together drain together, and the bottleneck tests of local_resolve() work.
// The allocation is max-min fair to 1e-12 relative.
constexpr double kTieTolerance = 1e-12;
inline double snap_to_level(double level, double share) {
  return share <= level * (1.0 + kTieTolerance) ? level : share;
}

}  // namespace

// ---------------------------------------------------------------------------
// Construction, paths, slots
// ---------------------------------------------------------------------------

FlowSolver::FlowSolver(Simulator& sim, std::vector<double> capacity, Duration alpha, double drain_tolerance)
    : sim_(sim), alpha_(alpha), drain_tolerance_(drain_tolerance), cap_(std::move(capacity)) {
  if (alpha_ < Duration::zero()) throw std::invalid_argument("flow solver: alpha must be >= 0");
  if (!(drain_tolerance_ >= 0.0 && drain_tolerance_ <= 0.1)) {
    throw std::invalid_argument("flow solver: drain tolerance must be in [0, 0.1]");
  }
  for (std::size_t l = 0; l < cap_.size(); ++l) {
    if (!(cap_[l] > 0.0) || !std::isfinite(cap_[l])) {
      throw std::invalid_argument("flow solver: link " + std::to_string(l) +
                                  " needs a positive, finite capacity (bytes/s)");
    }
  }
  const std::size_t n = cap_.size();
  l_flows_.resize(n);
  l_live_.assign(n, 0);
  l_dirty_.assign(n, 0);
  l_mark_.assign(n, 0);
  l_busy_since_.assign(n, 0);
  l_busy_.assign(n, 0);
  l_bytes_.assign(n, 0);
  l_transfers_.assign(n, 0);
  l_acc_.assign(n, 0.0);
  l_cnt_.assign(n, 0);
  l_wsum_.assign(n, 0.0);
  l_coflow_bytes_.assign(n, 0);
  l_coflow_parts_.assign(n, 0);
  l_level_.assign(n, std::numeric_limits<double>::infinity());
  l_src_begin_.assign(n, 0);
  l_src_count_.assign(n, 0);
  l_fixed_.assign(n, 0.0);
  l_new_max_.assign(n, 0.0);
  l_new_sat_.assign(n, 0);
  l_round_.assign(n, 0);
}

FlowSolver::~FlowSolver() {
  // Pending events capture `this`: take them off the simulator's queue. (A
  // handle whose event already ran is ignored by cancel.)
  sim_.cancel(recompute_event_);
  sim_.cancel(drain_event_);
  for (const EventHandle& e : activation_events_) sim_.cancel(e);
  for (const DeliveryGroup& g : groups_) sim_.cancel(g.event);
}

FlowSolver::PathId FlowSolver::add_path(std::span<const LinkId> links, Duration latency) {
  if (latency < Duration::zero()) throw std::invalid_argument("flow solver: negative path latency");
  for (LinkId l : links) {
    if (l < 0 || static_cast<std::size_t>(l) >= cap_.size()) {
      throw std::invalid_argument("flow solver: path uses unknown link " + std::to_string(l));
    }
  }
  const auto id = static_cast<PathId>(path_offset_.size());
  path_offset_.push_back(static_cast<std::int32_t>(path_links_.size()));
  path_length_.push_back(static_cast<std::int32_t>(links.size()));
  path_latency_.push_back(latency.count_ps());
  path_links_.insert(path_links_.end(), links.begin(), links.end());
  return id;
}

std::span<const LinkId> FlowSolver::path_links(PathId path) const {
  const std::size_t p = us(path);
  return {path_links_.data() + path_offset_[p], us(path_length_[p])};
}

std::int32_t FlowSolver::allocate_slot() {
  if (!free_slots_.empty()) {
    const std::int32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  const auto s = static_cast<std::int32_t>(f_state_.size());
  f_state_.push_back(State::kFree);
  f_path_.push_back(0);
  f_coflow_.push_back(-1);
  f_hint_.push_back(0);
  f_work_.push_back(0.0);
  f_src_.push_back(-1);
  f_dst_.push_back(-1);
  f_bytes_.push_back(0);
  f_start_.push_back(0);
  f_last_.push_back(0);
  f_remaining_.push_back(0.0);
  f_rate_.push_back(0.0);
  f_gen_.push_back(1);
  f_version_.push_back(0);
  f_mark_.push_back(0);
  f_frozen_.push_back(0);
  f_region_pos_.push_back(0);
  f_local_frozen_.push_back(0);
  f_callback_.emplace_back();
  return s;
}

void FlowSolver::free_slot(std::int32_t slot) {
  const std::size_t s = us(slot);
  f_state_[s] = State::kFree;
  ++f_gen_[s];  // invalidates the slot's stale references in link lists
  f_callback_[s] = nullptr;
  if (f_coflow_[s] >= 0) {
    free_coflows_.push_back(f_coflow_[s]);
    f_coflow_[s] = -1;
  }
  free_slots_.push_back(slot);
}

TransferId FlowSolver::id_of(std::int32_t slot) const {
  return (static_cast<std::uint64_t>(f_gen_[us(slot)]) << 32) | static_cast<std::uint32_t>(slot);
}

TransferRecord FlowSolver::record(std::int32_t slot, std::int64_t end) const {
  const std::size_t s = us(slot);
  return TransferRecord{id_of(slot),
                        f_src_[s],
                        f_dst_[s],
                        Bytes(f_bytes_[s]),
                        Time::at(Duration::ps(f_start_[s])),
                        Time::at(Duration::ps(end)),
                        path_links(f_path_[s])};
}

FlowSolver::Hops FlowSolver::hops(std::size_t slot) const {
  if (f_coflow_[slot] >= 0) {
    const Coflow& c = coflows_[us(f_coflow_[slot])];
    return Hops{c.links.data(), c.weights.data(), c.links.size()};
  }
  const std::size_t p = us(f_path_[slot]);
  return Hops{path_links_.data() + path_offset_[p], nullptr, us(path_length_[p])};
}

void FlowSolver::emit_coflow(const Signal<TransferRecord>& signal, std::int32_t slot, std::int64_t end) const {
  const std::size_t s = us(slot);
  const Coflow& c = coflows_[us(f_coflow_[s])];
  for (std::size_t i = 0; i < c.part_path.size(); ++i) {
    signal.emit(TransferRecord{id_of(slot), c.part_src[i], c.part_dst[i], Bytes(c.part_bytes[i]),
                               Time::at(Duration::ps(f_start_[s])), Time::at(Duration::ps(end)),
                               path_links(c.part_path[i])});
  }
}

double FlowSolver::rate(TransferId id) const {
  const auto slot = static_cast<std::size_t>(id & 0xffffffffULL);
  const auto gen = static_cast<std::uint32_t>(id >> 32);
  if (slot >= f_state_.size() || f_gen_[slot] != gen || f_state_[slot] != State::kActive) return 0.0;
  return f_rate_[slot];
}

// ---------------------------------------------------------------------------
// Starting a transfer
// ---------------------------------------------------------------------------

TransferId FlowSolver::start(PathId path, Bytes bytes, UniqueFunction<void()> on_delivered, GpuId src, GpuId dst) {
  if (path < 0 || us(path) >= path_offset_.size()) throw std::invalid_argument("flow solver: unknown path id");
  if (bytes.count() < 0) throw std::invalid_argument("flow solver: negative transfer size");
  const std::int64_t now = sim_.now().count_ps();
  const std::int32_t slot = allocate_slot();
  const std::size_t s = us(slot);
  f_path_[s] = path;
  f_src_[s] = src;
  f_dst_[s] = dst;
  f_bytes_[s] = bytes.count();
  f_start_[s] = now;
  f_last_[s] = now;
  f_remaining_[s] = bytes.as_double();
  f_work_[s] = bytes.as_double();
  f_rate_[s] = 0.0;
  f_callback_[s] = std::move(on_delivered);
  ++stats_.transfers_started;
  stats_.bytes_started += bytes;
  const TransferId id = id_of(slot);
  if (started_signal_ != nullptr && started_signal_->connected()) started_signal_->emit(record(slot, now));

  enter(slot, bytes.count() > 0 && path_length_[us(path)] > 0, path_latency_[us(path)]);
  return id;
}

void FlowSolver::enter(std::int32_t slot, bool moves, std::int64_t latency) {
  const std::size_t s = us(slot);
  const std::int64_t now = sim_.now().count_ps();
  const std::int64_t alpha = alpha_.count_ps();
  if (!moves) {
    // No bandwidth phase: only the overhead and the latency.
    f_state_[s] = State::kDrained;
    schedule_delivery(slot, now + alpha + latency);
  } else if (alpha == 0) {
    f_state_[s] = State::kPending;
    pending_.push_back(slot);
    schedule_recompute();
  } else {
    f_state_[s] = State::kWaiting;
    waiting_.push_back(slot);
    const std::int64_t at = now + alpha;  // non-decreasing, since now is
    if (at != last_activation_time_) {
      last_activation_time_ = at;
      activation_events_.push_back(sim_.schedule_at(Time::at(Duration::ps(at)), [this] { on_activation(); }));
    }
  }
}

TransferId FlowSolver::start_coflow(std::span<const PathId> paths, std::span<const std::int64_t> bytes,
                                    std::span<const GpuId> src, std::span<const GpuId> dst,
                                    UniqueFunction<void()> on_delivered) {
  const std::size_t n = paths.size();
  if (bytes.size() != n || src.size() != n || dst.size() != n) {
    throw std::invalid_argument("flow solver: coflow spans of different lengths");
  }
  std::int64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (paths[i] < 0 || us(paths[i]) >= path_offset_.size()) throw std::invalid_argument("flow solver: unknown path id");
    if (bytes[i] < 0) throw std::invalid_argument("flow solver: negative transfer size");
    total += bytes[i];
  }
  const std::int64_t now = sim_.now().count_ps();
  const std::int32_t slot = allocate_slot();
  const std::size_t s = us(slot);
  std::int32_t index = 0;
  if (!free_coflows_.empty()) {
    index = free_coflows_.back();
    free_coflows_.pop_back();
  } else {
    index = static_cast<std::int32_t>(coflows_.size());
    coflows_.emplace_back();
  }
  f_coflow_[s] = index;
  Coflow& c = coflows_[us(index)];
  c.links.clear();
  c.weights.clear();
  c.link_bytes.clear();
  c.link_transfers.clear();
  c.part_path.assign(paths.begin(), paths.end());
  c.part_src.assign(src.begin(), src.end());
  c.part_dst.assign(dst.begin(), dst.end());
  c.part_bytes.assign(bytes.begin(), bytes.end());
  c.latency = 0;
  // Bytes and parts per link (the scratch arrays are zero between calls).
  std::int64_t moving = 0;
  std::int64_t moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t p = us(paths[i]);
    c.latency = std::max(c.latency, path_latency_[p]);
    if (bytes[i] == 0 || path_length_[p] == 0) continue;
    ++moving;
    moved += bytes[i];
    for (const LinkId link : path_links(paths[i])) {
      const std::size_t l = us(link);
      if (l_coflow_parts_[l] == 0) c.links.push_back(link);
      l_coflow_bytes_[l] += bytes[i];
      ++l_coflow_parts_[l];
    }
  }
  // The moving parts' mean size b; weight on link l = B_l / b.
  const double mean = moving > 0 ? static_cast<double>(moved) / static_cast<double>(moving) : 0.0;
  for (const LinkId link : c.links) {
    const std::size_t l = us(link);
    c.weights.push_back(static_cast<double>(l_coflow_bytes_[l]) / mean);
    c.link_bytes.push_back(l_coflow_bytes_[l]);
    c.link_transfers.push_back(l_coflow_parts_[l]);
    l_coflow_bytes_[l] = 0;
    l_coflow_parts_[l] = 0;
  }
  f_path_[s] = 0;
  f_src_[s] = -1;
  f_dst_[s] = -1;
  f_bytes_[s] = total;
  f_start_[s] = now;
  f_last_[s] = now;
  f_remaining_[s] = mean;
  f_work_[s] = mean;
  f_rate_[s] = 0.0;
  f_callback_[s] = std::move(on_delivered);
  stats_.transfers_started += n;
  stats_.bytes_started += Bytes(total);
  const TransferId id = id_of(slot);
  if (started_signal_ != nullptr && started_signal_->connected()) emit_coflow(*started_signal_, slot, now);
  enter(slot, moving > 0, c.latency);
  return id;
}

void FlowSolver::on_activation() {
  activation_events_.pop_front();
  const std::int64_t now = sim_.now().count_ps();
  const std::int64_t alpha = alpha_.count_ps();
  while (waiting_head_ < waiting_.size()) {
    const std::int32_t slot = waiting_[waiting_head_];
    if (f_start_[us(slot)] + alpha > now) break;
    f_state_[us(slot)] = State::kPending;
    pending_.push_back(slot);
    ++waiting_head_;
  }
  if (waiting_head_ == waiting_.size()) {
    waiting_.clear();
    waiting_head_ = 0;
  } else if (waiting_head_ >= 4096 && 2 * waiting_head_ >= waiting_.size()) {
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(waiting_head_));
    waiting_head_ = 0;
  }
  schedule_recompute();
}

void FlowSolver::schedule_recompute() {
  if (recompute_scheduled_) return;
  recompute_scheduled_ = true;
  recompute_event_ = sim_.schedule_in(Duration::zero(), [this] { recompute(); });
}

void FlowSolver::mark_dirty(LinkId link) {
  const std::size_t l = us(link);
  if (l_dirty_[l] == 0) {
    l_dirty_[l] = 1;
    dirty_links_.push_back(link);
  }
}

// ---------------------------------------------------------------------------
// The batched, incremental max-min recomputation
// ---------------------------------------------------------------------------

void FlowSolver::recompute() {
  recompute_scheduled_ = false;
  const std::int64_t now = sim_.now().count_ps();

  // 1. Flows whose overhead has elapsed enter their bandwidth phase.
  const bool additions = !pending_.empty();
  for (const std::int32_t slot : pending_) {
    const std::size_t s = us(slot);
    f_state_[s] = State::kActive;
    f_last_[s] = now;
    f_remaining_[s] = f_work_[s];
    f_rate_[s] = 0.0;
    const Hops h = hops(s);
    for (std::size_t i = 0; i < h.size; ++i) {
      const LinkId link = h.links[i];
      const std::size_t l = us(link);
      l_flows_[l].push_back(FlowRef{slot, f_gen_[s], 0.0, h.weight(i)});
      if (l_live_[l]++ == 0) l_busy_since_[l] = now;
      mark_dirty(link);
    }
    ++active_;
  }
  pending_.clear();
  stats_.peak_active_flows = std::max<std::uint64_t>(stats_.peak_active_flows, active_);
  if (!dirty_links_.empty()) solve(!additions, now);
  reschedule_drain();
}

void FlowSolver::take_entries(LinkId link, std::size_t from, std::int64_t& flows) {
  std::vector<FlowRef>& list = l_flows_[us(link)];
  const std::size_t begin = scratch_.size();
  double weights = 0.0;
  for (std::size_t r = from; r < list.size(); ++r) {
    const FlowRef ref = list[r];
    const std::size_t s = us(ref.slot);
    if (f_gen_[s] != ref.gen || f_state_[s] != State::kActive) continue;  // drained or freed
    scratch_.push_back(ref);
    weights += ref.weight;
    if (f_mark_[s] == epoch_) continue;
    f_mark_[s] = epoch_;
    ++flows;
    const Hops h = hops(s);
    for (std::size_t i = 0; i < h.size; ++i) {
      const LinkId k = h.links[i];
      if (l_mark_[us(k)] != epoch_) {
        l_mark_[us(k)] = epoch_;
        comp_links_.push_back(k);
      }
    }
  }
  list.resize(from);
  l_wsum_[us(link)] = weights;
  l_src_begin_[us(link)] = begin;
  l_src_count_[us(link)] = static_cast<std::int32_t>(scratch_.size() - begin);
}

bool FlowSolver::has_bottleneck(std::int32_t slot, bool use_round) {
  const std::size_t s = us(slot);
  const double rate = f_rate_[s];
  const Hops h = hops(s);
  const auto bottleneck = [&](std::size_t k) {
    if (use_round && l_round_[k] == round_) {
      // A link whose state this local re-solve recomputed.
      return l_new_sat_[k] != 0 && rate >= l_new_max_[k] * (1.0 - kTieTolerance);
    }
    // An unchanged saturated link on which this rate is the largest.
    return l_dirty_[k] == 0 && l_level_[k] == rate;
  };
  // The link found last time first: a coflow crosses hundreds of links and
  // its bottleneck rarely moves.
  const std::size_t hint = f_hint_[s];
  if (hint < h.size && bottleneck(us(h.links[hint]))) return true;
  for (std::size_t i = 0; i < h.size; ++i) {
    if (i != hint && bottleneck(us(h.links[i]))) {
      f_hint_[s] = static_cast<std::uint32_t>(i);
      return true;
    }
  }
  return false;
}

bool FlowSolver::local_resolve(std::int64_t now) {
  // Removals only. A feasible allocation is max-min fair iff every flow has a
  // bottleneck: a saturated link on which its rate is the largest. The links
  // that lost flows are no longer saturated, so only the flows crossing them
  // can have lost their bottleneck. Re-solve just those (the region R), with
  // every other flow's rate held fixed; then check that the flows held fixed
  // on the links whose state changed still have a bottleneck, and that each
  // flow of R is the largest on its new bottleneck; grow R by the flows that
  // fail and repeat. The fixpoint is the max-min allocation (to the 1e-12 tie
  // and 1e-9 saturation tolerances). Gives up (returns false) when R grows
  // large; the caller then re-solves by water level.
  if (++epoch_ == 0) {
    std::fill(f_mark_.begin(), f_mark_.end(), 0U);
    std::fill(f_frozen_.begin(), f_frozen_.end(), 0U);
    std::fill(l_mark_.begin(), l_mark_.end(), 0U);
    epoch_ = 1;
  }
  region_.clear();
  const auto add = [&](std::int32_t slot) {
    const std::size_t s = us(slot);
    if (f_mark_[s] == epoch_) return;
    f_mark_[s] = epoch_;
    f_region_pos_[s] = static_cast<std::int32_t>(region_.size());
    region_.push_back(slot);
  };
  const auto live = [&](const FlowRef& ref) {
    const std::size_t s = us(ref.slot);
    return f_gen_[s] == ref.gen && f_state_[s] == State::kActive;
  };
  // f_frozen_ (solve()'s marks, free here) marks the flows found to keep
  // their bottleneck, so a flow on several changed links is checked once.
  for (const LinkId link : dirty_links_) {
    for (const FlowRef ref : l_flows_[us(link)]) {
      const std::size_t s = us(ref.slot);
      if (!live(ref) || f_mark_[s] == epoch_ || f_frozen_[s] == epoch_) continue;
      if (has_bottleneck(ref.slot, false)) {
        f_frozen_[s] = epoch_;
      } else {
        add(ref.slot);
      }
    }
  }
  const std::size_t limit = std::max<std::size_t>(256, active_ / 8);
  region_links_.clear();
  for (int rounds = 0; !region_.empty(); ++rounds) {
    if (region_.size() > limit || rounds > 32) return false;
    // The links of R, the capacity the fixed flows use there, R's flows per link.
    if (++round_ == 0) {
      std::fill(l_round_.begin(), l_round_.end(), 0U);
      round_ = 1;
    }
    region_links_.clear();
    for (const std::int32_t slot : region_) {
      const Hops h = hops(us(slot));
      for (std::size_t i = 0; i < h.size; ++i) {
        const LinkId link = h.links[i];
        const std::size_t k = us(link);
        if (l_round_[k] != round_) {
          l_round_[k] = round_;
          region_links_.push_back(link);
          l_acc_[k] = 0.0;  // R's old usage of k, for now
          l_cnt_[k] = 0;
        }
        l_acc_[k] += h.weight(i) * f_rate_[us(slot)];
        ++l_cnt_[k];
      }
    }
    scratch_.clear();
    for (const LinkId link : region_links_) {
      const std::size_t k = us(link);
      double total = 0.0;  // usage of k by every live flow
      const std::vector<FlowRef>& list = l_flows_[k];
      if (l_dirty_[k] != 0) {
        for (const FlowRef ref : list) total += live(ref) ? ref.weight * f_rate_[us(ref.slot)] : 0.0;
      } else if (!list.empty()) {
        total = list.back().psum;  // no drained entries on an unchanged link
      }
      l_fixed_[k] = std::max(0.0, total - l_acc_[k]);
      l_src_begin_[k] = scratch_.size();
      l_src_count_[k] = l_cnt_[k];
      scratch_.resize(scratch_.size() + us(l_cnt_[k]));
      l_acc_[k] = 0.0;   // now: capacity allocated to R on k during the filling
      l_cnt_[k] = 0;     // now: R's flows placed on k
      l_wsum_[k] = 0.0;  // ... and their weights
    }
    for (const std::int32_t slot : region_) {
      const Hops h = hops(us(slot));
      for (std::size_t i = 0; i < h.size; ++i) {
        const std::size_t k = us(h.links[i]);
        scratch_[l_src_begin_[k] + us(l_cnt_[k]++)] = FlowRef{slot, f_gen_[us(slot)], 0.0, h.weight(i)};
        l_wsum_[k] += h.weight(i);
      }
    }
    // Progressive filling of R over the capacity the fixed flows leave.
    share_heap_.clear();
    for (const LinkId link : region_links_) {
      const std::size_t k = us(link);
      share_heap_.push_back(ShareEntry{(cap_[k] - l_fixed_[k]) / l_wsum_[k], link});
    }
    std::make_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
    region_rate_.assign(region_.size(), -1.0);
    if (++round_frozen_ == 0) {
      std::fill(f_local_frozen_.begin(), f_local_frozen_.end(), 0U);
      round_frozen_ = 1;
    }
    double level = 0.0;
    while (!share_heap_.empty()) {
      const ShareEntry top = share_heap_.front();
      const std::size_t k = us(top.link);
      std::pop_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
      share_heap_.pop_back();
      if (l_cnt_[k] <= 0) continue;
      const double current = snap_to_level(level, (cap_[k] - l_fixed_[k] - l_acc_[k]) / l_wsum_[k]);
      if (current > top.share) {
        share_heap_.push_back(ShareEntry{current, top.link});
        std::push_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
        continue;
      }
      level = current;
      for (std::size_t e = l_src_begin_[k]; e < l_src_begin_[k] + us(l_src_count_[k]); ++e) {
        const std::size_t s = us(scratch_[e].slot);
        if (f_local_frozen_[s] == round_frozen_) continue;
        f_local_frozen_[s] = round_frozen_;
        region_rate_[us(f_region_pos_[s])] = level;
        const Hops h = hops(s);
        for (std::size_t i = 0; i < h.size; ++i) {
          const std::size_t other = us(h.links[i]);
          l_acc_[other] += h.weight(i) * level;
          --l_cnt_[other];
          l_wsum_[other] -= h.weight(i);
        }
      }
    }
    // The new state of R's links: saturated? largest rate on it?
    for (const LinkId link : region_links_) {
      const std::size_t k = us(link);
      double largest = 0.0;
      for (std::size_t e = l_src_begin_[k]; e < l_src_begin_[k] + us(l_src_count_[k]); ++e) {
        largest = std::max(largest, region_rate_[us(f_region_pos_[us(scratch_[e].slot)])]);
      }
      const std::vector<FlowRef>& list = l_flows_[k];  // largest fixed rate: scan from the top
      for (std::size_t r = list.size(); r > 0; --r) {
        const FlowRef ref = list[r - 1];
        if (!live(ref) || f_mark_[us(ref.slot)] == epoch_) continue;
        largest = std::max(largest, f_rate_[us(ref.slot)]);
        break;
      }
      l_new_max_[k] = largest;
      l_new_sat_[k] = (l_fixed_[k] + l_acc_[k] >= cap_[k] * (1.0 - 1e-9)) ? 1 : 0;
    }
    // Check: every flow of R the largest on a saturated link of its path; the
    // fixed flows that were the largest on a link whose state changed still
    // bottlenecked somewhere. Those that fail join R.
    const std::size_t before = region_.size();
    for (std::size_t i = 0; i < before; ++i) {
      const std::int32_t slot = region_[i];
      const double rate = region_rate_[i];
      if (!(rate > 0.0)) return false;
      bool ok = false;
      for (const LinkId link : links_of(us(slot))) {
        const std::size_t k = us(link);
        if (l_new_sat_[k] != 0 && rate >= l_new_max_[k] * (1.0 - kTieTolerance)) {
          ok = true;
          break;
        }
      }
      if (ok) continue;
      // Fixed flows faster than it on its saturated links must give way.
      for (const LinkId link : links_of(us(slot))) {
        const std::size_t k = us(link);
        if (l_new_sat_[k] == 0) continue;
        const std::vector<FlowRef>& list = l_flows_[k];
        for (std::size_t r = list.size(); r > 0; --r) {
          const FlowRef ref = list[r - 1];
          if (!live(ref) || f_mark_[us(ref.slot)] == epoch_) continue;
          if (f_rate_[us(ref.slot)] <= rate * (1.0 + kTieTolerance)) break;
          add(ref.slot);
        }
      }
    }
    for (const LinkId link : region_links_) {
      const std::size_t k = us(link);
      const double old_level = l_dirty_[k] != 0 ? std::numeric_limits<double>::infinity() : l_level_[k];
      if (!std::isfinite(old_level)) continue;  // was not saturated: bottleneck of no one
      if (l_new_sat_[k] != 0 && l_new_max_[k] == old_level) continue;  // unchanged for the fixed flows
      const std::vector<FlowRef>& list = l_flows_[k];
      for (std::size_t r = list.size(); r > 0; --r) {
        const FlowRef ref = list[r - 1];
        if (!live(ref) || f_mark_[us(ref.slot)] == epoch_) continue;
        if (f_rate_[us(ref.slot)] < old_level) break;  // lists are in non-decreasing rate order
        if (!has_bottleneck(ref.slot, true)) add(ref.slot);
      }
    }
    if (region_.size() == before) break;
  }

  // Commit: new rates, then every changed list re-sorted by rate with its
  // running sums, and the links' water levels.
  for (std::size_t i = 0; i < region_.size(); ++i) set_rate(region_[i], region_rate_[i], now);
  const auto tidy = [&](LinkId link, bool recomputed) {
    const std::size_t k = us(link);
    std::vector<FlowRef>& list = l_flows_[k];
    std::size_t kept = 0;
    for (std::size_t r = 0; r < list.size(); ++r) {
      if (live(list[r])) list[kept++] = list[r];
    }
    list.resize(kept);
    if (recomputed) {
      std::sort(list.begin(), list.end(), [&](const FlowRef& a, const FlowRef& b) {
        const double ra = f_rate_[us(a.slot)];
        const double rb = f_rate_[us(b.slot)];
        return ra < rb || (ra == rb && a.slot < b.slot);
      });
    }
    double sum = 0.0;
    for (FlowRef& ref : list) {
      sum += ref.weight * f_rate_[us(ref.slot)];
      ref.psum = sum;
    }
    if (recomputed) {
      l_level_[k] = l_new_sat_[k] != 0 && !list.empty() ? f_rate_[us(list.back().slot)]
                                                        : std::numeric_limits<double>::infinity();
    }
  };
  for (const LinkId link : region_links_) tidy(link, true);
  for (const LinkId link : dirty_links_) {
    const std::size_t k = us(link);
    if (region_.empty() || l_round_[k] != round_) {
      tidy(link, false);
      l_level_[k] = std::numeric_limits<double>::infinity();  // lost rate: no longer saturated
    }
    l_dirty_[k] = 0;
  }
  dirty_links_.clear();
  ++stats_.rate_recomputations;
  if (region_.empty()) ++stats_.unchanged_recomputations;
  stats_.flows_resolved += region_.size();
  stats_.links_resolved += region_links_.size();
  return true;
}

void FlowSolver::solve(bool partial, std::int64_t now) {
  if (++epoch_ == 0) {
    std::fill(f_mark_.begin(), f_mark_.end(), 0U);
    std::fill(f_frozen_.begin(), f_frozen_.end(), 0U);
    std::fill(l_mark_.begin(), l_mark_.end(), 0U);
    epoch_ = 1;
  }
  // The starting water level: 0 for a full solve of the component; for
  // removals only, the lowest level at which a changed link froze flows.
  double start = 0.0;
  if (partial) {
    start = std::numeric_limits<double>::infinity();
    for (const LinkId link : dirty_links_) start = std::min(start, l_level_[us(link)]);
    if (local_resolve(now)) return;
    if (++epoch_ == 0) {  // local_resolve used the marks
      std::fill(f_mark_.begin(), f_mark_.end(), 0U);
      std::fill(f_frozen_.begin(), f_frozen_.end(), 0U);
      std::fill(l_mark_.begin(), l_mark_.end(), 0U);
      epoch_ = 1;
    }
  }
  comp_links_.clear();
  for (const LinkId link : dirty_links_) {
    const std::size_t l = us(link);
    l_dirty_[l] = 0;
    if (l_mark_[l] != epoch_) {
      l_mark_[l] = epoch_;
      comp_links_.push_back(link);
    }
  }
  dirty_links_.clear();

  // 2. Collect the flows to re-solve, link by link (comp_links_ grows as the
  //    search reaches new links). Full: every flow of the component. Partial:
  //    on each link, the suffix of its list at or above `start`, plus the
  //    drained entries inside it (dropped).
  scratch_.clear();
  std::int64_t flows = 0;
  for (std::size_t i = 0; i < comp_links_.size(); ++i) {
    const LinkId link = comp_links_[i];
    const std::size_t l = us(link);
    std::size_t from = 0;
    if (partial) {
      const std::vector<FlowRef>& list = l_flows_[l];
      from = list.size();
      while (from > 0) {
        const FlowRef ref = list[from - 1];
        const std::size_t s = us(ref.slot);
        const bool live = f_gen_[s] == ref.gen && f_state_[s] == State::kActive;
        if (live && f_rate_[s] < start) break;
        --from;
      }
    }
    l_acc_[l] = from > 0 ? l_flows_[l][from - 1].psum : 0.0;  // capacity used by the flows kept
    take_entries(link, from, flows);
    l_cnt_[l] = l_src_count_[l];
    l_level_[l] = std::numeric_limits<double>::infinity();
  }
  ++stats_.rate_recomputations;
  stats_.flows_resolved += static_cast<std::uint64_t>(flows);
  stats_.links_resolved += comp_links_.size();

  // 3. Progressive filling from `start`. A link's fair share only grows as
  //    flows elsewhere freeze, so the heap keeps possibly-outdated (lower)
  //    keys and refreshes a key when it surfaces.
  share_heap_.clear();
  for (const LinkId link : comp_links_) {
    const std::size_t l = us(link);
    if (l_cnt_[l] > 0) {
      share_heap_.push_back(ShareEntry{snap_to_level(start, (cap_[l] - l_acc_[l]) / l_wsum_[l]), link});
    }
  }
  std::make_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
  double level = start;
  while (!share_heap_.empty()) {
    const ShareEntry top = share_heap_.front();
    const std::size_t l = us(top.link);
    std::pop_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
    share_heap_.pop_back();
    if (l_cnt_[l] <= 0) continue;
    const double current = snap_to_level(level, (cap_[l] - l_acc_[l]) / l_wsum_[l]);
    if (current > top.share) {
      share_heap_.push_back(ShareEntry{current, top.link});
      std::push_heap(share_heap_.begin(), share_heap_.end(), ShareAfter{});
      continue;
    }
    level = current;
    l_level_[l] = level;
    const std::size_t begin = l_src_begin_[l];
    const std::size_t end = begin + us(l_src_count_[l]);
    for (std::size_t e = begin; e < end; ++e) {
      const FlowRef ref = scratch_[e];
      const std::size_t s = us(ref.slot);
      if (f_frozen_[s] == epoch_) continue;
      f_frozen_[s] = epoch_;
      set_rate(ref.slot, level, now);
      // Append to each of its links' lists, in freeze order, with the running sum.
      const Hops h = hops(s);
      for (std::size_t i = 0; i < h.size; ++i) {
        const std::size_t kk = us(h.links[i]);
        const double w = h.weight(i);
        l_acc_[kk] += w * level;
        --l_cnt_[kk];
        l_wsum_[kk] -= w;
        l_flows_[kk].push_back(FlowRef{ref.slot, ref.gen, l_acc_[kk], w});
      }
    }
  }
}

void FlowSolver::set_rate(std::int32_t slot, double rate, std::int64_t now) {
  const std::size_t s = us(slot);
  if (f_rate_[s] == rate) return;  // unchanged: its drain entry stays valid
  if (f_rate_[s] > 0.0) {
    f_remaining_[s] -= f_rate_[s] * static_cast<double>(now - f_last_[s]) * kSecondsPerPs;
    if (f_remaining_[s] < 0.0) f_remaining_[s] = 0.0;
  }
  f_last_[s] = now;
  f_rate_[s] = rate;
  ++f_version_[s];
  const std::int64_t finish =
      now + transfer_duration(f_remaining_[s], Bandwidth::bytes_per_second(rate)).count_ps();
  drain_heap_.push_back(DrainEntry{finish, slot, f_version_[s]});
  std::push_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
}

// ---------------------------------------------------------------------------
// Draining and delivery
// ---------------------------------------------------------------------------

bool FlowSolver::drain_entry_valid(const DrainEntry& e) const {
  const std::size_t s = us(e.slot);
  return f_state_[s] == State::kActive && f_version_[s] == e.version;
}

void FlowSolver::compact_drain_heap() {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < drain_heap_.size(); ++i) {
    if (drain_entry_valid(drain_heap_[i])) drain_heap_[kept++] = drain_heap_[i];
  }
  drain_heap_.resize(kept);
  std::make_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
}

void FlowSolver::reschedule_drain() {
  if (drain_heap_.size() > 2 * active_ + 1024) compact_drain_heap();
  while (!drain_heap_.empty() && !drain_entry_valid(drain_heap_.front())) {
    std::pop_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
    drain_heap_.pop_back();
  }
  if (drain_heap_.empty()) {
    sim_.cancel(drain_event_);
    drain_at_ = -1;
    return;
  }
  const std::int64_t at = std::max(drain_heap_.front().finish, sim_.now().count_ps());
  if (at == drain_at_ && sim_.is_pending(drain_event_)) return;
  sim_.cancel(drain_event_);
  drain_event_ = sim_.schedule_at(Time::at(Duration::ps(at)), [this] { on_drain(); });
  drain_at_ = at;
}

void FlowSolver::on_drain() {
  drain_at_ = -1;
  const std::int64_t now = sim_.now().count_ps();
  // Flows due within drain_tolerance_ of their own duration (since they were
  // started) are drained now too; `window` bounds how far the heap is searched
  // for them.
  const double tol = drain_tolerance_;
  const auto window = static_cast<std::int64_t>(2.0 + tol / (1.0 - tol) * static_cast<double>(now + 1));
  const auto due_now = [&](const DrainEntry& e) {
    return static_cast<double>(e.finish - now) <= 1.0 + tol * static_cast<double>(e.finish - f_start_[us(e.slot)]);
  };
  deferred_.clear();
  std::size_t popped = 0;
  bool bulk = false;
  while (!drain_heap_.empty()) {
    const DrainEntry top = drain_heap_.front();
    if (drain_entry_valid(top) && top.finish > now + window) break;
    if (popped >= 256 && popped * 16 >= drain_heap_.size()) {
      bulk = true;  // many flows end now: one linear pass beats popping each
      break;
    }
    std::pop_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
    drain_heap_.pop_back();
    ++popped;
    if (!drain_entry_valid(top)) continue;
    if (due_now(top)) {
      drain_flow(top.slot, now);
    } else {
      deferred_.push_back(top);
    }
  }
  if (bulk) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < drain_heap_.size(); ++i) {
      const DrainEntry e = drain_heap_[i];
      if (!drain_entry_valid(e)) continue;
      if (e.finish <= now + window && due_now(e)) {
        drain_flow(e.slot, now);
      } else {
        drain_heap_[kept++] = e;
      }
    }
    drain_heap_.resize(kept);
    std::make_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
  }
  for (const DrainEntry& e : deferred_) {
    drain_heap_.push_back(e);
    std::push_heap(drain_heap_.begin(), drain_heap_.end(), DrainAfter{});
  }
  schedule_recompute();
}

void FlowSolver::drain_flow(std::int32_t slot, std::int64_t now) {
  const std::size_t s = us(slot);
  // Numerical self-check: the fluid integral should have moved every byte, up
  // to the rounding of the drain time to the picosecond (one ps at the rate).
  const double residual = f_remaining_[s] - f_rate_[s] * static_cast<double>(now - f_last_[s]) * kSecondsPerPs;
  const double beyond_rounding = std::max(0.0, std::abs(residual) - f_rate_[s] * kSecondsPerPs);
  stats_.max_residual_fraction =
      std::max(stats_.max_residual_fraction, beyond_rounding / f_work_[s]);
  f_state_[s] = State::kDrained;
  --active_;
  const Coflow* coflow = f_coflow_[s] >= 0 ? &coflows_[us(f_coflow_[s])] : nullptr;
  const Hops h = hops(s);
  for (std::size_t i = 0; i < h.size; ++i) {
    const std::size_t l = us(h.links[i]);
    l_bytes_[l] += coflow != nullptr ? coflow->link_bytes[i] : f_bytes_[s];
    l_transfers_[l] += coflow != nullptr ? coflow->link_transfers[i] : 1U;
    if (--l_live_[l] == 0) l_busy_[l] += now - l_busy_since_[l];
    mark_dirty(h.links[i]);
  }
  schedule_delivery(slot, now + (coflow != nullptr ? coflow->latency : path_latency_[us(f_path_[s])]));
}

void FlowSolver::schedule_delivery(std::int32_t slot, std::int64_t time) {
  const std::int64_t now = sim_.now().count_ps();
  if (open_groups_time_ != now) {
    open_groups_.clear();
    open_groups_time_ = now;
  }
  // Groups created at this instant and not yet delivered take more members.
  const std::size_t scan = std::min<std::size_t>(open_groups_.size(), 64);
  for (std::size_t i = 0; i < scan; ++i) {
    DeliveryGroup& g = groups_[open_groups_[i]];
    if (g.open && g.time == time) {
      g.slots.push_back(slot);
      return;
    }
  }
  std::size_t index = 0;
  if (!free_groups_.empty()) {
    index = free_groups_.back();
    free_groups_.pop_back();
  } else {
    index = groups_.size();
    groups_.emplace_back();
  }
  DeliveryGroup& g = groups_[index];
  g.time = time;
  g.open = true;
  g.slots.clear();
  g.slots.push_back(slot);
  g.event = sim_.schedule_at(Time::at(Duration::ps(time)), [this, index] { on_delivery(index); });
  open_groups_.push_back(index);
}

void FlowSolver::on_delivery(std::size_t group) {
  // Take the members out first: callbacks may start transfers that create or
  // reuse groups.
  std::vector<std::int32_t> slots;
  slots.swap(groups_[group].slots);
  groups_[group].open = false;
  free_groups_.push_back(group);
  const std::int64_t now = sim_.now().count_ps();
  for (const std::int32_t slot : slots) {
    const std::size_t s = us(slot);
    const bool coflow = f_coflow_[s] >= 0;
    stats_.transfers_delivered += coflow ? coflows_[us(f_coflow_[s])].part_path.size() : 1U;
    stats_.bytes_delivered += Bytes(f_bytes_[s]);
    if (delivered_signal_ != nullptr && delivered_signal_->connected()) {
      if (coflow) {
        emit_coflow(*delivered_signal_, slot, now);
      } else {
        delivered_signal_->emit(record(slot, now));
      }
    }
    UniqueFunction<void()> callback = std::move(f_callback_[s]);
    free_slot(slot);
    if (callback) callback();
  }
  // Hand the capacity back for reuse when the group is still free.
  if (groups_[group].slots.capacity() < slots.capacity() && !groups_[group].open) {
    slots.clear();
    groups_[group].slots.swap(slots);
  }
}

std::vector<LinkUsage> FlowSolver::link_usage() const {
  const std::int64_t now = sim_.now().count_ps();
  std::vector<LinkUsage> out(cap_.size());
  for (std::size_t l = 0; l < cap_.size(); ++l) {
    std::int64_t busy = l_busy_[l];
    if (l_live_[l] > 0) busy += now - l_busy_since_[l];
    out[l] = LinkUsage{static_cast<LinkId>(l), Bytes(l_bytes_[l]), Duration::ps(busy), l_transfers_[l]};
  }
  return out;
}

// ---------------------------------------------------------------------------
// FlowNetwork
// ---------------------------------------------------------------------------

FlowNetwork::FlowNetwork(Simulator& sim, const Topology& topology, NetworkParams params)
    : NetworkModel(sim, topology, std::move(params)),
      solver_(sim, capacities(), params_.alpha, params_.drain_tolerance) {
  solver_.set_signals(&transfer_started, &transfer_delivered);
}

FlowNetwork::~FlowNetwork() = default;

void FlowNetwork::on_new_path(std::int32_t index) {
  const FlowSolver::PathId id = solver_.add_path(path_links(index), path(index).latency);
  if (id != index) throw std::logic_error("flow network: path tables out of step");
}

TransferId FlowNetwork::start_transfer(GpuId src, GpuId dst, Bytes bytes, UniqueFunction<void()> on_delivered) {
  check_transfer(src, dst, bytes);
  return solver_.start(path_index(src, dst), bytes, std::move(on_delivered), src, dst);
}

void FlowNetwork::start_group(std::span<const GpuId> src, std::span<const GpuId> dst,
                              std::span<const std::int64_t> bytes, UniqueFunction<void()> on_all_delivered) {
  if (params_.alltoall_sharing == AllToAllSharing::kPerTransfer || src.empty()) {
    NetworkModel::start_group(src, dst, bytes, std::move(on_all_delivered));
    return;
  }
  check_group(src, dst, bytes);
  group_paths_.resize(src.size());
  for (std::size_t i = 0; i < src.size(); ++i) group_paths_[i] = path_index(src[i], dst[i]);
  solver_.start_coflow(group_paths_, bytes, src, dst, std::move(on_all_delivered));
}

}  // namespace moesim
