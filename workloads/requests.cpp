#include "workloads/requests.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "sim/options.hpp"
#include "sim/unit_parse.hpp"

namespace moesim {

std::string_view to_string(ArrivalKind kind) {
  switch (kind) {
    case ArrivalKind::kOffline: return "offline";
    case ArrivalKind::kPoisson: return "poisson";
    case ArrivalKind::kBursty: return "bursty";
    case ArrivalKind::kTrace: return "trace";
  }
  return "?";
}

std::string_view to_string(LengthDistKind kind) {
  switch (kind) {
    case LengthDistKind::kFixed: return "fixed";
    case LengthDistKind::kUniform: return "uniform";
    case LengthDistKind::kNormal: return "normal";
    case LengthDistKind::kLogNormal: return "lognormal";
  }
  return "?";
}

std::int64_t LengthDistribution::sample(RandomStream& rng) const {
  double x = mean;
  switch (kind) {
    case LengthDistKind::kFixed: break;
    case LengthDistKind::kUniform: {
      // Half-width sqrt(3) cv mean: a uniform on [a, b] has stddev (b-a)/sqrt(12).
      const double half = std::sqrt(3.0) * cv * mean;
      x = rng.uniform(mean - half, mean + half);
      break;
    }
    case LengthDistKind::kNormal: x = rng.normal(mean, cv * mean); break;
    case LengthDistKind::kLogNormal: {
      const double sigma2 = std::log1p(cv * cv);
      x = rng.lognormal(std::log(mean) - 0.5 * sigma2, std::sqrt(sigma2));
      break;
    }
  }
  const double lo = static_cast<double>(min);
  const double hi = static_cast<double>(max);
  x = std::clamp(std::round(x), lo, hi);
  return static_cast<std::int64_t>(x);
}

void LengthDistribution::check(std::string_view what) const {
  const std::string w(what);
  if (!(mean > 0.0) || !std::isfinite(mean)) {
    throw InputError(w + ": the mean length must be a positive number of tokens (got " + std::to_string(mean) + ")");
  }
  if (!(cv >= 0.0) || !std::isfinite(cv)) {
    throw InputError(w + ": the coefficient of variation must be >= 0 (got " + std::to_string(cv) + ")");
  }
  if (min < 1) throw InputError(w + ": the minimum length must be >= 1 token (got " + std::to_string(min) + ")");
  if (max < min) {
    throw InputError(w + ": the maximum length " + std::to_string(max) + " is below the minimum " +
                     std::to_string(min));
  }
}

namespace {

std::string trim(std::string_view s) {
  std::size_t a = 0;
  std::size_t b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_number(const std::string& s) {
  try {
    (void)parse_double(s);
    return true;
  } catch (const ParseError&) {
    return false;
  }
}

// Sorts by arrival (stable: ties keep their order) and numbers the requests.
void finish_stream(std::vector<Request>& requests) {
  std::stable_sort(requests.begin(), requests.end(),
                   [](const Request& a, const Request& b) { return a.arrival < b.arrival; });
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].id = static_cast<std::int64_t>(i);
}

constexpr double kMaxArrivalSeconds = 1.0e7;  // ~116 days: far beyond any run, inside int64 ps

}  // namespace

std::vector<Request> parse_request_trace(std::string_view text, const std::string& origin) {
  std::vector<Request> requests;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool seen_first = false;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    const std::vector<std::string> fields = split_csv(line);
    if (!seen_first) {
      seen_first = true;
      if (!is_number(fields[0])) continue;  // the optional header line
    }
    if (fields.size() != 3) {
      throw InputError(where + ": expected 3 comma-separated fields (arrival_s,prompt_tokens,output_tokens), got " +
                       std::to_string(fields.size()) + " in '" + line + "'");
    }
    Request r;
    double arrival = 0.0;
    try {
      arrival = parse_double(fields[0]);
    } catch (const ParseError&) {
      throw InputError(where + ": arrival time '" + fields[0] + "' is not a number of seconds");
    }
    if (!std::isfinite(arrival) || arrival < 0.0 || arrival > kMaxArrivalSeconds) {
      throw InputError(where + ": arrival time " + fields[0] + " must be a finite number of seconds in [0, 1e7]");
    }
    r.arrival = Time::at(Duration::from_seconds(arrival));
    const char* names[2] = {"prompt_tokens", "output_tokens"};
    std::int64_t* targets[2] = {&r.prompt_tokens, &r.output_tokens};
    for (int k = 0; k < 2; ++k) {
      const std::string& f = fields[static_cast<std::size_t>(k + 1)];
      std::int64_t v = 0;
      try {
        v = parse_int(f);
      } catch (const ParseError&) {
        throw InputError(where + ": " + names[k] + " '" + f + "' is not an integer");
      }
      if (v < 1) throw InputError(where + ": " + names[k] + " must be >= 1 (got " + f + ")");
      *targets[k] = v;
    }
    requests.push_back(r);
  }
  if (requests.empty()) {
    throw InputError(origin + ": the request trace has no rows (expected lines arrival_s,prompt_tokens,output_tokens)");
  }
  finish_stream(requests);
  return requests;
}

std::vector<Request> load_request_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open request trace '" + path + "' (workload.trace): no such file or not readable");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_request_trace(ss.str(), path);
}

std::vector<Request> generate_requests(const RequestStreamConfig& config, const RandomStreams& streams) {
  if (config.count < 0) throw InputError("workload.requests must be >= 0");
  if (config.duration < Duration::zero()) throw InputError("workload.duration must be >= 0");
  const bool by_duration = config.duration > Duration::zero();

  if (config.arrival == ArrivalKind::kTrace) {
    if (config.trace_path.empty()) {
      throw InputError("workload.arrival = trace needs workload.trace (a CSV file: arrival_s,prompt_tokens,output_tokens)");
    }
    std::vector<Request> requests = load_request_trace(config.trace_path);
    if (by_duration) {
      const Time end = Time::at(config.duration);
      std::erase_if(requests, [end](const Request& r) { return r.arrival >= end; });
    } else if (config.count > 0 && static_cast<std::size_t>(config.count) < requests.size()) {
      requests.resize(static_cast<std::size_t>(config.count));
    }
    if (requests.empty()) throw InputError("workload.trace: no request arrives within workload.duration");
    return requests;
  }

  config.prompt.check("workload.prompt_*");
  config.output.check("workload.output_*");
  if (config.arrival == ArrivalKind::kOffline && by_duration) {
    throw InputError("workload.arrival = offline has every request at t = 0: set workload.requests, not workload.duration");
  }
  if (config.arrival == ArrivalKind::kPoisson || config.arrival == ArrivalKind::kBursty) {
    if (!(config.rate > 0.0) || !std::isfinite(config.rate)) {
      throw InputError("workload.rate must be > 0 requests/s for workload.arrival = " +
                       std::string(to_string(config.arrival)));
    }
  }
  if (config.arrival == ArrivalKind::kBursty && !(config.cv > 0.0)) {
    throw InputError("workload.cv must be > 0 for workload.arrival = bursty (1 = Poisson, > 1 burstier)");
  }
  if (!by_duration && config.count < 1) throw InputError("workload.requests must be >= 1");

  RandomStream arrivals = streams.stream("requests/arrivals");
  RandomStream prompt_rng = streams.stream("requests/prompt");
  RandomStream output_rng = streams.stream("requests/output");

  // Gamma(shape k, scale 1/(rate k)): mean 1/rate, cv = 1/sqrt(k).
  const double shape = config.arrival == ArrivalKind::kBursty ? 1.0 / (config.cv * config.cv) : 1.0;
  const double mean_gap = 1.0 / config.rate;
  auto next_gap = [&]() -> double {
    switch (config.arrival) {
      case ArrivalKind::kPoisson: return arrivals.exponential(mean_gap);
      case ArrivalKind::kBursty: return arrivals.gamma(shape, mean_gap / shape);
      default: return 0.0;
    }
  };

  std::vector<Request> requests;
  const double limit_s = by_duration ? config.duration.seconds() : kMaxArrivalSeconds;
  if (!by_duration) requests.reserve(static_cast<std::size_t>(config.count));
  // Arrivals accumulate in double seconds and are rounded once per request,
  // so rounding never drifts the mean rate.
  double t = 0.0;
  for (std::int64_t i = 0;; ++i) {
    if (!by_duration && i >= config.count) break;
    if (config.arrival != ArrivalKind::kOffline) t += next_gap();
    if (t >= limit_s) {
      if (by_duration) break;
      throw InputError("workload.rate is so low that the requests would arrive beyond 1e7 s");
    }
    Request r;
    r.arrival = Time::at(Duration::from_seconds(t));
    r.prompt_tokens = config.prompt.sample(prompt_rng);
    r.output_tokens = config.output.sample(output_rng);
    requests.push_back(r);
    if (requests.size() > 100'000'000) throw InputError("workload.duration x workload.rate exceeds 1e8 requests");
  }
  if (requests.empty()) throw InputError("workload.duration is too short: no request arrives in it");
  finish_stream(requests);
  return requests;
}

}  // namespace moesim
