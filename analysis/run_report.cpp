#include "analysis/run_report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <utility>

#include "analysis/hdf5_writer.hpp"
#include "sim/compute_model.hpp"
#include "sim/executor.hpp"
#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/batch_options.hpp"
#include "workloads/routing.hpp"
#include "workloads/workload_options.hpp"

namespace moesim::analysis {

namespace {

constexpr std::array<TimeKind, kTimeKindCount> kKinds = {TimeKind::kCompute, TimeKind::kCommunicationExposed,
                                                         TimeKind::kAllToAll, TimeKind::kBubble, TimeKind::kIdle};

BreakdownStats breakdown_of(const TimeBreakdown& tb, std::span<const GpuId> gpus) {
  BreakdownStats b;
  for (TimeKind k : kKinds) b.parts[static_cast<std::size_t>(k)] = tb.stats(k, gpus);
  return b;
}

/// Nearest-rank percentile of sorted values (q in [0, 1]).
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(q * n));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::string trace_name(const OpLabel& l) {
  std::string s(to_string(l.category));
  if (l.layer >= 0) s += " L" + std::to_string(l.layer);
  if (l.microbatch >= 0) s += " mb" + std::to_string(l.microbatch);
  return s;
}

void fill_trace(ChromeTrace& trace, const Executor& ex, std::int64_t gpus_used, const RunSummary& s) {
  const Plan& plan = ex.plan();
  for (GpuId g = 0; g < gpus_used; ++g) {
    trace.set_process_name(gpu_pid(g), "GPU " + std::to_string(g));
    trace.set_process_sort_index(gpu_pid(g), g);
    for (int k = 0; k < kStreamsPerGpu; ++k) {
      const TraceTrack track{gpu_pid(g), k};
      trace.set_thread_name(track, std::string(to_string(static_cast<StreamKind>(k))));
      trace.set_thread_sort_index(track, k);
    }
  }
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) {
    const OpLabel& l = plan.label(op);
    const Time b = ex.begin_time(op);
    const Time e = ex.end_time(op);
    nlohmann::json args = {{"op", op}, {"stage", l.stage}, {"layer", l.layer}, {"microbatch", l.microbatch}};
    if (plan.kind(op) == OpKind::kCollective) {
      const CollectiveRequest& r = plan.request(op);
      args["collective"] = std::string(to_string(r.op));
      args["bytes"] = r.bytes.count();
      args["ranks"] = plan.lanes(op).size();
    }
    for (LaneId lane : plan.lanes(op)) {
      trace.add_complete(TraceTrack{gpu_pid(gpu_of_lane(lane)), static_cast<std::int64_t>(stream_of_lane(lane))},
                         trace_name(l), std::string(to_string(l.category)), b, e - b, args);
    }
  }
  trace.set_metadata("seed", s.seed);
  trace.set_metadata("model", s.model);
  trace.set_metadata("strategy", s.strategy.describe());
  trace.set_metadata("topology", s.topology);
}

nlohmann::json stats_json(const FractionStats& f) { return {{"min", f.min}, {"mean", f.mean}, {"max", f.max}}; }

std::string pct(double f) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << 100.0 * f << " %";
  return o.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string si(double v) {
  std::ostringstream o;
  o << std::setprecision(4);
  if (v >= 1e9) {
    o << v / 1e9 << " G";
  } else if (v >= 1e6) {
    o << v / 1e6 << " M";
  } else if (v >= 1e3) {
    o << v / 1e3 << " k";
  } else {
    o << v << " ";
  }
  return o.str();
}

std::string time_text(Duration d) {
  const double s = d.seconds();
  std::ostringstream o;
  o << std::setprecision(4);
  if (s >= 1.0) {
    o << s << " s";
  } else if (s >= 1e-3) {
    o << s * 1e3 << " ms";
  } else {
    o << s * 1e6 << " us";
  }
  return o.str();
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

}  // namespace

RunSummary run_batch(const Config& config, const BatchRunOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  RunSummary out;

  // Scenario.
  const Topology topology = topology_from_config(config);
  const std::int64_t gpus = topology.gpu_count();
  const ModelSpec model = model_from_config(config);
  const GpuSpec gpu = gpu_from_config(config);
  const Strategy strategy = strategy_from_config(config, gpus);
  const BatchWorkload work = batch_workload_from_config(config);
  const MemoryOptions memory_options = memory_options_from_config(config);
  // The KV cache holds the prompt and the first output token.
  const WorkloadShape shape{work.batch, work.prompt_tokens, work.prompt_tokens + 1};
  const ValidationResult validation = validate(model, strategy, gpus, gpu, shape, memory_options);
  validation.throw_if_invalid();

  const NetworkParams net_params = network_params_from_config(config, topology);
  static_cast<RunContext&>(out) = run_context(config, topology, model, gpu, strategy, validation, net_params);
  out.memory = estimate_memory(model, strategy, gpu, shape, memory_options);

  const RankMapping mapping(model, strategy);
  const ComputeModel compute(gpu);
  const ExpertRouter router(routing_from_config(config), model, RandomStreams(out.seed, out.run));

  // Engine, network and collectives.
  Simulator sim;
  const auto network = make_network(net_params, sim, topology);
  CollectiveEngine engine(sim, *network);

  // The iteration.
  PlanBuilder builder(model, mapping, compute, router, PlanBuilderOptions{static_cast<std::int32_t>(gpus), {}, {}});
  const BatchDescription batch =
      BatchDescription::prefill(work.batch, work.prompt_tokens, mapping.attention_dp(), strategy.microbatches);
  BuiltPlan built = builder.build(batch);
  out.ops = built.plan.size();
  out.collectives = built.plan.collective_count();
  out.expert_load = built.expert_load;
  out.worst_rank_imbalance = built.worst_rank_imbalance;
  const auto output_ops = built.output_ops;

  Executor executor(sim, engine, std::move(built.plan));
  TimeBreakdown breakdown(static_cast<std::int32_t>(gpus), sim.now());
  breakdown.attach(executor);
  executor.run();
  breakdown.close(executor.finish_time());

  // Throughput: the prefill of every prompt produces each sequence's first token.
  out.sequences = batch.sequences();
  out.prompt_tokens = work.prompt_tokens;
  out.input_tokens = batch.tokens();
  out.output_tokens = batch.sampled_tokens();
  out.latency = executor.makespan();
  const double latency_s = out.latency.seconds();
  if (latency_s > 0.0) {
    out.tokens_per_s = static_cast<double>(out.input_tokens + out.output_tokens) / latency_s;
    out.output_tokens_per_s = static_cast<double>(out.output_tokens) / latency_s;
    out.sequences_per_s = static_cast<double>(out.sequences) / latency_s;
  }
  const std::int64_t mbs = batch.microbatches();
  for (std::size_t r = 0; r < batch.replicas.size(); ++r) {
    for (std::int64_t m = 0; m < mbs; ++m) {
      Time done = executor.start_time();
      for (OpId op : output_ops[r * static_cast<std::size_t>(mbs) + static_cast<std::size_t>(m)]) {
        done = std::max(done, executor.end_time(op));
      }
      const auto& seqs = batch.replicas[r][static_cast<std::size_t>(m)].sequences;
      for (std::size_t i = 0; i < seqs.size(); ++i) out.first_token_s.push_back((done - executor.start_time()).seconds());
    }
  }

  // Time breakdown over the GPUs the strategy uses (global rank g on GPU g).
  std::vector<GpuId> used(static_cast<std::size_t>(out.gpus_used));
  std::iota(used.begin(), used.end(), 0);
  out.breakdown = breakdown_of(breakdown, used);
  out.bubble_fraction = out.breakdown[TimeKind::kBubble].mean;
  double wait = 0.0;
  for (GpuId g : used) {
    const GpuTime& t = breakdown.gpu(g);
    out.per_gpu.push_back(t);
    if (t.total() > Duration::zero()) {
      wait += static_cast<double>(t.collective_wait.count_ps()) / static_cast<double>(t.total().count_ps());
    }
    for (std::size_t c = 0; c < out.busy_s.size(); ++c) out.busy_s[c] += t.busy[c].seconds();
  }
  if (!used.empty()) {
    wait /= static_cast<double>(used.size());
    for (double& b : out.busy_s) b /= static_cast<double>(used.size());
  }
  out.collective_wait_fraction = wait;
  for (std::int64_t s = 0; s < strategy.pp; ++s) {
    StageSummary st;
    st.stage = s;
    st.layers = mapping.layers_of_stage(s);
    st.gpus = mapping.gpus_of_stage(s);
    st.breakdown = breakdown_of(breakdown, st.gpus);
    out.stages.push_back(std::move(st));
  }

  // Links that carried traffic.
  for (const LinkUsage& u : network->link_usage()) {
    if (u.bytes.count() == 0 && u.transfers == 0) continue;
    const LinkInfo& li = topology.link(u.link);
    LinkSummary ls;
    ls.link = u.link;
    ls.src = topology.vertex(li.from).name;
    ls.dst = topology.vertex(li.to).name;
    ls.name = ls.src + "->" + ls.dst;
    ls.link_class = std::string(to_string(li.link_class));
    ls.bytes = u.bytes.as_double();
    ls.busy_s = u.busy.seconds();
    ls.utilisation = latency_s > 0.0 ? ls.busy_s / latency_s : 0.0;
    out.links.push_back(std::move(ls));
  }
  out.transfers = network->stats().transfers_delivered;
  out.events = sim.events_executed();
  if (options.trace != nullptr) fill_trace(*options.trace, executor, out.gpus_used, out);
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return out;
}

nlohmann::json strategy_json(const Strategy& st) {
  return {{"tp", st.tp},
          {"pp", st.pp},
          {"dp", st.dp},
          {"ep", st.ep},
          {"etp", st.etp},
          {"microbatches", st.microbatches},
          {"convention", std::string(to_string(st.convention))},
          {"order", to_string(st.order)},
          {"attention_dp", st.attention_dp()},
          {"expert_dp", st.expert_dp()},
          {"description", st.describe()}};
}

RunContext run_context(const Config& config, const Topology& topology, const ModelSpec& model, const GpuSpec& gpu,
                       const Strategy& strategy, const ValidationResult& validation, const NetworkParams& network) {
  RunContext c;
  c.seed = config.has("run.seed") ? static_cast<std::uint64_t>(config.get_int("run.seed")) : 0;
  c.run = config.has("run.run") ? static_cast<std::uint64_t>(config.get_int("run.run")) : 0;
  c.gpus = topology.gpu_count();
  c.gpus_used = strategy.world_size();
  c.strategy = strategy;
  c.model = describe(model);
  c.gpu = gpu.name;
  c.topology = topology.name.empty() ? std::string("custom") : topology.name;
  c.network = std::string(to_string(network.model)) + " (" + network.provenance + ")";
  c.notes = validation.notes;
  return c;
}

nlohmann::json context_json(const RunContext& c, std::string_view mode) {
  nlohmann::json j;
  j["mode"] = std::string(mode);
  j["seed"] = c.seed;
  j["gpus"] = c.gpus;
  j["gpus_used"] = c.gpus_used;
  j["model"] = c.model;
  j["gpu"] = c.gpu;
  j["topology"] = c.topology;
  j["network"] = c.network;
  j["notes"] = c.notes;
  j["strategy"] = strategy_json(c.strategy);
  return j;
}

Hdf5Writer open_run_results(const std::filesystem::path& path, std::uint64_t seed, const std::string& scenario_ini,
                            const std::string& command, const nlohmann::json& summary) {
  Hdf5Writer w(path);
  Provenance p;
  p.kind = "run";
  p.seed = seed;
  p.scenario_ini = scenario_ini;
  p.command = command;
  write_provenance(w, p);
  write_json_attributes(w, schema::kSummary, summary);
  return w;
}

nlohmann::json to_json(const RunSummary& s) {
  using nlohmann::json;
  json j = context_json(s, "batch");
  j["workload"] = {{"kind", "batch"},
                   {"sequences", s.sequences},
                   {"prompt_tokens", s.prompt_tokens},
                   {"input_tokens", s.input_tokens},
                   {"output_tokens", s.output_tokens}};
  j["latency_s"] = s.latency.seconds();
  j["throughput"] = {{"tokens_per_s", s.tokens_per_s},
                     {"output_tokens_per_s", s.output_tokens_per_s},
                     {"sequences_per_s", s.sequences_per_s}};
  {
    std::vector<double> sorted = s.first_token_s;
    std::sort(sorted.begin(), sorted.end());
    const double mean =
        sorted.empty() ? 0.0 : std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
    j["ttft_s"] = {{"mean", mean},
                   {"p50", percentile(sorted, 0.50)},
                   {"p90", percentile(sorted, 0.90)},
                   {"p99", percentile(sorted, 0.99)}};
    // One prefill iteration has no decode steps: TPOT is undefined.
    j["tpot_s"] = {{"mean", nullptr}, {"p50", nullptr}, {"p90", nullptr}, {"p99", nullptr}};
  }
  {
    const MemoryBreakdown& mx = s.memory.max();
    json breakdown = json::object();
    for (const auto& [k, v] : mx.items()) breakdown[k] = v.count();
    json per_stage = json::array();
    for (const auto& st : s.memory.stages) per_stage.push_back(st.total().count());
    j["memory_per_gpu_bytes"] = {{"max", mx.total().count()},
                                 {"capacity", s.memory.capacity.count()},
                                 {"stage", mx.stage},
                                 {"breakdown", breakdown},
                                 {"per_stage", per_stage}};
  }
  json tb = json::object();
  json tb_stats = json::object();
  for (TimeKind k : kKinds) {
    tb[std::string(to_string(k))] = s.breakdown[k].mean;
    tb_stats[std::string(to_string(k))] = stats_json(s.breakdown[k]);
  }
  j["time_breakdown"] = tb;
  j["time_breakdown_stats"] = tb_stats;
  json stages = json::array();
  for (const auto& st : s.stages) {
    json row = {{"stage", st.stage}, {"layers", st.layers}, {"gpus", st.gpus.size()}};
    for (TimeKind k : kKinds) row[std::string(to_string(k))] = st.breakdown[k].mean;
    stages.push_back(row);
  }
  j["time_breakdown_per_stage"] = stages;
  j["bubble_fraction"] = s.bubble_fraction;
  j["collective_wait_fraction"] = s.collective_wait_fraction;
  json busy = json::object();
  for (std::size_t c = 0; c < s.busy_s.size(); ++c) {
    if (s.busy_s[c] > 0.0) busy[std::string(to_string(static_cast<OpCategory>(c)))] = s.busy_s[c];
  }
  j["busy_s_per_gpu"] = busy;
  {
    json per_layer = json::array();
    for (std::size_t i = 0; i < s.expert_load.layers.size(); ++i) {
      per_layer.push_back({{"layer", s.expert_load.layers[i]}, {"imbalance", s.expert_load.imbalance(i)}});
    }
    j["expert_load_imbalance"] = {{"mean", s.expert_load.mean_imbalance()},
                                  {"max", s.expert_load.max_imbalance()},
                                  {"worst_ep_rank", s.worst_rank_imbalance},
                                  {"dropped_assignments", s.expert_load.dropped},
                                  {"per_layer", per_layer}};
  }
  j["ops"] = s.ops;
  j["collectives"] = s.collectives;
  j["transfers"] = s.transfers;
  j["events"] = s.events;
  j["wall_s"] = s.wall_s;
  return j;
}

std::string format_report(const RunSummary& s) {
  std::ostringstream o;
  o << "moesim run: batch mode (one prefill iteration)\n\n";
  o << "  model     " << s.model << "\n";
  o << "  cluster   " << s.topology << ": " << s.gpus << " x " << s.gpu << "; network " << s.network << "\n";
  o << "  strategy  " << s.strategy.describe() << "; " << s.gpus_used << " of " << s.gpus << " GPUs used\n";
  o << "  workload  " << s.sequences << " sequences x " << s.prompt_tokens << " prompt tokens (prefill), seed "
    << s.seed << "\n\n";

  o << "Iteration latency     " << time_text(s.latency) << "\n";
  o << "Throughput            " << si(s.tokens_per_s) << "tokens/s (input + output), " << si(s.output_tokens_per_s)
    << "output tokens/s, " << si(s.sequences_per_s) << "sequences/s\n";
  if (!s.first_token_s.empty()) {
    std::vector<double> sorted = s.first_token_s;
    std::sort(sorted.begin(), sorted.end());
    o << "First token           p50 " << time_text(Duration::from_seconds(percentile(sorted, 0.5))) << ", p99 "
      << time_text(Duration::from_seconds(percentile(sorted, 0.99))) << " (each micro-batch's LM head)\n";
  }
  o << "\nMemory per GPU (capacity " << fixed(s.memory.capacity.as_double() / static_cast<double>(1LL << 30), 1)
    << " GiB)\n"
    << format_memory_table(s.memory) << "\n";

  o << "\nTime breakdown (fraction of each GPU's time over the iteration, " << s.gpus_used << " GPUs)\n";
  o << "  " << pad("", 24) << pad("min", 10) << pad("mean", 10) << "max\n";
  for (TimeKind k : kKinds) {
    o << "  " << pad(std::string(to_string(k)), 24) << pad(pct(s.breakdown[k].min), 10)
      << pad(pct(s.breakdown[k].mean), 10) << pct(s.breakdown[k].max) << "\n";
  }
  if (s.stages.size() > 1) {
    o << "  per stage (mean):\n  " << pad("stage", 8) << pad("layers", 8);
    for (TimeKind k : kKinds) o << pad(std::string(to_string(k)).substr(0, 13), 15);
    o << "\n";
    for (const auto& st : s.stages) {
      o << "  " << pad(std::to_string(st.stage), 8) << pad(std::to_string(st.layers), 8);
      for (TimeKind k : kKinds) o << pad(pct(st.breakdown[k].mean), 15);
      o << "\n";
    }
  }
  o << "Bubble fraction       " << pct(s.bubble_fraction)
    << " (measured: time a GPU waits while work is pending elsewhere)\n";
  o << "Waiting at collectives " << pct(s.collective_wait_fraction)
    << " of GPU time (inside all_to_all / communication_exposed)\n";
  o << "Busy per GPU (mean)  ";
  for (std::size_t c = 0; c < s.busy_s.size(); ++c) {
    if (s.busy_s[c] <= 0.0) continue;
    o << " " << to_string(static_cast<OpCategory>(c)) << " " << time_text(Duration::from_seconds(s.busy_s[c])) << ";";
  }
  o << "\n";
  if (!s.expert_load.layers.empty()) {
    o << "Expert load imbalance max/mean tokens per expert: mean over " << s.expert_load.layers.size()
      << " MoE layers " << fixed(s.expert_load.mean_imbalance(), 3) << ", max " << fixed(s.expert_load.max_imbalance(), 3)
      << "; slowest EP rank / mean " << fixed(s.worst_rank_imbalance, 3);
    if (s.expert_load.dropped > 0) o << "; " << s.expert_load.dropped << " assignments dropped";
    o << "\n";
  }
  o << "\nSimulation            " << s.events << " events, " << s.ops << " ops (" << s.collectives << " collectives, "
    << s.transfers << " transfers), wall " << fixed(s.wall_s, 3) << " s\n";
  if (!s.notes.empty()) {
    o << "Notes\n";
    for (const auto& n : s.notes) o << "  - " << n << "\n";
  }
  return o.str();
}

void write_results(const std::filesystem::path& path, const RunSummary& s, const std::string& scenario_ini,
                   const std::string& command) {
  Hdf5Writer w = open_run_results(path, s.seed, scenario_ini, command, to_json(s));

  {
    std::vector<std::int64_t> gpu, stage;
    std::array<std::vector<double>, kTimeKindCount> parts;
    std::vector<double> wait;
    std::vector<std::int64_t> stage_of(s.per_gpu.size(), -1);
    for (const auto& st : s.stages)
      for (GpuId g : st.gpus)
        if (static_cast<std::size_t>(g) < stage_of.size()) stage_of[static_cast<std::size_t>(g)] = st.stage;
    for (std::size_t g = 0; g < s.per_gpu.size(); ++g) {
      gpu.push_back(static_cast<std::int64_t>(g));
      stage.push_back(stage_of[g]);
      for (TimeKind k : kKinds) parts[static_cast<std::size_t>(k)].push_back(s.per_gpu[g][k].seconds());
      wait.push_back(s.per_gpu[g].collective_wait.seconds());
    }
    std::vector<Column> cols;
    cols.push_back({"gpu", gpu, ""});
    for (TimeKind k : kKinds) {
      cols.push_back({std::string(to_string(k)) + "_s", parts[static_cast<std::size_t>(k)], "s"});
    }
    cols.push_back({"stage", stage, ""});
    cols.push_back({"collective_wait_s", wait, "s"});
    write_table(w, schema::kBreakdown, std::move(cols));
  }
  {
    std::vector<std::int64_t> link;
    std::vector<std::string> name, cls, src, dst;
    std::vector<double> bytes, busy, util;
    for (const auto& l : s.links) {
      link.push_back(l.link);
      name.push_back(l.name);
      cls.push_back(l.link_class);
      src.push_back(l.src);
      dst.push_back(l.dst);
      bytes.push_back(l.bytes);
      busy.push_back(l.busy_s);
      util.push_back(l.utilisation);
    }
    write_table(w, schema::kLinks,
                {{"link", link, ""},
                 {"name", name, ""},
                 {"class", cls, ""},
                 {"src", src, ""},
                 {"dst", dst, ""},
                 {"bytes", bytes, "B"},
                 {"busy_s", busy, "s"},
                 {"utilisation", util, "1"}});
  }
  {
    const std::size_t n = s.first_token_s.size();
    std::vector<std::int64_t> id(n), prompt(n, s.prompt_tokens), output(n, 1);
    std::iota(id.begin(), id.end(), 0);
    const std::vector<double> zero(n, 0.0), nan(n, std::numeric_limits<double>::quiet_NaN());
    write_table(w, schema::kRequests,
                {{"id", id, ""},
                 {"arrival_s", zero, "s"},
                 {"prompt_tokens", prompt, "tokens"},
                 {"output_tokens", output, "tokens"},
                 {"first_token_s", s.first_token_s, "s"},
                 {"end_s", s.first_token_s, "s"},
                 {"ttft_s", s.first_token_s, "s"},
                 {"tpot_s", nan, "s"},
                 {"queue_s", zero, "s"}});
  }
  if (!s.expert_load.layers.empty()) {
    const std::size_t rows = s.expert_load.layers.size();
    const std::size_t cols = s.expert_load.expert_tokens.front().size();
    std::vector<std::int64_t> load;
    load.reserve(rows * cols);
    for (const auto& row : s.expert_load.expert_tokens) load.insert(load.end(), row.begin(), row.end());
    w.write_matrix(schema::kExpertLoad, load, rows, cols, DatasetOptions{"tokens", Compression::kAuto});
    std::vector<double> imb;
    for (std::size_t i = 0; i < rows; ++i) imb.push_back(s.expert_load.imbalance(i));
    w.write_dataset(schema::kExpertImbalance, std::span<const double>(imb));
    w.write_dataset(std::string(schema::kExperts) + "/layers", std::span<const std::int64_t>(s.expert_load.layers));
  }
  w.commit();
}

}  // namespace moesim::analysis
