#pragma once
// Per-GPU time breakdown, measured from the executor's signals (never from a
// formula). At every instant of the observation window each GPU is in exactly
// one of five states, by priority:
//
//   compute                a compute op is running on it (any stream);
//   all_to_all             else an EP dispatch/combine is running on it, or
//                          it has reached one (launched its kernel: at the head
//                          of its stream with its own inputs ready) and waits
//                          for its peers — what a profiler shows as the NCCL
//                          kernel's time;
//   communication_exposed  else another collective (TP all-reduce, pipeline
//                          transfer) is running, or a TP collective it reached
//                          waits for peers;
//   bubble                 else nothing runs on it while some plan is still in
//                          progress (DESIGN.md: it waits with work pending
//                          elsewhere) — including a stage waiting for its
//                          next micro-batch to arrive (a pipeline receive that
//                          has not started is waiting, not communicating);
//   idle                   else: nothing runs and no plan is in progress.
//
// So the five parts sum to the window per GPU, and their fractions to 1.
// Accounting is online (O(1) per signal, no per-op storage), so it can watch
// a serving run of many iterations; several executors may be attached, one
// after the other or at the same time.

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "sim/executor.hpp"
#include "sim/plan.hpp"
#include "sim/units.hpp"

namespace moesim::analysis {

/// The five parts, in a fixed order (JSON keys and HDF5 columns).
enum class TimeKind : std::uint8_t { kCompute, kCommunicationExposed, kAllToAll, kBubble, kIdle };
inline constexpr int kTimeKindCount = 5;
std::string_view to_string(TimeKind kind);  // "compute", "communication_exposed", ...

struct GpuTime {
  std::array<Duration, kTimeKindCount> parts{};
  /// Of all_to_all + communication_exposed: time spent waiting at a
  /// collective's rendezvous (peers not there yet) rather than transferring.
  Duration collective_wait{};
  /// Per op category: time with at least one op of the category running.
  std::array<Duration, kOpCategoryCount> busy{};

  [[nodiscard]] Duration operator[](TimeKind k) const { return parts[static_cast<std::size_t>(k)]; }
  [[nodiscard]] Duration total() const;
  /// part / total (0 when the window is empty).
  [[nodiscard]] double fraction(TimeKind k) const;
};

/// min / mean / max of one part's fraction over a set of GPUs.
struct FractionStats {
  double min = 0.0;
  double mean = 0.0;
  double max = 0.0;
};

class TimeBreakdown {
 public:
  /// Observes GPUs 0..gpu_count-1 from `window_start`.
  explicit TimeBreakdown(std::int32_t gpu_count, Time window_start = Time::zero());
  TimeBreakdown(const TimeBreakdown&) = delete;  // attached signals hold `this`
  TimeBreakdown& operator=(const TimeBreakdown&) = delete;

  /// Subscribes to an executor's signals (before it starts). The executor's
  /// plan must not name GPUs beyond gpu_count.
  void attach(Executor& executor);
  /// Ends the window at `end` (>= every signal seen): accounts every GPU up to
  /// it. Call once, after the run.
  void close(Time end);

  [[nodiscard]] std::int32_t gpu_count() const { return static_cast<std::int32_t>(gpus_.size()); }
  [[nodiscard]] Time window_start() const { return start_; }
  [[nodiscard]] Time window_end() const { return end_; }
  [[nodiscard]] const GpuTime& gpu(GpuId g) const { return gpus_.at(static_cast<std::size_t>(g)).time; }

  /// Statistics of part `k`'s fraction over `gpus`.
  [[nodiscard]] FractionStats stats(TimeKind k, std::span<const GpuId> gpus) const;

 private:
  struct State {
    GpuTime time;
    Time last{};
    std::int32_t compute_running = 0;
    std::int32_t a2a_running = 0;
    std::int32_t a2a_waiting = 0;
    std::int32_t comm_running = 0;
    std::int32_t comm_waiting = 0;
    std::array<std::int32_t, kOpCategoryCount> running{};
  };
  void advance(State& s, Time t) const;
  void advance_all(Time t);
  State& state(GpuId g);
  void on_arrived(const OpEvent& e);
  void on_began(const OpEvent& e);
  void on_ended(const OpEvent& e);

  std::vector<State> gpus_;
  Time start_{};
  Time end_{};
  std::int32_t active_plans_ = 0;
  bool closed_ = false;
};

}  // namespace moesim::analysis
