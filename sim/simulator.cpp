#include "sim/simulator.hpp"

#include <utility>

namespace moesim {

Simulator::Simulator() { slots_.reserve(1024); }

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

EventHandle Simulator::schedule_at(Time t, EventHandler handler) { return schedule(t, std::move(handler)); }

EventHandle Simulator::schedule(Time t, EventHandler&& handler) {
  if (t < now_) {
    throw SimulationError("event scheduled in the past: at " + std::to_string(t.count_ps()) +
                          " ps while now is " + std::to_string(now_.count_ps()) + " ps");
  }
  if (next_seq_ > kMaxSequence) throw SimulationError("event sequence numbers exhausted");
  const std::uint64_t seq = next_seq_++;
  const std::uint32_t slot = acquire_slot();
  slots_[slot].handler = std::move(handler);
  slots_[slot].seq = seq;
  queue_.push(make_entry(t.count_ps(), (seq << kSlotBits) | slot));
  ++pending_;
  return EventHandle(slot, seq);
}

EventHandle Simulator::schedule_in(Duration delay, EventHandler handler) {
  if (delay < Duration::zero()) {
    throw SimulationError("negative delay of " + std::to_string(delay.count_ps()) + " ps");
  }
  return schedule(now_ + delay, std::move(handler));
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
  // The queue entry stays and is skipped when popped: its sequence number no
  // longer matches the slot's (lazy deletion keeps cancel O(1)).
  return true;
}

bool Simulator::run_one() {
  const Entry e = queue_.pop();
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
  // The slot of an event due soon is a likely cache miss at a million pending
  // events (it was last touched when the event was scheduled): start fetching
  // it now, kLookahead - 1 events ahead (the queue keeps that many upcoming
  // entries sorted), so that it is cached when its turn comes. A slot is 80
  // bytes, so it always spans two cache lines: fetch its first and last byte.
  if (const Entry* next = queue_.ahead(LadderQueue::kLookahead - 1)) {
    const Slot* ahead = &slots_[entry_key(*next) & kSlotMask];
    __builtin_prefetch(ahead);
    __builtin_prefetch(reinterpret_cast<const char*>(ahead + 1) - 1);
  }
  handler();
  event_executed.emit(now_);
  return true;
}

std::uint64_t Simulator::run() {
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (!queue_.empty() && !stop_requested_) run_one();
  return executed_ - start;
}

std::uint64_t Simulator::run_until(Time until) {
  if (until < now_) {
    throw SimulationError("run_until(" + std::to_string(until.count_ps()) + " ps) is before now (" +
                          std::to_string(now_.count_ps()) + " ps)");
  }
  stop_requested_ = false;
  const std::uint64_t start = executed_;
  while (!queue_.empty() && !stop_requested_ && entry_time(queue_.top()) <= until.count_ps()) run_one();
  if (!stop_requested_) now_ = until;
  return executed_ - start;
}

}  // namespace moesim
