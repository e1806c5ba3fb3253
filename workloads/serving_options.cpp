#include "workloads/serving_options.hpp"

#include <cmath>
#include <filesystem>
#include <string>

namespace moesim {

namespace {

OptionSpec opt(std::string name, OptionType type, std::string unit, std::string def, std::string help,
               std::optional<double> min = {}, std::optional<double> max = {}) {
  return {.name = std::move(name), .type = type, .unit = std::move(unit), .default_value = std::move(def),
          .help = std::move(help), .min = min, .max = max, .choices = {}};
}
OptionSpec choice(std::string name, std::string def, std::string help, std::vector<std::string> choices) {
  return {.name = std::move(name), .type = OptionType::kChoice, .unit = "", .default_value = std::move(def),
          .help = std::move(help), .min = {}, .max = {}, .choices = std::move(choices)};
}

const std::vector<std::string> kDists = {"fixed", "uniform", "normal", "lognormal"};

LengthDistKind parse_dist(const std::string& s) {
  if (s == "uniform") return LengthDistKind::kUniform;
  if (s == "normal") return LengthDistKind::kNormal;
  if (s == "lognormal") return LengthDistKind::kLogNormal;
  return LengthDistKind::kFixed;
}

// A relative path written in a scenario file is relative to that file (as
// topology.file is).
std::string resolve_path(const Config& config, std::string_view option, const std::string& path) {
  const std::filesystem::path p(path);
  const std::string& scenario = config.scenario_path();
  if (p.is_absolute() || scenario.empty()) return path;
  if (config.source(option).rfind(scenario + ":", 0) != 0) return path;
  return (std::filesystem::path(scenario).parent_path() / p).lexically_normal().string();
}

std::string where(const Config& c, std::string_view key) {
  return std::string(key) + " (" + (c.is_set(key) ? "set at " + c.source(key) : std::string("default")) + ")";
}

constexpr double kMaxTokens = 1 << 24;  // 16 M tokens: beyond any context window

}  // namespace

void register_serving_options(OptionRegistry& r) {
  // ---- request stream ----
  r.add(choice("workload.arrival", "poisson",
               "Serving: how requests arrive: offline (all at t = 0), poisson (rate workload.rate), bursty (Gamma "
               "inter-arrivals, mean 1/rate, coefficient of variation workload.cv), trace (workload.trace CSV).",
               {"offline", "poisson", "bursty", "trace"}));
  r.add(opt("workload.rate", OptionType::kDouble, "requests/s", "40",
            "Serving: mean arrival rate of poisson and bursty streams (over the whole cluster).", 1e-6, 1e7));
  r.add(opt("workload.cv", OptionType::kDouble, "", "2",
            "Serving, bursty: coefficient of variation of the inter-arrival times (1 = Poisson, > 1 burstier).",
            1e-3, 100.0));
  r.add(opt("workload.trace", OptionType::kString, "", "",
            "Serving, arrival = trace: CSV file with rows arrival_s,prompt_tokens,output_tokens (header optional, "
            "'#' comments; docs/serving.md)."));
  r.add(opt("workload.requests", OptionType::kInt, "requests", "1000",
            "Serving: number of requests (trace: at most this many; 0 = all rows). Not with workload.duration.", 0,
            1e8));
  r.add(opt("workload.duration", OptionType::kDuration, "s", "",
            "Serving: generate arrivals during this long instead of a request count (e.g. 60s).", 1e-9, 1e7));
  r.add(choice("workload.prompt_dist", "lognormal",
               "Serving: prompt length distribution with mean workload.prompt_tokens and coefficient of variation "
               "workload.prompt_cv, clipped to [prompt_min, prompt_max].",
               kDists));
  r.add(opt("workload.prompt_cv", OptionType::kDouble, "", "0.5",
            "Serving: coefficient of variation (stddev/mean) of the prompt length.", 0.0, 100.0));
  r.add(opt("workload.prompt_min", OptionType::kInt, "tokens", "16", "Serving: shortest prompt (clip).", 1,
            kMaxTokens));
  r.add(opt("workload.prompt_max", OptionType::kInt, "tokens", "8192", "Serving: longest prompt (clip).", 1,
            kMaxTokens));
  r.add(choice("workload.output_dist", "lognormal",
               "Serving: output length distribution (mean workload.output_tokens, cv workload.output_cv).", kDists));
  r.add(opt("workload.output_tokens", OptionType::kInt, "tokens", "256",
            "Serving: mean (or fixed) number of output tokens per request.", 1, kMaxTokens));
  r.add(opt("workload.output_cv", OptionType::kDouble, "", "0.5",
            "Serving: coefficient of variation of the output length.", 0.0, 100.0));
  r.add(opt("workload.output_min", OptionType::kInt, "tokens", "1", "Serving: fewest output tokens (clip).", 1,
            kMaxTokens));
  r.add(opt("workload.output_max", OptionType::kInt, "tokens", "4096", "Serving: most output tokens (clip).", 1,
            kMaxTokens));
  r.add(opt("workload.warmup", OptionType::kDouble, "fraction", "0.1",
            "Serving: fraction of the requests (the first to arrive) left out of the aggregates.", 0.0, 0.9));
  r.add(opt("workload.cooldown", OptionType::kDouble, "fraction", "0.1",
            "Serving: fraction of the requests (the last to arrive) left out of the aggregates.", 0.0, 0.9));

  // ---- scheduler ----
  r.add(opt("scheduler.max_seqs", OptionType::kInt, "sequences", "256",
            "Most running requests per replica (vLLM max_num_seqs).", 1, 1e6));
  r.add(opt("scheduler.max_batched_tokens", OptionType::kInt, "tokens", "8192",
            "Most new tokens per replica per iteration (vLLM max_num_batched_tokens).", 1, kMaxTokens));
  r.add(opt("scheduler.chunked_prefill", OptionType::kBool, "", "true",
            "Split long prompts over iterations (true) or prefill each prompt whole in one iteration (false)."));
  r.add(choice("scheduler.router", "least_outstanding_tokens",
               "How arrivals are spread over the data-parallel replicas: round_robin or least_outstanding_tokens "
               "(fewest prefill + decode tokens still to process).",
               {"round_robin", "least_outstanding_tokens"}));
  r.add(opt("scheduler.kv_block_tokens", OptionType::kInt, "tokens", "16",
            "Tokens per paged KV-cache block (vLLM block_size).", 1, 65536));
  r.add(opt("scheduler.kv_blocks", OptionType::kInt, "blocks", "0",
            "KV-cache blocks per replica; 0 = what the memory model leaves after weights, activations and the "
            "reserve. A positive value overrides it (what-if studies).",
            0, 1e12));
  r.add(opt("scheduler.shape_buckets", OptionType::kInt, "per octave", "8",
            "Iteration-time cache: batch-shape values are rounded to powers of 2^(1/b) (b = this; error <= "
            "2^(1/2b) - 1 per value); 0 simulates every iteration's exact plan (slow). docs/serving.md.",
            0, 1024));

  r.add(opt("scheduler.sample_layers", OptionType::kInt, "layers", "4",
            "Iteration-time cache: on a cache miss simulate this many MoE (and dense) layers per pipeline stage and "
            "extrapolate to the stage's layers (>= 2); 0 = simulate every layer. docs/serving.md.",
            0, 1e6));

  // ---- SLO ----
  r.add(opt("slo.ttft", OptionType::kDuration, "s", "1s", "Time-to-first-token objective per request.", 0.0,
            1e7));
  r.add(opt("slo.tpot", OptionType::kDuration, "s", "100ms", "Time-per-output-token objective per request.", 0.0,
            1e7));
  r.add(opt("slo.attainment", OptionType::kDouble, "fraction", "0.9",
            "A load meets the SLO when at least this fraction of the measured requests meet both objectives.",
            0.0, 1.0));
}

ServingOptions serving_options_from_config(const Config& c) {
  ServingOptions o;
  RequestStreamConfig& s = o.stream;
  const std::string arrival = c.get_string("workload.arrival");
  s.arrival = arrival == "offline"   ? ArrivalKind::kOffline
              : arrival == "bursty"  ? ArrivalKind::kBursty
              : arrival == "trace"   ? ArrivalKind::kTrace
                                     : ArrivalKind::kPoisson;
  s.rate = c.get_double("workload.rate");
  s.cv = c.get_double("workload.cv");
  if (c.has("workload.trace")) {
    const std::string t = c.get_string("workload.trace");
    if (!t.empty()) s.trace_path = resolve_path(c, "workload.trace", t);
  }
  if (s.arrival == ArrivalKind::kTrace && s.trace_path.empty()) {
    throw InputError("workload.arrival = trace needs workload.trace = FILE.csv (rows arrival_s,prompt_tokens,"
                     "output_tokens)");
  }
  s.count = c.get_int("workload.requests");
  if (c.is_set("workload.duration")) {
    if (c.is_set("workload.requests") && s.arrival != ArrivalKind::kTrace) {
      throw InputError("set either " + where(c, "workload.requests") + " or " + where(c, "workload.duration") +
                       ", not both");
    }
    s.duration = c.get_duration("workload.duration");
  } else if (s.arrival == ArrivalKind::kTrace && !c.is_set("workload.requests")) {
    s.count = 0;  // a trace: every row unless a count is given
  }
  if (s.arrival != ArrivalKind::kTrace && s.duration == Duration::zero() && s.count < 1) {
    throw InputError(where(c, "workload.requests") + " must be >= 1");
  }

  s.prompt.kind = parse_dist(c.get_string("workload.prompt_dist"));
  s.prompt.mean = static_cast<double>(c.get_int("workload.prompt_tokens"));
  s.prompt.cv = c.get_double("workload.prompt_cv");
  s.prompt.min = c.get_int("workload.prompt_min");
  s.prompt.max = c.get_int("workload.prompt_max");
  s.output.kind = parse_dist(c.get_string("workload.output_dist"));
  s.output.mean = static_cast<double>(c.get_int("workload.output_tokens"));
  s.output.cv = c.get_double("workload.output_cv");
  s.output.min = c.get_int("workload.output_min");
  s.output.max = c.get_int("workload.output_max");
  if (s.prompt.max < s.prompt.min) {
    throw InputError(where(c, "workload.prompt_max") + " = " + std::to_string(s.prompt.max) + " is below " +
                     where(c, "workload.prompt_min") + " = " + std::to_string(s.prompt.min));
  }
  if (s.output.max < s.output.min) {
    throw InputError(where(c, "workload.output_max") + " = " + std::to_string(s.output.max) + " is below " +
                     where(c, "workload.output_min") + " = " + std::to_string(s.output.min));
  }

  o.warmup = c.get_double("workload.warmup");
  o.cooldown = c.get_double("workload.cooldown");
  if (o.warmup + o.cooldown >= 0.95) {
    throw InputError(where(c, "workload.warmup") + " + " + where(c, "workload.cooldown") +
                     " leave no requests to measure (their sum must be < 0.95)");
  }

  SchedulerConfig& q = o.scheduler;
  q.max_seqs = c.get_int("scheduler.max_seqs");
  q.max_batched_tokens = c.get_int("scheduler.max_batched_tokens");
  q.chunked_prefill = c.get_bool("scheduler.chunked_prefill");
  q.kv_block_tokens = c.get_int("scheduler.kv_block_tokens");
  q.kv_blocks = c.get_int("scheduler.kv_blocks");
  o.router = c.get_string("scheduler.router") == "round_robin" ? RouterKind::kRoundRobin
                                                                 : RouterKind::kLeastOutstandingTokens;
  o.shape_buckets = static_cast<int>(c.get_int("scheduler.shape_buckets"));
  o.sample_layers = static_cast<int>(c.get_int("scheduler.sample_layers"));
  if (o.sample_layers == 1) {
    throw InputError(where(c, "scheduler.sample_layers") +
                     " must be 0 (every layer) or >= 2: the layer period is measured between two layers");
  }

  o.slo.ttft = c.get_duration("slo.ttft");
  o.slo.tpot = c.get_duration("slo.tpot");
  o.slo.attainment = c.get_double("slo.attainment");
  return o;
}

}  // namespace moesim
