#pragma once
// Request streams of a serving workload: when requests arrive and how long
// their prompts and outputs are (docs/serving.md, "Requests").
//
// Arrival processes (`workload.arrival`):
//   offline  every request arrives at t = 0 (a batch benchmark, as vLLM's
//            `benchmark_throughput`).
//   poisson  independent exponential inter-arrival times of mean 1 / rate
//            (vLLM `benchmark_serving --request-rate`).
//   bursty   Gamma-distributed inter-arrival times with mean 1 / rate and
//            coefficient of variation cv (shape 1/cv^2, scale 1/(rate shape)):
//            cv = 1 is Poisson, cv > 1 burstier (vLLM's `--burstiness` is
//            the shape, 1/cv^2).
//   trace    rows of a CSV file: arrival seconds, prompt tokens, output
//            tokens (format below); lengths come from the trace.
//
// Length distributions (prompt and output tokens independently), each given
// by a mean, a coefficient of variation cv and clip bounds [min, max]:
//   fixed      always round(mean)
//   uniform    uniform on [mean (1 - sqrt(3) cv), mean (1 + sqrt(3) cv)]
//              (the interval whose mean and cv are the given ones)
//   normal     N(mean, (cv mean)^2)
//   lognormal  log N(mu, sigma^2) with sigma^2 = ln(1 + cv^2) and
//              mu = ln(mean) - sigma^2 / 2, so that its mean and cv are the
//              given ones (the usual fit of LLM prompt lengths)
// then rounded to the nearest integer and clipped to [min, max] (min >= 1):
// the clipped distribution's mean differs from `mean` when much mass falls
// outside the bounds.
//
// Randomness: named streams of the scenario seed (sim/random.hpp):
// "requests/arrivals", "requests/prompt", "requests/output". Arrival times
// and lengths are drawn from separate streams, so changing the rate keeps
// every request's lengths (common random numbers across a rate sweep).
//
// Trace CSV (docs/serving.md): one request per line,
//   arrival_s,prompt_tokens,output_tokens
// arrival_s >= 0 (seconds, any real number), tokens positive integers.
// Blank lines and lines starting with '#' are ignored; an optional header
// line (the first non-comment line, when its first field is not a number) is
// skipped. Rows need not be sorted: requests are ordered by arrival (ties
// keep file order). A bad row throws InputError naming the file and line.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/random.hpp"
#include "sim/units.hpp"

namespace moesim {

enum class ArrivalKind : std::uint8_t { kOffline, kPoisson, kBursty, kTrace };
std::string_view to_string(ArrivalKind kind);

enum class LengthDistKind : std::uint8_t { kFixed, kUniform, kNormal, kLogNormal };
std::string_view to_string(LengthDistKind kind);

struct LengthDistribution {
  LengthDistKind kind = LengthDistKind::kFixed;
  double mean = 512.0;          // tokens
  double cv = 0.0;              // coefficient of variation (stddev / mean)
  std::int64_t min = 1;         // clip bounds, inclusive
  std::int64_t max = 1 << 20;

  /// One draw (see the file comment). Fixed draws nothing.
  [[nodiscard]] std::int64_t sample(RandomStream& rng) const;
  /// Throws InputError naming `what` (the option prefix) for mean <= 0,
  /// cv < 0, min < 1 or max < min.
  void check(std::string_view what) const;
};

/// One request of a stream.
struct Request {
  std::int64_t id = 0;               // 0 .. n-1 in arrival order
  Time arrival{};
  std::int64_t prompt_tokens = 1;
  std::int64_t output_tokens = 1;    // tokens generated, the first by the prefill
};

struct RequestStreamConfig {
  ArrivalKind arrival = ArrivalKind::kPoisson;
  double rate = 1.0;                 // requests/s (poisson, bursty)
  double cv = 1.0;                   // bursty: inter-arrival coefficient of variation
  std::string trace_path;            // trace
  /// Number of requests (offline, poisson, bursty; trace: at most this many,
  /// 0 = every row).
  std::int64_t count = 1000;
  /// > 0: generate arrivals in [0, duration) instead of `count` requests
  /// (poisson, bursty, trace).
  Duration duration{};
  LengthDistribution prompt{};
  LengthDistribution output{LengthDistKind::kFixed, 128.0, 0.0, 1, 1 << 20};
};

/// Generates the stream (sorted by arrival, ids in that order). Throws
/// InputError for bad settings (rate <= 0, cv <= 0 for bursty, ...) or a bad
/// trace. Deterministic in (config, streams).
std::vector<Request> generate_requests(const RequestStreamConfig& config, const RandomStreams& streams);

/// Parses a request trace (format above); `origin` names it in messages
/// ("trace.csv"). Requests come back sorted by arrival, ids 0..n-1.
std::vector<Request> parse_request_trace(std::string_view text, const std::string& origin);
/// Reads and parses a trace file (InputError when it cannot be read).
std::vector<Request> load_request_trace(const std::string& path);

}  // namespace moesim
