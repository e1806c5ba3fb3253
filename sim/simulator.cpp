#include "sim/simulator.hpp"

#include <utility>

namespace moesim {

Simulator::Simulator() {
  heap_.reserve(1024);
  heap_.resize(kHeapPad);
  slots_.reserve(1024);
}

std::uint32_t Simulator::acquire_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  if (slots_.size() > kSlotMask) {
    throw SimulationError("more than " + std::to_string(kSlotMask) + " events pending at once");
  }
  slots_.emplace_back();
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

EventHandle Simulator::schedule_at(Time t, EventHandler handler) {
  if (t < now_) {
    throw SimulationError("event scheduled in the past: at " + std::to_string(t.count_ps()) +
                          " ps while now is " + std::to_string(now_.count_ps()) + " ps");
  }
  if (next_seq_ > kMaxSequence) throw SimulationError("event sequence numbers exhausted");
  const std::uint64_t seq = next_seq_++;
  const std::uint32_t slot = acquire_slot();
  slots_[slot].handler = std::move(handler);
  slots_[slot].seq = seq;
  heap_push(make_entry(t.count_ps(), (seq << kSlotBits) | slot));
  ++pending_;
  return EventHandle(slot, seq);
}

EventHandle Simulator::schedule_in(Duration delay, EventHandler handler) {
  if (delay < Duration::zero()) {
    throw SimulationError("negative delay of " + std::to_string(delay.count_ps()) + " ps");
  }
  return schedule_at(now_ + delay, std::move(handler));
}

bool Simulator::is_pending(const EventHandle& handle) const {
  return handle.valid() && handle.slot_ < slots_.size() && slots_[handle.slot_].seq == handle.seq_;
}

bool Simulator::cancel(const EventHandle& handle) {
  if (!is_pending(handle)) return false;
  Slot& s = slots_[handle.slot_];
  s.handler.reset();
  s.seq = 0;
  free_slots_.push_back(handle.slot_);
  --pending_;
  // The heap entry stays and is skipped when popped: its sequence number no
  // longer matches the slot's (lazy deletion keeps cancel O(1)).
  return true;
}

// The heap is implicit and 4-ary: the children of entry i are 4i+1 .. 4i+4.
// The array starts with kHeapPad unused entries, so that every group of four
// siblings occupies exactly one 64-byte cache line (entries are 16 bytes and
// the array is 64-byte aligned). A 4-ary heap is half as deep as a binary one,
// and at a million pending events each level is a likely cache miss (Larkin,
// Sen & Tarjan 2014, "A back-to-basics empirical study of priority queues",
// found the implicit 4-ary heap the fastest of the heaps they measured).
void Simulator::heap_push(Entry e) {
  heap_.push_back(e);
  Entry* h = heap_.data() + kHeapPad;
  std::size_t i = heap_.size() - kHeapPad - 1;
  while (i > 0) {
    const std::size_t parent = (i - 1) / kArity;
    if (!before(e, h[parent])) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

// Removal of the minimum with Floyd's "bottom-up" sift: the hole left by the
// root is walked down to a leaf along the smallest child, and the last
// element is then sifted up from there. In a hold-model queue the last
// element belongs near the bottom, so the sift-up almost always stops at once,
// saving the comparison against the moving element at every level. While a
// level's four children are compared, the four cache lines of their children
// are prefetched, so the next level's miss overlaps this level's work.
Simulator::Entry Simulator::heap_pop() {
  Entry* h = heap_.data() + kHeapPad;
  const Entry top = h[0];
  const Entry last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size() - kHeapPad;
  if (n == 0) return top;
  std::size_t hole = 0;
  for (;;) {
    const std::size_t first = kArity * hole + 1;
    if (first >= n) break;
    std::size_t pick = first;
    if (first + kArity <= n) {
      const std::size_t grandchildren = kArity * first + 1;
      if (grandchildren < n) {
        for (std::size_t g = 0; g < kArity; ++g) __builtin_prefetch(h + grandchildren + kArity * g);
      }
      for (std::size_t c = first + 1; c < first + kArity; ++c) pick = before(h[c], h[pick]) ? c : pick;
    } else {
      for (std::size_t c = first + 1; c < n; ++c) pick = before(h[c], h[pick]) ? c : pick;
    }
    h[hole] = h[pick];
    hole = pick;
  }
  while (hole > 0) {
    const std::size_t parent = (hole - 1) / kArity;
    if (!before(last, h[parent])) break;
    h[hole] = h[parent];
    hole = parent;
  }
  h[hole] = last;
  return top;
}

bool Simulator::run_one() {
  const Entry e = heap_pop();
  const auto slot = static_cast<std::uint32_t>(entry_key(e) & kSlotMask);
  const std::uint64_t seq = entry_key(e) >> kSlotBits;
  Slot& s = slots_[slot];
  if (s.seq != seq) return false;  // cancelled
  EventHandler handler = std::move(s.handler);
  s.seq = 0;
  free_slots_.push_back(slot);
  --pending_;
  now_ = Time::at(Duration::ps(entry_time(e)));
  ++executed_;
  // The next event's handler storage is a likely cache miss at a million
  // pending events: start fetching it while this handler runs.
  if (heap_.size() > kHeapPad) __builtin_prefetch(&slots_[entry_key(heap_[kHeapPad]) & kSlotMask]);
  handler();
  event_executed.emit(now_);
  return true;
}

std::uint64_t Simulator::run() {
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (heap_.size() > kHeapPad && !stop_requested_) run_one();
  return executed_ - start;
}

std::uint64_t Simulator::run_until(Time until) {
  if (until < now_) {
    throw SimulationError("run_until(" + std::to_string(until.count_ps()) + " ps) is before now (" +
                          std::to_string(now_.count_ps()) + " ps)");
  }
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (heap_.size() > kHeapPad && !stop_requested_ && entry_time(heap_[kHeapPad]) <= until.count_ps()) run_one();
  if (!stop_requested_) now_ = until;
  return executed_ - start;
}

}  // namespace moesim
