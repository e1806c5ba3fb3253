#include "analysis/serving_run.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "analysis/hdf5_writer.hpp"
#include "analysis/run_report.hpp"
#include "sim/compute_model.hpp"
#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "sim/unit_parse.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/requests.hpp"
#include "workloads/routing.hpp"
#include "workloads/workload_options.hpp"

namespace moesim::analysis {

namespace {

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Seconds as "123 ms" / "1.23 s" / "45.6 us", three significant-ish digits.
std::string secs(double s) {
  if (!std::isfinite(s)) return "-";
  const double a = std::fabs(s);
  if (a >= 1.0) return fmt(s, a >= 100 ? 1 : 3) + " s";
  if (a >= 1e-3) return fmt(s * 1e3, a >= 0.1 ? 1 : 2) + " ms";
  return fmt(s * 1e6, 1) + " us";
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}
std::string lpad(std::string s, std::size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

std::string describe_lengths(const LengthDistribution& d) {
  std::string s = std::string(to_string(d.kind)) + " mean " + fmt(d.mean, 0);
  if (d.kind != LengthDistKind::kFixed) {
    s += ", cv " + fmt(d.cv, 2) + ", clipped to [" + std::to_string(d.min) + ", " + std::to_string(d.max) + "]";
  }
  return s;
}

std::string describe_arrivals(const RequestStreamConfig& s) {
  switch (s.arrival) {
    case ArrivalKind::kOffline: return "offline (all at t = 0)";
    case ArrivalKind::kPoisson: return "Poisson, " + fmt(s.rate, s.rate < 10 ? 2 : 1) + " requests/s";
    case ArrivalKind::kBursty:
      return "bursty (Gamma, cv " + fmt(s.cv, 2) + "), " + fmt(s.rate, s.rate < 10 ? 2 : 1) + " requests/s";
    case ArrivalKind::kTrace: return "trace " + s.trace_path;
  }
  return "?";
}

}  // namespace

ServingRun run_serving(const Config& config) {
  const auto wall_start = std::chrono::steady_clock::now();
  ServingRun out;

  const Topology topology = topology_from_config(config);
  const std::int64_t gpus = topology.gpu_count();
  const ModelSpec model = model_from_config(config);
  const GpuSpec gpu = gpu_from_config(config);
  Strategy strategy = strategy_from_config(config, gpus);
  out.options = serving_options_from_config(config);
  const MemoryOptions memory_options = memory_options_from_config(config);
  const ValidationResult validation = validate(model, strategy, gpus);
  validation.throw_if_invalid();

  const NetworkParams net_params = network_params_from_config(config, topology);
  static_cast<RunContext&>(out) = run_context(config, topology, model, gpu, strategy, validation, net_params);
  const RandomStreams streams(out.seed, out.run);

  // KV cache: what the memory model leaves, unless overridden.
  SchedulerConfig sched = out.options.scheduler;
  out.kv = kv_capacity(model, strategy, gpu, memory_options, sched.max_batched_tokens, sched.kv_block_tokens);
  out.kv_overridden = sched.kv_blocks > 0;
  if (!out.kv_overridden) sched.kv_blocks = out.kv.blocks;
  out.options.scheduler = sched;
  {
    Strategy st = strategy;
    st.microbatches = st.pp;
    const WorkloadShape shape{strategy.attention_dp(), sched.max_batched_tokens,
                              std::max<std::int64_t>(1, sched.kv_blocks * sched.kv_block_tokens)};
    out.memory = estimate_memory(model, st, gpu, shape, memory_options);
  }
  if (out.kv_overridden && sched.kv_blocks > out.kv.blocks) {
    out.notes.push_back("scheduler.kv_blocks = " + std::to_string(sched.kv_blocks) +
                        " exceeds the " + std::to_string(out.kv.blocks) +
                        " blocks the memory model leaves per replica (what-if)");
  }

  const RankMapping mapping(model, strategy);
  const ComputeModel compute(gpu);
  const RoutingConfig routing = routing_from_config(config);
  EngineLayout layout = engine_layout(mapping);

  std::vector<Request> requests = generate_requests(out.options.stream, streams);
  PlanTimer timer(model, mapping, compute, routing, streams, topology, net_params, layout,
                  PlanTimerOptions{out.options.shape_buckets, out.options.sample_layers});
  Simulator sim;
  ServingSimulator serving(sim, std::move(requests), std::move(layout), strategy.pp, sched, out.options.router,
                           timer);
  out.result = serving.run();
  out.summary = summarize_serving(out.result, out.options.slo, out.options.warmup, out.options.cooldown);
  out.timer = timer.stats();
  out.cached_shapes = timer.cached_shapes();
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return out;
}

nlohmann::json to_json(const ServingRun& r) {
  using nlohmann::json;
  const ServingSummary& s = r.summary;
  const ServingOptions& o = r.options;
  json j = context_json(r, "serving");
  j["workload"] = {{"kind", "serving"},
                   {"arrival", std::string(to_string(o.stream.arrival))},
                   {"rate", o.stream.rate},
                   {"cv", o.stream.cv},
                   {"requests", s.total_requests},
                   {"prompt", describe_lengths(o.stream.prompt)},
                   {"output", describe_lengths(o.stream.output)},
                   {"warmup", o.warmup},
                   {"cooldown", o.cooldown}};
  j["requests"] = s.total_requests;
  j["measured_requests"] = s.measured_requests;
  j["window_s"] = {{"start", s.window_start_s}, {"end", s.window_end_s}, {"ramp_up_fraction", s.ramp_up_fraction}};
  j["throughput"] = {{"tokens_per_s", s.tokens_per_s},
                     {"output_tokens_per_s", s.output_tokens_per_s},
                     {"input_tokens_per_s", s.input_tokens_per_s},
                     {"sequences_per_s", s.requests_per_s},
                     {"requests_per_s", s.requests_per_s}};
  j["tokens_per_s"] = s.tokens_per_s;
  j["output_tokens_per_s"] = s.output_tokens_per_s;
  j["input_tokens_per_s"] = s.input_tokens_per_s;
  j["requests_per_s"] = s.requests_per_s;
  j["offered_rate"] = s.offered_rate;
  j["goodput"] = s.goodput;
  j["slo_attainment"] = s.slo_attainment;
  j["meets_slo"] = s.meets_slo;
  j["slo"] = {{"ttft_s", o.slo.ttft.seconds()}, {"tpot_s", o.slo.tpot.seconds()}, {"attainment", o.slo.attainment}};
  j["ttft_s"] = to_json(s.ttft);
  j["tpot_s"] = to_json(s.tpot);
  j["e2e_s"] = to_json(s.e2e);
  j["queue_s"] = to_json(s.queue);
  j["little"] = {{"mean_in_system", s.mean_in_system},
                 {"arrival_rate", s.offered_rate},
                 {"mean_time_in_system_s", s.mean_time_in_system_s}};
  j["scheduler"] = {{"max_seqs", o.scheduler.max_seqs},
                    {"max_batched_tokens", o.scheduler.max_batched_tokens},
                    {"chunked_prefill", o.scheduler.chunked_prefill},
                    {"router", std::string(to_string(o.router))},
                    {"replicas", s.replicas},
                    {"engines", s.engines}};
  j["kv_cache"] = {{"blocks_per_replica", s.kv_blocks},
                   {"block_tokens", s.kv_block_tokens},
                   {"tokens_per_replica", s.kv_blocks * s.kv_block_tokens},
                   {"memory_model_blocks", r.kv.blocks},
                   {"bytes_per_token_per_gpu", r.kv.bytes_per_token.count()},
                   {"source", r.kv_overridden ? "scheduler.kv_blocks" : "memory model"},
                   {"peak_blocks", s.peak_kv_blocks},
                   {"peak_fraction", s.kv_blocks > 0 ? static_cast<double>(s.peak_kv_blocks) /
                                                           static_cast<double>(s.kv_blocks)
                                                     : 0.0}};
  j["preemptions"] = s.preemptions;
  j["iterations"] = s.iterations;
  j["mean_batch_sequences"] = s.mean_batch_sequences;
  j["mean_iteration_s"] = s.mean_iteration_s;
  j["iteration_cache"] = {{"buckets_per_octave", o.shape_buckets},
                          {"lookups", r.timer.lookups},
                          {"simulated", r.timer.simulated},
                          {"shapes", r.cached_shapes},
                          {"simulated_ops", r.timer.simulated_ops},
                          {"simulate_wall_s", r.timer.simulate_wall_s}};
  {
    const MemoryBreakdown& mx = r.memory.max();
    json breakdown = json::object();
    for (const auto& [k, v] : mx.items()) breakdown[k] = v.count();
    j["memory_per_gpu_bytes"] = {
        {"max", mx.total().count()}, {"capacity", r.memory.capacity.count()}, {"stage", mx.stage},
        {"breakdown", breakdown}};
  }
  j["makespan_s"] = s.makespan_s;
  j["events"] = r.result.events;
  j["wall_s"] = r.wall_s;
  return j;
}

std::string format_serving_report(const ServingRun& r) {
  const ServingSummary& s = r.summary;
  const ServingOptions& o = r.options;
  std::ostringstream out;
  out << "moesim run: serving, " << s.total_requests << " requests, " << describe_arrivals(o.stream) << "\n\n";
  out << "Throughput   " << fmt(s.output_tokens_per_s, 1) << " output tokens/s, " << fmt(s.tokens_per_s, 1)
      << " tokens/s (input + output), " << fmt(s.requests_per_s, 2) << " requests/s\n";
  out << "TTFT         p50 " << secs(s.ttft.p50) << ", p99 " << secs(s.ttft.p99) << "   TPOT p50 "
      << secs(s.tpot.p50) << ", p99 " << secs(s.tpot.p99) << "\n";
  out << "Goodput      " << fmt(s.goodput, 2) << " requests/s: " << fmt(100.0 * s.slo_attainment, 1)
      << " % of requests meet TTFT <= " << secs(o.slo.ttft.seconds()) << " and TPOT <= " << secs(o.slo.tpot.seconds())
      << (s.meets_slo ? " (SLO met" : " (SLO missed") << ": target " << fmt(100.0 * o.slo.attainment, 0)
      << " %)\n";
  if (s.ramp_up_fraction > kRampUpWarning) {
    out << "Warning      the run is short for its load: the measured window opens "
        << fmt(s.window_start_s - (s.requests.empty() ? 0.0 : s.requests.front().arrival_s), 2)
        << " s after the first arrival, while requests live " << fmt(s.e2e.mean, 2) << " s (mean E2E), p90 "
        << fmt(s.e2e.p90, 2) << " s;\n             requests/s, tokens/s and goodput are about "
        << fmt(100.0 * s.ramp_up_fraction, 0) << " % low (ramp-up); raise workload.requests\n";
  }
  out << "\n";

  out << "  model     " << r.model << "\n";
  out << "  cluster   " << r.topology << ": " << r.gpus << " x " << r.gpu << "; network " << r.network << "\n";
  out << "  strategy  " << r.strategy.describe() << "; " << s.replicas << " replicas in " << s.engines
      << " lock-step engine(s); " << r.gpus_used << " of " << r.gpus << " GPUs used\n";
  out << "  prompts   " << describe_lengths(o.stream.prompt) << " tokens\n";
  out << "  outputs   " << describe_lengths(o.stream.output) << " tokens\n";
  out << "  scheduler max " << o.scheduler.max_seqs << " seqs and " << o.scheduler.max_batched_tokens
      << " tokens per iteration, chunked prefill " << (o.scheduler.chunked_prefill ? "on" : "off") << ", router "
      << to_string(o.router) << ", seed " << r.seed << "\n";
  for (const auto& n : r.notes) out << "  note      " << n << "\n";

  out << "\nLatency over " << s.measured_requests << " measured requests (throughput window " << fmt(s.window_start_s, 2)
      << " s .. " << fmt(s.window_end_s, 2) << " s; warm-up " << fmt(100 * o.warmup, 0) << " %, cool-down "
      << fmt(100 * o.cooldown, 0) << " % of requests left out)\n";
  out << "  " << pad("", 8) << lpad("mean", 11) << lpad("p50", 11) << lpad("p90", 11) << lpad("p99", 11)
      << lpad("max", 11) << "\n";
  auto row = [&](const char* name, const LatencyStats& st) {
    out << "  " << pad(name, 8) << lpad(secs(st.mean), 11) << lpad(secs(st.p50), 11) << lpad(secs(st.p90), 11)
        << lpad(secs(st.p99), 11) << lpad(secs(st.max), 11) << "\n";
  };
  row("TTFT", s.ttft);
  row("TPOT", s.tpot);
  row("E2E", s.e2e);
  row("queue", s.queue);
  out << "  input " << fmt(s.input_tokens_per_s, 1) << " tokens/s; offered " << fmt(s.offered_rate, 2)
      << " requests/s; mean in system " << fmt(s.mean_in_system, 2) << " requests\n";

  const double peak = s.kv_blocks > 0 ? static_cast<double>(s.peak_kv_blocks) / static_cast<double>(s.kv_blocks) : 0;
  out << "\nKV cache     " << s.kv_blocks * s.kv_block_tokens << " tokens per replica (" << s.kv_blocks
      << " blocks of " << s.kv_block_tokens << ", "
      << (r.kv_overridden ? std::string("scheduler.kv_blocks") : std::string("from the memory model")) << "), peak "
      << fmt(100.0 * peak, 1) << " % used, " << s.preemptions << " preemption(s)\n";
  out << "Iterations   " << s.iterations << " engine iterations, mean " << fmt(s.mean_batch_sequences, 1)
      << " sequences and " << secs(s.mean_iteration_s) << " each\n";
  if (o.shape_buckets > 0) {
    out << "Iter. cache  " << r.timer.simulated << " plans simulated for " << r.timer.lookups
        << " iterations (shape buckets 2^(1/" << o.shape_buckets << "), " << fmt(r.timer.simulate_wall_s, 2)
        << " s)\n";
  } else {
    out << "Iter. cache  off: every iteration's plan simulated (" << r.timer.simulated << ")\n";
  }
  out << "\nMemory per GPU with the KV cache at capacity (" << format_bytes(r.memory.capacity) << ")\n"
      << format_memory_table(r.memory) << "\n";
  out << "\nSimulated " << fmt(s.makespan_s, 2) << " s in " << fmt(r.wall_s, 2) << " s wall (" << r.result.events
      << " serving events)\n";
  return out.str();
}

void fill_serving_trace(ChromeTrace& trace, const ServingRun& r) {
  trace.set_metadata("mode", "serving");
  trace.set_metadata("seed", r.seed);
  for (std::int32_t e = 0; e < r.summary.engines; ++e) {
    trace.set_process_name(e + 1, "engine " + std::to_string(e));
    trace.set_process_sort_index(e + 1, e);
    trace.set_thread_name(TraceTrack{e + 1, 0}, "iterations");
  }
  for (const IterationRecord& it : r.result.iterations) {
    trace.add_complete(TraceTrack{it.engine + 1, 0},
                       std::to_string(it.sequences) + " seqs, " + std::to_string(it.new_tokens) + " tokens",
                       "iteration", it.start, it.end - it.start,
                       nlohmann::json{{"sequences", it.sequences},
                                      {"new_tokens", it.new_tokens},
                                      {"prefill_tokens", it.prefill_tokens},
                                      {"output_tokens", it.output_tokens},
                                      {"preempted", it.preempted}});
  }
  // Requests in the system: +1 at each arrival, -1 at each completion.
  std::vector<std::pair<Time, int>> steps;
  steps.reserve(2 * r.result.states.size());
  for (const RequestState& s : r.result.states) {
    steps.emplace_back(s.arrival, 1);
    steps.emplace_back(s.finished, -1);
  }
  std::sort(steps.begin(), steps.end());
  const std::int64_t pid = r.summary.engines + 1;
  trace.set_process_name(pid, "cluster");
  trace.set_process_sort_index(pid, r.summary.engines);
  std::int64_t n = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    n += steps[i].second;
    if (i + 1 < steps.size() && steps[i + 1].first == steps[i].first) continue;
    trace.add_counter(pid, "requests in system", steps[i].first, {{"requests", static_cast<double>(n)}});
  }
}

void write_serving_results(const std::filesystem::path& path, const ServingRun& r, const std::string& scenario_ini,
                           const std::string& command) {
  Hdf5Writer w = open_run_results(path, r.seed, scenario_ini, command, to_json(r));
  {
    const auto& q = r.summary.requests;
    std::vector<std::int64_t> id, prompt, output, replica, preempt, measured, meets;
    std::vector<double> arrival, first, end, ttft, tpot, queue, e2e, sched;
    for (const RequestRecord& x : q) {
      id.push_back(x.id);
      arrival.push_back(x.arrival_s);
      prompt.push_back(x.prompt_tokens);
      output.push_back(x.output_tokens);
      first.push_back(x.first_token_s);
      end.push_back(x.end_s);
      ttft.push_back(x.ttft_s);
      tpot.push_back(x.tpot_s);
      queue.push_back(x.queue_s);
      e2e.push_back(x.e2e_s);
      sched.push_back(x.scheduled_s);
      replica.push_back(x.replica);
      preempt.push_back(x.preemptions);
      measured.push_back(x.measured ? 1 : 0);
      meets.push_back(x.meets_slo ? 1 : 0);
    }
    write_table(w, schema::kRequests,
                {{"id", id, ""},
                 {"arrival_s", arrival, "s"},
                 {"prompt_tokens", prompt, "tokens"},
                 {"output_tokens", output, "tokens"},
                 {"first_token_s", first, "s"},
                 {"end_s", end, "s"},
                 {"ttft_s", ttft, "s"},
                 {"tpot_s", tpot, "s"},
                 {"queue_s", queue, "s"},
                 {"e2e_s", e2e, "s"},
                 {"scheduled_s", sched, "s"},
                 {"replica", replica, ""},
                 {"preemptions", preempt, ""},
                 {"measured", measured, ""},
                 {"meets_slo", meets, ""}});
  }
  {
    std::vector<std::int64_t> engine, seqs, tokens, prefill, outputs, preempted;
    std::vector<double> start, end;
    for (const IterationRecord& it : r.result.iterations) {
      engine.push_back(it.engine);
      start.push_back(it.start.seconds());
      end.push_back(it.end.seconds());
      seqs.push_back(it.sequences);
      tokens.push_back(it.new_tokens);
      prefill.push_back(it.prefill_tokens);
      outputs.push_back(it.output_tokens);
      preempted.push_back(it.preempted);
    }
    std::vector<Column> cols{{"engine", engine, ""},          {"start_s", start, "s"},
                             {"end_s", end, "s"},             {"sequences", seqs, ""},
                             {"new_tokens", tokens, "tokens"}, {"prefill_tokens", prefill, "tokens"},
                             {"output_tokens", outputs, "tokens"}, {"preempted", preempted, ""}};
    w.write_table("/iterations", cols);
  }
  w.commit();
}

namespace {

// Passes iterations on to a PlanTimer and keeps the engine batches of those
// with iteration % every == phase.
class SamplingTimer final : public IterationTimer {
 public:
  SamplingTimer(PlanTimer& inner, std::int64_t every, std::int64_t phase)
      : inner_(&inner), every_(every), phase_(phase) {}
  IterationTiming time(std::int32_t engine, const EngineBatch& batch, std::int64_t iteration) override {
    if (iteration % every_ == phase_) seen.emplace_back(engine, batch);
    return inner_->time(engine, batch, iteration);
  }
  std::vector<std::pair<std::int32_t, EngineBatch>> seen;

 private:
  PlanTimer* inner_;
  std::int64_t every_;
  std::int64_t phase_;
};

}  // namespace

CacheCheck check_iteration_cache(const Config& config, std::int64_t every, std::int64_t phase) {
  if (every < 1 || phase < 0 || phase >= every) {
    throw std::invalid_argument("check_iteration_cache: need every >= 1 and 0 <= phase < every");
  }
  const Topology topology = topology_from_config(config);
  const ModelSpec model = model_from_config(config);
  const GpuSpec gpu = gpu_from_config(config);
  const Strategy strategy = strategy_from_config(config, topology.gpu_count());
  const ServingOptions so = serving_options_from_config(config);
  const RandomStreams streams(static_cast<std::uint64_t>(config.get_int("run.seed")),
                              static_cast<std::uint64_t>(config.get_int("run.run")));
  const RankMapping mapping(model, strategy);
  const ComputeModel compute(gpu);
  const EngineLayout layout = engine_layout(mapping);
  PlanTimer timer(model, mapping, compute, routing_from_config(config), streams, topology,
                  network_params_from_config(config, topology), layout,
                  PlanTimerOptions{so.shape_buckets, so.sample_layers});
  SamplingTimer sampler(timer, every, phase);
  // The KV cache as run_serving sizes it.
  SchedulerConfig sched = so.scheduler;
  if (sched.kv_blocks <= 0) {
    sched.kv_blocks = kv_capacity(model, strategy, gpu, memory_options_from_config(config), sched.max_batched_tokens,
                                  sched.kv_block_tokens)
                          .blocks;
  }
  Simulator sim;
  ServingSimulator serving(sim, generate_requests(so.stream, streams), layout, strategy.pp, sched, so.router,
                           sampler);
  (void)serving.run();

  CacheCheck out;
  out.engine_local = timer.engine_local();
  out.iterations = sampler.seen.size();
  for (std::size_t i = 0; i < sampler.seen.size(); ++i) {
    const auto& [engine, batch] = sampler.seen[i];
    const double cached = timer.time(engine, batch, 0).latency.seconds();
    const double exact = timer.simulate_exact(engine, batch, static_cast<std::int64_t>(i) + 1).latency.seconds();
    const double e = cached / exact - 1.0;
    out.mean_abs_error += std::fabs(e);
    out.mean_error += e;
    if (std::fabs(e) > out.worst_error || i == 0) {
      out.worst_error = std::fabs(e);
      out.worst_cached_s = cached;
      out.worst_exact_s = exact;
      out.worst_batch = batch;
    }
  }
  if (out.iterations > 0) {
    out.mean_abs_error /= static_cast<double>(out.iterations);
    out.mean_error /= static_cast<double>(out.iterations);
  }
  return out;
}

}  // namespace moesim::analysis
