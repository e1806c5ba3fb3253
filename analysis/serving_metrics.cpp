#include "analysis/serving_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moesim::analysis {

double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

LatencyStats latency_stats(std::vector<double> values) {
  LatencyStats s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.count = static_cast<std::int64_t>(values.size());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  s.p50 = percentile_sorted(values, 0.50);
  s.p90 = percentile_sorted(values, 0.90);
  s.p99 = percentile_sorted(values, 0.99);
  s.max = values.back();
  return s;
}

nlohmann::json to_json(const LatencyStats& s) {
  return nlohmann::json{{"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90},
                        {"p99", s.p99},   {"max", s.max}, {"count", s.count}};
}

ServingSummary summarize_serving(const ServingResult& result, const SloConfig& slo, double warmup,
                                 double cooldown) {
  ServingSummary out;
  out.slo = slo;
  const std::size_t n = result.states.size();
  out.total_requests = static_cast<std::int64_t>(n);
  const auto skip_front = static_cast<std::size_t>(std::floor(static_cast<double>(n) * warmup));
  const auto skip_back = static_cast<std::size_t>(std::floor(static_cast<double>(n) * cooldown));
  std::size_t first = std::min(skip_front, n);
  std::size_t last = n - std::min(skip_back, n);  // exclusive
  if (first >= last) {  // too few requests to leave any out: measure them all
    first = 0;
    last = n;
  }

  const double ttft_slo = slo.ttft.seconds();
  const double tpot_slo = slo.tpot.seconds();
  out.requests.resize(n);
  std::vector<double> queue, ttft, tpot, e2e;
  std::int64_t meeting = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const RequestState& s = result.states[i];
    RequestRecord& r = out.requests[i];
    r.id = static_cast<std::int64_t>(i);
    r.replica = s.replica;
    r.prompt_tokens = s.prompt_tokens;
    r.output_tokens = s.output_tokens;
    r.preemptions = s.preemptions;
    r.arrival_s = s.arrival.seconds();
    r.scheduled_s = s.first_scheduled.seconds();
    r.first_token_s = s.first_token.seconds();
    r.end_s = s.finished.seconds();
    r.queue_s = (s.first_scheduled - s.arrival).seconds();
    r.ttft_s = (s.first_token - s.arrival).seconds();
    r.e2e_s = (s.finished - s.arrival).seconds();
    r.tpot_s = s.output_tokens > 1
                   ? (s.finished - s.first_token).seconds() / static_cast<double>(s.output_tokens - 1)
                   : std::numeric_limits<double>::quiet_NaN();
    r.measured = i >= first && i < last;
    r.meets_slo = r.ttft_s <= ttft_slo && (s.output_tokens <= 1 || r.tpot_s <= tpot_slo);
    if (!r.measured) continue;
    queue.push_back(r.queue_s);
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    if (s.output_tokens > 1) tpot.push_back(r.tpot_s);
    if (r.meets_slo) ++meeting;
  }
  out.measured_requests = static_cast<std::int64_t>(last - first);
  out.queue = latency_stats(std::move(queue));
  out.ttft = latency_stats(std::move(ttft));
  out.tpot = latency_stats(std::move(tpot));
  out.e2e = latency_stats(e2e);
  out.mean_time_in_system_s = out.e2e.mean;

  // The measured window.
  double t0 = 0.0;
  double t1 = 0.0;
  bool arrival_window = false;
  if (n > 0) {
    t0 = out.requests[first].arrival_s;
    t1 = out.requests[last - 1].arrival_s;
    arrival_window = t1 > t0;
    if (!arrival_window) {
      for (std::size_t i = first; i < last; ++i) t1 = std::max(t1, out.requests[i].end_s);
    } else {
      // Steady state: the system fills for about one request lifetime after
      // the first arrival. Completions lag arrivals by that lifetime, so a
      // window opening earlier counts fewer completions than arrivals. Open
      // it no earlier than the first arrival + the p90 lifetime (when that
      // leaves a window at all).
      const double settled = out.requests.front().arrival_s + out.e2e.p90;
      if (settled > t0 && settled < t1) t0 = settled;
    }
  }
  out.window_start_s = t0;
  out.window_end_s = t1;
  const double span = t1 - t0;
  auto inside = [&](double t) { return t >= t0 && t <= t1; };

  if (span > 0.0) {
    double output_tokens = 0.0;
    for (const IterationRecord& it : result.iterations) {
      if (inside(it.end.seconds())) output_tokens += static_cast<double>(it.output_tokens);
    }
    double input_tokens = 0.0;
    double completions = 0.0;
    double completions_meeting = 0.0;
    double arrivals = 0.0;
    double area = 0.0;  // integral of the number in system over the window
    for (const RequestRecord& r : out.requests) {
      if (inside(r.first_token_s)) input_tokens += static_cast<double>(r.prompt_tokens);
      if (inside(r.end_s)) {
        completions += 1.0;
        if (r.meets_slo) completions_meeting += 1.0;
      }
      if (arrival_window ? inside(r.arrival_s) : r.measured) arrivals += 1.0;
      area += std::max(0.0, std::min(r.end_s, t1) - std::max(r.arrival_s, t0));
    }
    out.output_tokens_per_s = output_tokens / span;
    out.input_tokens_per_s = input_tokens / span;
    out.tokens_per_s = out.output_tokens_per_s + out.input_tokens_per_s;
    out.requests_per_s = completions / span;
    out.offered_rate = arrivals / span;
    out.goodput = completions_meeting / span;
    out.mean_in_system = area / span;
  }
  // What remains of the ramp-up inside the window, which opens w = t0 - first
  // arrival into the run: a request whose lifetime E2E exceeds w has no
  // predecessor finishing in its place at the window's start, so completions
  // fall short of arrivals by about rate x E[max(0, E2E - w)], a fraction
  // E[max(0, E2E - w)] / span of the window's requests.
  if (arrival_window && span > 0.0) {
    const double w = t0 - out.requests.front().arrival_s;
    double excess = 0.0;
    std::size_t count = 0;
    for (const RequestRecord& r : out.requests) {
      if (!r.measured) continue;
      excess += std::max(0.0, r.e2e_s - w);
      ++count;
    }
    if (count > 0) out.ramp_up_fraction = std::clamp(excess / static_cast<double>(count) / span, 0.0, 1.0);
  }
  out.slo_attainment =
      out.measured_requests > 0 ? static_cast<double>(meeting) / static_cast<double>(out.measured_requests) : 0.0;
  out.meets_slo = out.slo_attainment >= slo.attainment;

  out.iterations = static_cast<std::int64_t>(result.iterations.size());
  if (!result.iterations.empty()) {
    double seqs = 0.0;
    double dur = 0.0;
    for (const IterationRecord& it : result.iterations) {
      seqs += static_cast<double>(it.sequences);
      dur += (it.end - it.start).seconds();
    }
    out.mean_batch_sequences = seqs / static_cast<double>(result.iterations.size());
    out.mean_iteration_s = dur / static_cast<double>(result.iterations.size());
  }
  out.preemptions = result.preemptions;
  out.kv_blocks = result.kv_blocks;
  out.kv_block_tokens = result.kv_block_tokens;
  for (std::int64_t b : result.peak_kv_blocks) out.peak_kv_blocks = std::max(out.peak_kv_blocks, b);
  out.makespan_s = result.makespan.seconds();
  out.replicas = result.replicas;
  out.engines = result.engines;
  return out;
}

}  // namespace moesim::analysis
