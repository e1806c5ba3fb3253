#pragma once
// The discrete-event engine: pending events run in (time, insertion sequence)
// order, as in ns-3 and SST, so that events scheduled for the same instant run
// in the order they were scheduled. They wait in a ladder queue
// (sim/ladder_queue.hpp). There is no global simulator: every model receives a
// Simulator& explicitly.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/huge_page_allocator.hpp"
#include "sim/ladder_queue.hpp"
#include "sim/signal.hpp"
#include "sim/unique_function.hpp"
#include "sim/units.hpp"

namespace moesim {

/// Thrown on misuse of the engine (scheduling in the past, sequence overflow).
class SimulationError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Identifies one scheduled event. A handle names its event by the event's
/// unique sequence number, so it can never cancel a different event, even
/// after its own has run and the storage was reused.
class EventHandle {
 public:
  EventHandle() = default;
  [[nodiscard]] bool valid() const { return seq_ != 0; }
  [[nodiscard]] std::uint64_t sequence() const { return seq_; }

 private:
  friend class Simulator;
  EventHandle(std::uint32_t slot, std::uint64_t seq) : slot_(slot), seq_(seq) {}
  std::uint32_t slot_ = 0;
  std::uint64_t seq_ = 0;
};

using EventHandler = UniqueFunction<void()>;

class Simulator {
 public:
  Simulator();

  /// Current simulated time.
  [[nodiscard]] Time now() const { return now_; }

  /// Schedules `handler` at absolute time `t`; t < now() is an error.
  EventHandle schedule_at(Time t, EventHandler handler);
  /// Schedules `handler` after `delay` (must be >= 0) from now().
  EventHandle schedule_in(Duration delay, EventHandler handler);

  /// Cancels a pending event. Returns false (and does nothing) when the event
  /// has already run, was already cancelled, or the handle is empty.
  bool cancel(const EventHandle& handle);
  /// True while the event named by `handle` is still pending.
  [[nodiscard]] bool is_pending(const EventHandle& handle) const;

  /// Runs events until none is left or stop() is called. Returns events run.
  std::uint64_t run();
  /// Runs every event with time <= `until` (the boundary is inclusive), then
  /// advances now() to `until` if the run was not stopped. Returns events run.
  std::uint64_t run_until(Time until);
  /// Makes the current run()/run_until() return after the running event.
  void stop() { stop_requested_ = true; }

  [[nodiscard]] std::size_t pending() const { return pending_; }
  [[nodiscard]] std::uint64_t events_executed() const { return executed_; }

  /// Emitted after each event handler returns (for tracing/observers).
  /// Connecting an observer costs one branch per event when none is connected.
  Signal<Time> event_executed;

 private:
  // One queue entry: 16 bytes. The whole ordering key is one unsigned 128-bit
  // integer: time (non-negative picoseconds) in the high half, and in the low
  // half the unique sequence number over the handler's slot index, so the
  // queue orders by (time, sequence) with single 128-bit compares and the
  // handler itself never moves while its event waits.
  using Entry = LadderQueue::Key;
  static Entry make_entry(std::int64_t time, std::uint64_t key) {
    return (static_cast<Entry>(static_cast<std::uint64_t>(time)) << 64) | key;
  }
  static std::int64_t entry_time(Entry e) { return static_cast<std::int64_t>(static_cast<std::uint64_t>(e >> 64)); }
  static std::uint64_t entry_key(Entry e) { return static_cast<std::uint64_t>(e); }
  static constexpr unsigned kSlotBits = 28;
  static constexpr std::uint64_t kSlotMask = (std::uint64_t{1} << kSlotBits) - 1;
  static constexpr std::uint64_t kMaxSequence = (std::uint64_t{1} << (64 - kSlotBits)) - 1;

  struct Slot {
    EventHandler handler;
    std::uint64_t seq = 0;  // 0 = free
  };

  // schedule_at and schedule_in take the handler by value (the public
  // signature); both pass it on by reference, so it is moved once, into its slot.
  EventHandle schedule(Time t, EventHandler&& handler);
  std::uint32_t acquire_slot();
  bool run_one();  // pops one entry; returns true when a handler ran

  LadderQueue queue_;
  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  std::vector<std::uint32_t> free_slots_;
  Time now_{};
  std::uint64_t next_seq_ = 1;
  std::size_t pending_ = 0;
  std::uint64_t executed_ = 0;
  bool stop_requested_ = false;
};

}  // namespace moesim
