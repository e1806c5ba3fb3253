#include "sim/simulator.hpp"

#include <utility>

namespace moesim {

Simulator::Simulator() {
  heap_.reserve(1024);
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
  heap_push(Entry{t.count_ps(), (seq << kSlotBits) | slot});
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

// Sift-up insertion into a binary min-heap.
void Simulator::heap_push(Entry e) {
  std::size_t i = heap_.size();
  heap_.push_back(e);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

// Removal of the minimum with Floyd's "bottom-up" sift: the hole left by the
// root is walked down to a leaf along the smaller child (one comparison per
// level instead of two), and the last element is then sifted up from there.
// In a hold-model queue the last element belongs near the bottom, so the
// sift-up almost always stops at once.
Simulator::Entry Simulator::heap_pop() {
  const Entry top = heap_.front();
  const Entry last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  if (n == 0) return top;
  std::size_t hole = 0;
  for (;;) {
    const std::size_t child = 2 * hole + 1;
    if (child >= n) break;
    const std::size_t pick = (child + 1 < n && before(heap_[child + 1], heap_[child])) ? child + 1 : child;
    heap_[hole] = heap_[pick];
    hole = pick;
  }
  while (hole > 0) {
    const std::size_t parent = (hole - 1) / 2;
    if (!before(last, heap_[parent])) break;
    heap_[hole] = heap_[parent];
    hole = parent;
  }
  heap_[hole] = last;
  return top;
}

bool Simulator::run_one() {
  const Entry e = heap_pop();
  const auto slot = static_cast<std::uint32_t>(e.key & kSlotMask);
  const std::uint64_t seq = e.key >> kSlotBits;
  Slot& s = slots_[slot];
  if (s.seq != seq) return false;  // cancelled
  EventHandler handler = std::move(s.handler);
  s.seq = 0;
  free_slots_.push_back(slot);
  --pending_;
  now_ = Time::at(Duration::ps(e.time));
  ++executed_;
  handler();
  event_executed.emit(now_);
  return true;
}

std::uint64_t Simulator::run() {
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (!heap_.empty() && !stop_requested_) run_one();
  return executed_ - start;
}

std::uint64_t Simulator::run_until(Time until) {
  if (until < now_) {
    throw SimulationError("run_until(" + std::to_string(until.count_ps()) + " ps) is before now (" +
                          std::to_string(now_.count_ps()) + " ps)");
  }
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (!heap_.empty() && !stop_requested_ && heap_.front().time <= until.count_ps()) run_one();
  if (!stop_requested_) now_ = until;
  return executed_ - start;
}

}  // namespace moesim
