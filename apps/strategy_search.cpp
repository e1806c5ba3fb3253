#include "apps/strategy_search.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "analysis/hdf5_writer.hpp"
#include "analysis/run_report.hpp"
#include "analysis/serving_run.hpp"
#include "sim/compute_model.hpp"
#include "sim/executor.hpp"
#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"
#include "workloads/iteration_timer.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/plan_builder.hpp"
#include "workloads/serving_options.hpp"
#include "workloads/serving_sim.hpp"
#include "workloads/workload_options.hpp"

namespace moesim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::size_t uz(std::int64_t v) { return static_cast<std::size_t>(v); }

double statistic_of(std::vector<double> v, const std::string& statistic) {
  if (v.empty()) return 0.0;
  if (statistic == "mean") return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  std::sort(v.begin(), v.end());
  const double q = statistic == "p50" ? 0.50 : statistic == "p90" ? 0.90 : 0.99;
  // Nearest-rank percentile (the convention of the run report).
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Coefficient of variation of tokens per expert, mean over MoE layers.
std::optional<double> load_cv(const ExpertLoad& load) {
  double sum = 0.0;
  std::size_t n = 0;
  for (const auto& row : load.expert_tokens) {
    if (row.empty()) continue;
    double mean = 0.0;
    for (std::int64_t t : row) mean += static_cast<double>(t);
    mean /= static_cast<double>(row.size());
    if (mean <= 0.0) continue;
    double var = 0.0;
    for (std::int64_t t : row) var += (static_cast<double>(t) - mean) * (static_cast<double>(t) - mean);
    var /= static_cast<double>(row.size());
    sum += std::sqrt(var) / mean;
    ++n;
  }
  if (n == 0) return std::nullopt;
  return sum / static_cast<double>(n);
}

std::string mode_of(const Config& c) { return c.get_string("workload.kind"); }

// ---------------------------------------------------------------------------
// Enumeration.
// ---------------------------------------------------------------------------

std::vector<std::int64_t> divisors(std::int64_t n) {
  std::vector<std::int64_t> out;
  for (std::int64_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

std::vector<Strategy> enumerate_plans(const ModelSpec& m, std::int64_t gpus, const Strategy& base,
                                      const SearchOptions& opt, bool batch_mode, std::int64_t batch) {
  std::vector<Strategy> out;
  auto micro_options = [&](std::int64_t pp, std::int64_t replicas) {
    std::vector<std::int64_t> ms;
    if (!batch_mode || pp == 1) {
      ms.push_back(batch_mode ? 1 : pp);
      return ms;
    }
    const std::int64_t per_replica = (batch + replicas - 1) / replicas;
    for (std::int64_t k : {1, 2, 4}) {
      if (k == 1 || pp * k <= per_replica) ms.push_back(pp * k);
    }
    return ms;
  };
  for (std::int64_t tp : divisors(gpus)) {
    if (m.heads % tp != 0 || m.hidden % tp != 0) continue;
    for (std::int64_t pp : divisors(gpus / tp)) {
      if (pp > m.layers || m.layers % pp != 0) continue;
      for (std::int64_t etp : divisors(tp)) {
        if (m.expert_ffn % etp != 0) continue;
        for (std::int64_t ep : divisors(m.experts)) {
          for (Convention conv : {Convention::kFolded, Convention::kOrthogonal}) {
            if (conv == Convention::kFolded && !opt.folded) continue;
            if (conv == Convention::kOrthogonal && !opt.orthogonal) continue;
            std::int64_t dp = 0;
            if (conv == Convention::kFolded) {
              dp = gpus / (tp * pp);
              if ((tp * dp) % (ep * etp) != 0) continue;
            } else {
              if ((gpus / (tp * pp)) % ep != 0) continue;
              dp = gpus / (tp * pp * ep);
            }
            Strategy s = base;
            s.tp = tp;
            s.pp = pp;
            s.ep = ep;
            s.etp = etp;
            s.dp = dp;
            s.convention = conv;
            s.layers_per_stage.clear();
            for (std::int64_t mb : micro_options(pp, s.attention_dp())) {
              s.microbatches = mb;
              out.push_back(s);
            }
          }
        }
      }
    }
  }
  return out;
}

bool same_plan(const Strategy& a, const Strategy& b) {
  return a.tp == b.tp && a.pp == b.pp && a.dp == b.dp && a.ep == b.ep && a.etp == b.etp &&
         a.microbatches == b.microbatches && a.convention == b.convention && a.order == b.order &&
         a.layers_per_stage == b.layers_per_stage;
}

// ---------------------------------------------------------------------------
// Screening: one engine, analytical network (see the header).
// ---------------------------------------------------------------------------

struct Scenario {
  ModelSpec model;
  GpuSpec gpu;
  Topology topology;
  NetworkParams screen_network;
  MemoryOptions memory;
  RoutingConfig routing;
  std::uint64_t seed = 0;
  std::uint64_t run = 0;
  std::string mode;
  std::string statistic = "mean";
  bool extrapolate_layers = true;
  // batch
  std::int64_t batch = 64;
  std::int64_t prompt = 1024;
  std::optional<double> batch_latency_slo;  // slo.ttft when the scenario sets it
  // serving
  double rate = 1.0;
  double mean_prompt = 1024.0;
  double mean_output = 256.0;
  std::int64_t max_seqs = 256;
  std::int64_t max_batched_tokens = 8192;
  std::int64_t kv_block_tokens = 16;
  double slo_ttft = 1.0;
  double slo_tpot = 0.1;
};

struct ScreenResult {
  double tokens_per_s = 0.0;           // batch: the batch's tokens / latency; serving: at the scenario's rate
  double capacity_tokens_per_s = 0.0;  // serving: the saturation estimate
  double ttft_s = kInf;
  double tpot_s = 0.0;
  double sequences_per_s = 0.0;
  bool meets_slo = false;
};

// Times `d` (whose non-engine-0 replicas are empty) with the screening network.
struct Timed {
  Duration latency{};
  Duration period{};  // the longest stage span: the pipeline's issue interval
};

Timed execute(const Scenario& sc, const Topology& topology, const RankMapping& mapping, PlanBuilder& builder,
              BatchDescription d) {
  BuiltPlan built = builder.build(d);
  Simulator sim;
  const std::unique_ptr<NetworkModel> net = make_network(sc.screen_network, sim, topology);
  CollectiveEngine collectives(sim, *net);
  Executor exec(sim, collectives, std::move(built.plan));
  exec.run();
  Timed t;
  t.latency = exec.makespan();
  std::vector<Duration> begin(uz(mapping.stages()), Duration::max());
  std::vector<Duration> end(uz(mapping.stages()), Duration::zero());
  const Plan& plan = exec.plan();
  for (OpId op = 0; op < static_cast<OpId>(plan.size()); ++op) {
    const GpuId g = gpu_of_lane(plan.lanes(op).front());
    if (g >= mapping.world_size()) continue;
    const auto s = uz(mapping.stage_of(g));
    begin[s] = std::min(begin[s], exec.begin_time(op) - exec.start_time());
    end[s] = std::max(end[s], exec.end_time(op) - exec.start_time());
  }
  for (std::size_t s = 0; s < begin.size(); ++s) {
    if (begin[s] != Duration::max()) t.period = std::max(t.period, end[s] - begin[s]);
  }
  return t;
}

// The screening iterations of one plan: batch mode the prefill of the batch,
// serving a prefill and a decode iteration; engine 0's replicas only.
struct ScreenShape {
  std::int64_t prompt = 1;
  std::int64_t output = 1;
  std::int64_t chunk = 1;           // prefill tokens per sequence per iteration
  std::int64_t n_prefill = 1;       // prefill sequences per replica per iteration
  std::int64_t decode_seqs = 1;     // decode sequences per replica per iteration
};

std::vector<Timed> time_iterations(const Scenario& sc, const Topology& topology, const ModelSpec& model,
                                   const Strategy& s, const ScreenShape& shape) {
  const RankMapping mapping(model, s);
  const ComputeModel compute(sc.gpu);
  const ExpertRouter router(sc.routing, model, RandomStreams(sc.seed, sc.run));
  const EngineLayout layout = engine_layout(mapping);
  PlanBuilder builder(model, mapping, compute, router,
                      PlanBuilderOptions{static_cast<std::int32_t>(topology.gpu_count()), {}, {}});
  const std::vector<std::int32_t>& engine0 = layout.replicas.front();
  const std::int64_t adp = mapping.attention_dp();
  std::vector<Timed> out;
  if (sc.mode == "batch") {
    const std::set<std::int32_t> members(engine0.begin(), engine0.end());
    BatchDescription d = BatchDescription::prefill(sc.batch, sc.prompt, adp, s.microbatches);
    for (std::int64_t rep = 0; rep < adp; ++rep) {
      if (members.count(static_cast<std::int32_t>(rep)) != 0) continue;
      for (auto& mb : d.replicas[uz(rep)]) mb.sequences.clear();
    }
    out.push_back(execute(sc, topology, mapping, builder, std::move(d)));
    return out;
  }
  auto batch_of = [&](const SequenceChunk& c, std::int64_t n) {
    BatchDescription d;
    d.replicas.assign(uz(adp), std::vector<MicroBatchWork>(1));
    for (std::int32_t rep : engine0) d.replicas[uz(rep)][0].sequences.assign(uz(n), c);
    return d;
  };
  out.push_back(execute(sc, topology, mapping, builder,
                        batch_of(SequenceChunk{shape.chunk, 0, shape.chunk == shape.prompt}, shape.n_prefill)));
  out.push_back(execute(sc, topology, mapping, builder,
                        batch_of(SequenceChunk{1, shape.prompt + shape.output / 2, true}, shape.decode_seqs)));
  return out;
}

// Layer extrapolation: every MoE layer of a stage has the same shape, so with
// balanced routing and an uncontended (analytical) network an iteration's
// latency and stage span are affine in the layers per stage, L:
// t(L) = t(1) + (t(2) - t(1)) x (L - 1). The screening times models of 1 and
// 2 layers per stage and extrapolates, instead of simulating every layer
// (3 layer-units instead of L per stage). Used only when it is exact by that
// argument: no dense layers, an even split, L > 2, the analytical network.
std::vector<Timed> screen_timings(const Scenario& sc, const Topology& topology, const Strategy& s,
                                  const ScreenShape& shape) {
  const std::int64_t lps = s.pp > 0 ? sc.model.layers / s.pp : 0;
  const bool affine = sc.extrapolate_layers && sc.model.dense_layers == 0 && s.layers_per_stage.empty() && sc.model.layers % s.pp == 0 &&
                      lps > 2 && sc.screen_network.model == NetworkModelKind::kAnalytical;
  if (!affine) return time_iterations(sc, topology, sc.model, s, shape);
  ModelSpec one = sc.model;
  one.layers = s.pp;
  ModelSpec two = sc.model;
  two.layers = 2 * s.pp;
  const std::vector<Timed> t1 = time_iterations(sc, topology, one, s, shape);
  const std::vector<Timed> t2 = time_iterations(sc, topology, two, s, shape);
  std::vector<Timed> out(t1.size());
  for (std::size_t i = 0; i < t1.size(); ++i) {
    out[i].latency = t1[i].latency + (t2[i].latency - t1[i].latency) * (lps - 1);
    out[i].period = t1[i].period + (t2[i].period - t1[i].period) * (lps - 1);
  }
  return out;
}

// `topology` is the calling thread's own (a Topology caches routes and must
// not be routed from several threads; topology/topology.hpp).
ScreenResult screen(const Scenario& sc, const Topology& topology, const Strategy& s) {
  ScreenResult r;
  ScreenShape shape;
  if (sc.mode == "batch") {
    const Timed t = screen_timings(sc, topology, s, shape).front();
    const double lat = t.latency.seconds();
    r.ttft_s = lat;
    r.tokens_per_s = static_cast<double>(sc.batch * (sc.prompt + 1)) / lat;
    r.sequences_per_s = static_cast<double>(sc.batch) / lat;
    r.meets_slo = !sc.batch_latency_slo || lat <= *sc.batch_latency_slo;
    return r;
  }
  // Serving: a prefill iteration and a decode iteration on engine 0.
  shape.prompt = static_cast<std::int64_t>(std::llround(std::max(1.0, sc.mean_prompt)));
  shape.output = static_cast<std::int64_t>(std::llround(std::max(1.0, sc.mean_output)));
  shape.chunk = std::min(shape.prompt, sc.max_batched_tokens);
  shape.n_prefill = std::max<std::int64_t>(1, std::min(sc.max_seqs, sc.max_batched_tokens / shape.chunk));
  const KvCapacity kv = kv_capacity(sc.model, s, sc.gpu, sc.memory, sc.max_batched_tokens, sc.kv_block_tokens);
  shape.decode_seqs = std::max<std::int64_t>(
      1, std::min(sc.max_seqs, kv.tokens / std::max<std::int64_t>(1, shape.prompt + shape.output)));
  const std::vector<Timed> t = screen_timings(sc, topology, s, shape);
  const Timed& pre = t[0];
  const Timed& dec = t[1];
  // Replica time per request: its prompt's share of prefill iterations and
  // its output's share of decode iterations (issue intervals: with PP > 1 the
  // stages overlap successive iterations).
  const double tokens_per_prefill = static_cast<double>(shape.n_prefill * shape.chunk);
  const double per_request =
      static_cast<double>(shape.prompt) / tokens_per_prefill * pre.period.seconds() +
      static_cast<double>(shape.output) / static_cast<double>(shape.decode_seqs) * dec.period.seconds();
  const double mu = 1.0 / per_request;                          // requests/s per replica
  const double adp = static_cast<double>(s.attention_dp());
  const double capacity = mu * adp;                              // requests/s, cluster
  const double served = std::min(sc.rate, capacity);
  r.sequences_per_s = served;
  r.tokens_per_s = served * (sc.mean_prompt + sc.mean_output);
  r.capacity_tokens_per_s = capacity * (sc.mean_prompt + sc.mean_output);
  r.tpot_s = dec.latency.seconds();
  const double prefill_iterations = std::ceil(static_cast<double>(shape.prompt) / static_cast<double>(shape.chunk));
  if (sc.rate < capacity) {
    // M/D/1 waiting time of one replica (Pollaczek-Khinchine with
    // deterministic service 1/mu): W = rho / (2 mu (1 - rho)).
    const double rho = sc.rate / capacity;
    r.ttft_s = rho / (2.0 * mu * (1.0 - rho)) + prefill_iterations * pre.latency.seconds();
  }
  r.meets_slo = r.ttft_s <= sc.slo_ttft && r.tpot_s <= sc.slo_tpot;
  return r;
}

Scenario scenario_of(const Config& c, const SearchOptions& opt) {
  Scenario sc;
  sc.model = model_from_config(c);
  sc.gpu = gpu_from_config(c);
  sc.topology = topology_from_config(c);
  sc.screen_network = network_params_from_config(c, sc.topology);
  if (opt.screening_network == "analytical") {
    sc.screen_network.model = NetworkModelKind::kAnalytical;
  } else if (opt.screening_network == "flow") {
    sc.screen_network.model = NetworkModelKind::kFlow;
  } else {
    throw InputError("screening network must be 'analytical' or 'flow', not '" + opt.screening_network + "'");
  }
  sc.extrapolate_layers = opt.extrapolate_layers;
  sc.memory = memory_options_from_config(c);
  // Screening routes tokens with `balanced` (closed form): sampling every
  // token's experts (uniform, zipf, ...) costs O(tokens x top_k x layers) per
  // plan and dominated the screening time; the final pass uses the
  // scenario's own routing. (Capacity factor and drops are kept.)
  sc.routing = routing_from_config(c);
  sc.routing.distribution = RoutingDistribution::kBalanced;
  sc.seed = static_cast<std::uint64_t>(c.get_int("run.seed"));
  sc.run = static_cast<std::uint64_t>(c.get_int("run.run"));
  sc.mode = mode_of(c);
  if (c.registry().find("claims.statistic") != nullptr) sc.statistic = c.get_string("claims.statistic");
  sc.batch = c.get_int("workload.batch");
  sc.prompt = c.get_int("workload.prompt_tokens");
  if (c.registry().find("slo.ttft") != nullptr && c.is_set("slo.ttft")) {
    sc.batch_latency_slo = c.get_duration("slo.ttft").seconds();
  }
  if (sc.mode == "serving") {
    const ServingOptions so = serving_options_from_config(c);
    sc.rate = so.stream.rate;
    sc.mean_prompt = static_cast<double>(c.get_int("workload.prompt_tokens"));
    sc.mean_output = static_cast<double>(c.get_int("workload.output_tokens"));
    sc.max_seqs = so.scheduler.max_seqs;
    sc.max_batched_tokens = so.scheduler.max_batched_tokens;
    sc.kv_block_tokens = so.scheduler.kv_block_tokens;
    sc.slo_ttft = so.slo.ttft.seconds();
    sc.slo_tpot = so.slo.tpot.seconds();
  }
  return sc;
}

void set_strategy(Config& c, const Strategy& s) {
  const std::string src = "strategy search";
  c.set("strategy.tp", std::to_string(s.tp), src);
  c.set("strategy.pp", std::to_string(s.pp), src);
  c.set("strategy.dp", std::to_string(s.dp), src);
  c.set("strategy.ep", std::to_string(s.ep), src);
  c.set("strategy.etp", std::to_string(s.etp), src);
  c.set("strategy.microbatches", std::to_string(s.microbatches), src);
  c.set("strategy.convention", std::string(to_string(s.convention)), src);
}

// Strict ordering for the final ranking (see the header): plans meeting the
// SLO first; among them those within 1 % of the top throughput by TTFT /
// latency; then by throughput.
void rank_rows(std::vector<SearchRow>& rows) {
  double top = 0.0;
  for (const SearchRow& r : rows) {
    if (r.valid && r.meets_slo) top = std::max(top, r.tokens_per_s);
  }
  auto tier = [&](const SearchRow& r) {
    if (!r.valid) return 3;
    if (r.meets_slo && r.tokens_per_s >= 0.99 * top) return 0;
    return r.meets_slo ? 1 : 2;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const SearchRow& a, const SearchRow& b) {
    const int ta = tier(a);
    const int tb = tier(b);
    if (ta != tb) return ta < tb;
    if (ta == 0 && a.ttft_s != b.ttft_s) return a.ttft_s < b.ttft_s;
    if (a.tokens_per_s != b.tokens_per_s) return a.tokens_per_s > b.tokens_per_s;
    if (a.ttft_s != b.ttft_s) return a.ttft_s < b.ttft_s;
    return a.description < b.description;
  });
  std::int64_t rank = 0;
  for (SearchRow& r : rows) r.rank = r.valid ? ++rank : 0;
  // Pareto front over (throughput up, TTFT/latency down).
  for (SearchRow& r : rows) {
    if (!r.valid) continue;
    r.pareto = std::none_of(rows.begin(), rows.end(), [&](const SearchRow& o) {
      return o.valid && o.tokens_per_s >= r.tokens_per_s && o.ttft_s <= r.ttft_s &&
             (o.tokens_per_s > r.tokens_per_s || o.ttft_s < r.ttft_s);
    });
  }
}

std::string fmt(double v, int prec = 4) {
  if (std::isinf(v)) return "inf";
  std::ostringstream o;
  o.precision(prec);
  o << v;
  return o.str();
}

}  // namespace

// ---------------------------------------------------------------------------
// Simulation adaptor.
// ---------------------------------------------------------------------------

PerformanceMetrics simulate_performance(const Config& config, const std::string& statistic) {
  PerformanceMetrics p;
  p.mode = mode_of(config);
  if (p.mode == "batch") {
    const analysis::RunSummary s = analysis::run_batch(config);
    p.latency_s = s.latency.seconds();
    p.tokens_per_s = s.tokens_per_s;
    p.output_tokens_per_s = s.output_tokens_per_s;
    p.sequences_per_s = s.sequences_per_s;
    p.ttft_s = statistic_of(s.first_token_s, statistic);
    p.gpu_utilization = s.breakdown[analysis::TimeKind::kCompute].mean;
    p.expert_load_cv = load_cv(s.expert_load);
    if (!s.expert_load.expert_tokens.empty()) p.expert_load_imbalance = s.expert_load.mean_imbalance();
    p.note = std::to_string(s.sequences) + " x " + std::to_string(s.prompt_tokens) + "-token prefill, " + s.network;
    return p;
  }
  const analysis::ServingRun run = analysis::run_serving(config);
  const analysis::ServingSummary& s = run.summary;
  auto stat = [&](const analysis::LatencyStats& l) {
    if (statistic == "p50") return l.p50;
    if (statistic == "p90") return l.p90;
    if (statistic == "p99") return l.p99;
    return l.mean;
  };
  p.tokens_per_s = s.tokens_per_s;
  p.output_tokens_per_s = s.output_tokens_per_s;
  p.sequences_per_s = s.requests_per_s;
  p.ttft_s = stat(s.ttft);
  if (s.tpot.count > 0) p.tpot_s = stat(s.tpot);
  p.latency_s = stat(s.e2e);
  p.meets_slo = s.meets_slo;
  p.slo_attainment = s.slo_attainment;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld requests at %.4g requests/s offered, %lld measured, SLO attainment %.3g",
                static_cast<long long>(s.total_requests), run.options.stream.rate,
                static_cast<long long>(s.measured_requests), s.slo_attainment);
  p.note = std::string(buf) + "; " + run.network;
  return p;
}

// ---------------------------------------------------------------------------
// The search.
// ---------------------------------------------------------------------------

std::function<void(std::size_t, std::size_t)> stderr_progress_bar(const std::string& label) {
  struct State {
    std::mutex mutex;
    int shown = -1;
  };
  auto state = std::make_shared<State>();
  return [state, label](std::size_t done, std::size_t total) {
    const int pct = total == 0 ? 100 : static_cast<int>((100 * done) / total);
    const std::lock_guard<std::mutex> lock(state->mutex);
    if (pct == state->shown) return;
    state->shown = pct;
    const int width = 30;
    const int filled = pct * width / 100;
    std::fprintf(stderr, "\r%s: [%s%s] %zu/%zu plans (%d%%)", label.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total, pct);
    if (done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

const SearchRow* SearchResult::best() const {
  for (const SearchRow& r : rows) {
    if (r.valid && r.rank == 1) return &r;
  }
  return nullptr;
}

SearchResult run_strategy_search(const Config& base, const SearchOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.final_network != "scenario" && options.final_network != "analytical") {
    throw InputError("final network must be 'scenario' or 'analytical', not '" + options.final_network + "'");
  }
  const Scenario sc = scenario_of(base, options);
  SearchResult result;
  result.mode = sc.mode;
  result.cluster_gpus = sc.topology.gpu_count();
  result.model = describe(sc.model);
  const Strategy scenario_plan = strategy_from_config(base, result.cluster_gpus);

  std::vector<Strategy> plans =
      enumerate_plans(sc.model, result.cluster_gpus, scenario_plan, options, sc.mode == "batch", sc.batch);
  std::optional<std::size_t> own;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (same_plan(plans[i], scenario_plan)) own = i;
  }
  if (!own) {
    plans.push_back(scenario_plan);  // e.g. a plan that leaves GPUs unused
    own = plans.size() - 1;
  }
  result.candidates = plans.size();

  std::vector<SearchRow> rows(plans.size());
  for (std::size_t i = 0; i < plans.size(); ++i) {
    SearchRow& r = rows[i];
    r.strategy = plans[i];
    r.description = plans[i].describe();
    r.is_scenario_plan = i == *own;
    const WorkloadShape shape = scenario_memory_shape(base, plans[i]);
    const ValidationResult v =
        validate(sc.model, plans[i], result.cluster_gpus, sc.gpu, shape, sc.memory);
    r.valid = v.ok();
    if (!r.valid) r.invalid_reason = v.violations.front().substr(0, v.violations.front().find('\n'));
  }

  // Screening on a thread pool; each plan's result lands in its own slot.
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].valid) todo.push_back(i);
  }
  unsigned threads = options.threads != 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, todo.size())));
  result.threads = threads;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  auto worker = [&]() {
    const Topology topology = topology_from_config(base);  // this thread's own (route cache)
    for (std::size_t k = next.fetch_add(1); k < todo.size(); k = next.fetch_add(1)) {
      SearchRow& r = rows[todo[k]];
      try {
        const ScreenResult s = screen(sc, topology, r.strategy);
        r.screen_tokens_per_s = s.tokens_per_s;
        r.screen_ttft_s = s.ttft_s;
        r.screen_meets_slo = s.meets_slo;
        r.tokens_per_s = s.tokens_per_s;
        r.capacity_tokens_per_s = s.capacity_tokens_per_s;
        r.ttft_s = s.ttft_s;
        r.tpot_s = s.tpot_s;
        r.sequences_per_s = s.sequences_per_s;
        r.meets_slo = s.meets_slo;
      } catch (const InputError& e) {
        r.valid = false;
        r.invalid_reason = std::string("screening: ") + e.what();
      } catch (const std::exception& e) {
        // A bug, not bad input: recorded (never thrown across the thread).
        r.valid = false;
        r.invalid_reason = std::string("internal error in screening: ") + e.what();
      }
      const std::size_t d = done.fetch_add(1) + 1;
      if (options.progress) options.progress(d, todo.size());
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  const auto t_screened = std::chrono::steady_clock::now();
  result.screen_wall_s = std::chrono::duration<double>(t_screened - t0).count();

  // Final pass: the top plans by screening and the scenario's own plan at the
  // scenario's own fidelity.
  rank_rows(rows);
  std::vector<std::size_t> finals;
  for (std::size_t i = 0; i < rows.size() && finals.size() < options.final_plans; ++i) {
    if (rows[i].valid) finals.push_back(i);
  }
  for (std::size_t i = 0; i < rows.size() && options.final_plans > 0; ++i) {
    if (rows[i].is_scenario_plan && rows[i].valid &&
        std::find(finals.begin(), finals.end(), i) == finals.end()) {
      finals.push_back(i);
    }
  }
  std::atomic<std::size_t> next_final{0};
  auto final_worker = [&]() {
    for (std::size_t k = next_final.fetch_add(1); k < finals.size(); k = next_final.fetch_add(1)) {
      SearchRow& r = rows[finals[k]];
      Config c = base;
      set_strategy(c, r.strategy);
      if (options.final_network == "analytical") c.set("network.model", "analytical", "strategy search (final pass)");
      try {
        const PerformanceMetrics p = simulate_performance(c, sc.statistic);
        r.final_simulated = true;
        r.tokens_per_s = p.tokens_per_s.value_or(0.0);
        r.sequences_per_s = p.sequences_per_s.value_or(0.0);
        if (sc.mode == "batch") {
          r.ttft_s = p.latency_s.value_or(kInf);
          r.meets_slo = !sc.batch_latency_slo || r.ttft_s <= *sc.batch_latency_slo;
        } else {
          r.ttft_s = p.ttft_s.value_or(kInf);
          r.tpot_s = p.tpot_s.value_or(0.0);
          r.meets_slo = p.meets_slo.value_or(r.ttft_s <= sc.slo_ttft && r.tpot_s <= sc.slo_tpot);
        }
      } catch (const InputError& e) {
        r.valid = false;
        r.invalid_reason = std::string("final simulation: ") + e.what();
      } catch (const std::exception& e) {
        r.valid = false;
        r.invalid_reason = std::string("internal error in the final simulation: ") + e.what();
      }
    }
  };
  std::vector<std::thread> pool2;
  const unsigned threads2 = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, finals.size())));
  for (unsigned t = 1; t < threads2; ++t) pool2.emplace_back(final_worker);
  final_worker();
  for (std::thread& t : pool2) t.join();
  result.simulated_final = finals.size();
  result.final_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_screened).count();

  // Plans that were only screened must not outrank fully simulated ones on
  // a screening estimate: when final plans exist, the unsimulated rank after.
  rank_rows(rows);
  if (!finals.empty()) {
    std::stable_partition(rows.begin(), rows.end(), [](const SearchRow& r) { return r.final_simulated; });
    std::int64_t rank = 0;
    for (SearchRow& r : rows) r.rank = r.valid ? ++rank : 0;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].invalid_reason.rfind("internal error", 0) == 0) ++result.internal_errors;
    if (rows[i].valid) ++result.valid;
    if (rows[i].is_scenario_plan) result.scenario_plan = i;
  }
  result.rows = std::move(rows);
  const NetworkModelKind net_model = network_params_from_config(base, sc.topology).model;
  result.fidelity = "screening: every valid plan, one engine, " + std::string(to_string(sc.screen_network.model)) +
                    " network" + (sc.mode == "serving" ? ", prefill + decode iteration estimate" : "") +
                    (options.final_plans == 0
                         ? std::string("; no final pass (screening estimates only)")
                         : "; final: top " + std::to_string(options.final_plans) + " + the scenario's plan, " +
                               (options.final_network == "analytical"
                                    ? std::string("analytical network")
                                    : std::string(to_string(net_model)) + " network") +
                               ", the scenario's routing");
  result.slo = sc.mode == "serving"
                   ? "TTFT " + sc.statistic + " <= " + fmt(sc.slo_ttft) + " s and TPOT " + sc.statistic +
                         " <= " + fmt(sc.slo_tpot) + " s"
                   : (sc.batch_latency_slo ? "iteration latency <= " + fmt(*sc.batch_latency_slo) + " s" : "none");
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

std::string format_search_result(const SearchResult& r) {
  std::ostringstream o;
  const bool serving = r.mode == "serving";
  o << "Strategy search: " << r.model << " on " << r.cluster_gpus << " GPUs, " << r.mode << " workload\n";
  o << r.candidates << " candidate plans, " << r.valid << " valid, " << r.simulated_final
    << " re-simulated at full fidelity; " << fmt(r.wall_s, 3) << " s on " << r.threads << " threads\n";
  o << "SLO: " << r.slo << "\nFidelity: " << r.fidelity << "\n";
  if (r.internal_errors > 0) {
    o << "WARNING: " << r.internal_errors << " plans could not be evaluated (internal errors; see --json rows)\n";
  }
  o << "\n";
  const std::string lat = serving ? "TTFT_s" : "latency_s";
  char line[320];
  std::snprintf(line, sizeof line, "%-5s %-68s %14s %12s %5s %6s %s\n", "rank", "plan",
                "tokens/s", lat.c_str(), "SLO", "pareto", "source");
  o << line;
  std::size_t shown = 0;
  auto row_line = [&](const SearchRow& s) {
    std::snprintf(line, sizeof line, "%-5lld %-68s %14.6g %12.5g %5s %6s %s%s\n", static_cast<long long>(s.rank),
                  s.description.substr(0, 68).c_str(), s.tokens_per_s, s.ttft_s, s.meets_slo ? "yes" : "no",
                  s.pareto ? "yes" : "", s.final_simulated ? "simulated" : "screened",
                  s.is_scenario_plan ? "  <- scenario" : "");
    o << line;
  };
  for (const SearchRow& s : r.rows) {
    if (!s.valid || shown >= 10) continue;
    row_line(s);
    ++shown;
  }
  o << "\nPareto front (throughput vs " << (serving ? "TTFT" : "latency") << "):\n";
  for (const SearchRow& s : r.rows) {
    if (s.valid && s.pareto) row_line(s);
  }
  if (r.scenario_plan) {
    const SearchRow& own = r.rows[*r.scenario_plan];
    const SearchRow* best = r.best();
    o << "\nScenario plan: " << own.description << ": ";
    if (!own.valid) {
      o << "invalid (" << own.invalid_reason << ")\n";
    } else if (best != nullptr && own.rank == 1) {
      o << "the best plan found\n";
    } else if (best != nullptr) {
      o << "rank " << own.rank << "; the best (" << best->description << ") gives " << fmt(best->tokens_per_s)
        << " tokens/s vs " << fmt(own.tokens_per_s) << " (x" << fmt(best->tokens_per_s / own.tokens_per_s, 3) << "), "
        << lat << " " << fmt(best->ttft_s) << " vs " << fmt(own.ttft_s) << "\n";
    }
  }
  return o.str();
}

nlohmann::json search_result_json(const SearchResult& r) {
  using nlohmann::json;
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  auto row_json = [&](const SearchRow& s) {
    json j = {{"rank", s.rank},
              {"plan", s.description},
              {"tp", s.strategy.tp},
              {"pp", s.strategy.pp},
              {"dp", s.strategy.dp},
              {"ep", s.strategy.ep},
              {"etp", s.strategy.etp},
              {"microbatches", s.strategy.microbatches},
              {"convention", std::string(to_string(s.strategy.convention))},
              {"valid", s.valid},
              {"tokens_per_s", num(s.tokens_per_s)},
              {"sequences_per_s", num(s.sequences_per_s)},
              {"capacity_tokens_per_s", num(s.capacity_tokens_per_s)},
              {r.mode == "serving" ? "ttft_s" : "latency_s", num(s.ttft_s)},
              {"meets_slo", s.meets_slo},
              {"pareto", s.pareto},
              {"final_simulated", s.final_simulated},
              {"screen_tokens_per_s", num(s.screen_tokens_per_s)},
              {"screen_ttft_s", num(s.screen_ttft_s)},
              {"scenario_plan", s.is_scenario_plan}};
    if (r.mode == "serving") j["tpot_s"] = num(s.tpot_s);
    if (!s.valid) j["invalid_reason"] = s.invalid_reason;
    return j;
  };
  json j;
  j["mode"] = r.mode;
  j["cluster_gpus"] = r.cluster_gpus;
  j["model"] = r.model;
  j["candidates"] = r.candidates;
  j["valid"] = r.valid;
  j["simulated_final"] = r.simulated_final;
  j["threads"] = r.threads;
  j["internal_errors"] = r.internal_errors;
  j["wall_s"] = r.wall_s;
  j["screen_wall_s"] = r.screen_wall_s;
  j["final_wall_s"] = r.final_wall_s;
  j["fidelity"] = r.fidelity;
  j["slo"] = r.slo;
  const SearchRow* best = r.best();
  j["best"] = best != nullptr ? row_json(*best) : json(nullptr);
  j["scenario_plan"] = r.scenario_plan ? row_json(r.rows[*r.scenario_plan]) : json(nullptr);
  json top = json::array();
  json pareto = json::array();
  json rows = json::array();
  for (const SearchRow& s : r.rows) {
    if (s.valid && top.size() < 10) top.push_back(row_json(s));
    if (s.valid && s.pareto) pareto.push_back(row_json(s));
    rows.push_back(row_json(s));
  }
  j["top"] = top;
  j["pareto"] = pareto;
  j["rows"] = rows;
  return j;
}

void write_search_results(const std::filesystem::path& path, const SearchResult& result, const Config& config,
                          const std::string& command) {
  analysis::Hdf5Writer w(path);
  analysis::Provenance prov;
  prov.kind = "search";
  prov.seed = static_cast<std::uint64_t>(config.get_int("run.seed"));
  std::string ini;
  for (const auto& [k, v] : config.resolved()) ini += k + " = " + v + "\n";
  prov.scenario_ini = ini;
  prov.command = command;
  analysis::write_provenance(w, prov);
  const nlohmann::json j = search_result_json(result);
  std::vector<nlohmann::json> rows;
  for (const auto& row : j["rows"]) {
    if (row["valid"].get<bool>()) rows.push_back(row);
  }
  const std::vector<analysis::Column> cols = analysis::columns_from_json_rows(rows);
  w.write_table(analysis::schema::kSearch, cols);
  nlohmann::json summary = j;
  summary.erase("rows");
  summary.erase("top");
  summary.erase("pareto");
  summary.erase("best");
  summary.erase("scenario_plan");
  analysis::write_json_attributes(w, analysis::schema::kSearch, summary);
  w.commit();
}

BestPlanAnswer best_plan_answer(const Config& config) {
  SearchOptions opt;
  opt.final_plans = 4;
  // The scenario's own network (the flow model by default): with all-to-alls
  // moving as coflows, a 512-GPU plan re-simulates in about a second.
  opt.final_network = "scenario";
  opt.progress = stderr_progress_bar("verify: strategy search (best_plan)");
  const SearchResult r = run_strategy_search(config, opt);
  BestPlanAnswer a;
  a.plans_evaluated = static_cast<std::int64_t>(r.valid);
  a.throughput_unit = r.mode == "serving" ? "tokens/s at the scenario's rate" : "tokens/s";
  a.note = r.fidelity;
  const SearchRow* best = r.best();
  if (best == nullptr || !r.scenario_plan) throw InputError("the strategy search found no valid plan");
  const SearchRow& own = r.rows[*r.scenario_plan];
  a.is_best = own.rank == 1;
  a.rank = own.rank;
  a.ranked = static_cast<std::int64_t>(r.valid);
  a.plan_throughput = own.tokens_per_s;
  a.best_throughput = best->tokens_per_s;
  a.plan_latency_s = own.ttft_s;
  a.best_latency_s = best->ttft_s;
  a.latency_label = r.mode == "serving" ? "TTFT" : "latency";
  a.best_plan = best->description;
  return a;
}

}  // namespace moesim
