#include "analysis/time_breakdown.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace moesim::analysis {

std::string_view to_string(TimeKind kind) {
  switch (kind) {
    case TimeKind::kCompute: return "compute";
    case TimeKind::kCommunicationExposed: return "communication_exposed";
    case TimeKind::kAllToAll: return "all_to_all";
    case TimeKind::kBubble: return "bubble";
    case TimeKind::kIdle: return "idle";
  }
  return "unknown";
}

Duration GpuTime::total() const {
  Duration t{};
  for (Duration d : parts) t += d;
  return t;
}

double GpuTime::fraction(TimeKind k) const {
  const Duration t = total();
  if (t <= Duration::zero()) return 0.0;
  return static_cast<double>((*this)[k].count_ps()) / static_cast<double>(t.count_ps());
}

TimeBreakdown::TimeBreakdown(std::int32_t gpu_count, Time window_start) : start_(window_start), end_(window_start) {
  if (gpu_count <= 0) throw std::invalid_argument("TimeBreakdown needs a positive GPU count");
  gpus_.resize(static_cast<std::size_t>(gpu_count));
  for (auto& s : gpus_) s.last = window_start;
}

TimeBreakdown::State& TimeBreakdown::state(GpuId g) {
  if (g < 0 || static_cast<std::size_t>(g) >= gpus_.size()) {
    throw std::out_of_range("TimeBreakdown: GPU " + std::to_string(g) + " is outside the observed " +
                            std::to_string(gpus_.size()));
  }
  return gpus_[static_cast<std::size_t>(g)];
}

void TimeBreakdown::advance(State& s, Time t) const {
  if (t <= s.last) return;
  const Duration dt = t - s.last;
  s.last = t;
  GpuTime& g = s.time;
  TimeKind kind = TimeKind::kIdle;
  if (s.compute_running > 0) {
    kind = TimeKind::kCompute;
  } else if (s.a2a_running + s.a2a_waiting > 0) {
    kind = TimeKind::kAllToAll;
    if (s.a2a_running == 0 && s.comm_running == 0) g.collective_wait += dt;
  } else if (s.comm_running + s.comm_waiting > 0) {
    kind = TimeKind::kCommunicationExposed;
    if (s.comm_running == 0) g.collective_wait += dt;
  } else if (active_plans_ > 0) {
    kind = TimeKind::kBubble;
  }
  g.parts[static_cast<std::size_t>(kind)] += dt;
  for (std::size_t c = 0; c < s.running.size(); ++c) {
    if (s.running[c] > 0) g.busy[c] += dt;
  }
}

void TimeBreakdown::advance_all(Time t) {
  for (auto& s : gpus_) advance(s, t);
}

void TimeBreakdown::attach(Executor& executor) {
  if (executor.plan().gpu_count() > gpu_count()) {
    throw std::invalid_argument("TimeBreakdown observes " + std::to_string(gpu_count()) +
                                " GPUs but the plan has " + std::to_string(executor.plan().gpu_count()));
  }
  executor.plan_started.connect([this](const Time& t) {
    advance_all(t);
    ++active_plans_;
  });
  executor.plan_finished.connect([this](const Time& t) {
    advance_all(t);
    --active_plans_;
  });
  executor.op_arrived.connect([this](const OpEvent& e) { on_arrived(e); });
  executor.op_began.connect([this](const OpEvent& e) { on_began(e); });
  executor.op_ended.connect([this](const OpEvent& e) { on_ended(e); });
}

// Arrivals are signalled only for collectives, always before their begin.
void TimeBreakdown::on_arrived(const OpEvent& e) {
  State& s = state(e.gpu);
  advance(s, e.time);
  if (e.category == OpCategory::kPpTransfer) return;  // waiting for a micro-batch: bubble
  if (is_all_to_all(e.category)) {
    ++s.a2a_waiting;
  } else {
    ++s.comm_waiting;
  }
}

void TimeBreakdown::on_began(const OpEvent& e) {
  State& s = state(e.gpu);
  advance(s, e.time);
  ++s.running[static_cast<std::size_t>(e.category)];
  if (!is_communication(e.category)) {
    ++s.compute_running;
  } else if (is_all_to_all(e.category)) {
    if (s.a2a_waiting > 0) --s.a2a_waiting;
    ++s.a2a_running;
  } else {
    if (e.category != OpCategory::kPpTransfer && s.comm_waiting > 0) --s.comm_waiting;
    ++s.comm_running;
  }
}

void TimeBreakdown::on_ended(const OpEvent& e) {
  State& s = state(e.gpu);
  advance(s, e.time);
  --s.running[static_cast<std::size_t>(e.category)];
  if (!is_communication(e.category)) {
    --s.compute_running;
  } else if (is_all_to_all(e.category)) {
    --s.a2a_running;
  } else {
    --s.comm_running;
  }
}

void TimeBreakdown::close(Time end) {
  if (closed_) throw std::logic_error("TimeBreakdown::close called twice");
  closed_ = true;
  end_ = std::max(end, start_);
  advance_all(end_);
}

FractionStats TimeBreakdown::stats(TimeKind k, std::span<const GpuId> gpus) const {
  FractionStats st;
  if (gpus.empty()) return st;
  st.min = 1.0;
  double sum = 0.0;
  for (GpuId g : gpus) {
    const double f = gpu(g).fraction(k);
    st.min = std::min(st.min, f);
    st.max = std::max(st.max, f);
    sum += f;
  }
  st.mean = sum / static_cast<double>(gpus.size());
  return st;
}

}  // namespace moesim::analysis
