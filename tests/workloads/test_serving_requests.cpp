// Request streams (workloads/requests.hpp): arrival processes against their
// closed-form moments, length distributions, determinism, and the trace
// file's format and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "sim/options.hpp"
#include "workloads/requests.hpp"

using namespace moesim;

namespace {

struct Moments {
  double mean = 0.0;
  double cv = 0.0;
};
Moments moments(const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double var = 0.0;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= n - 1.0;
  return {mean, std::sqrt(var) / mean};
}

std::vector<double> gaps(const std::vector<Request>& r) {
  std::vector<double> g;
  double prev = 0.0;
  for (const auto& q : r) {
    g.push_back(q.arrival.seconds() - prev);
    prev = q.arrival.seconds();
  }
  return g;
}

RequestStreamConfig stream(ArrivalKind kind, double rate, std::int64_t count) {
  RequestStreamConfig c;
  c.arrival = kind;
  c.rate = rate;
  c.count = count;
  c.prompt = {LengthDistKind::kFixed, 100.0, 0.0, 1, 1 << 20};
  c.output = {LengthDistKind::kFixed, 10.0, 0.0, 1, 1 << 20};
  return c;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

}  // namespace

TEST_CASE("Poisson arrivals have mean gap 1/rate and cv 1", "[serving][requests]") {
  // n = 40000 exponential gaps: the sample mean has relative standard error
  // 1/sqrt(n) = 0.5 %, the sample cv about 0.5 % too; 2.5 % is 5 sigma.
  const auto r = generate_requests(stream(ArrivalKind::kPoisson, 20.0, 40000), RandomStreams(7));
  REQUIRE(r.size() == 40000);
  const Moments m = moments(gaps(r));
  CHECK(m.mean == Approx(1.0 / 20.0).epsilon(0.025));
  CHECK(m.cv == Approx(1.0).epsilon(0.025));
  for (std::size_t i = 1; i < r.size(); ++i) REQUIRE(r[i - 1].arrival <= r[i].arrival);
  for (std::size_t i = 0; i < r.size(); ++i) REQUIRE(r[i].id == static_cast<std::int64_t>(i));
}

TEST_CASE("bursty arrivals are Gamma with the requested cv", "[serving][requests]") {
  for (double cv : {0.5, 2.0, 4.0}) {
    auto c = stream(ArrivalKind::kBursty, 10.0, 60000);
    c.cv = cv;
    const Moments m = moments(gaps(generate_requests(c, RandomStreams(3))));
    INFO("cv " << cv);
    // Gamma(k = 1/cv^2): mean 1/rate exactly; the sample cv of 60000 draws is
    // within a few % (its standard error grows with the kurtosis, 6/k).
    CHECK(m.mean == Approx(0.1).epsilon(0.03 * std::max(1.0, cv)));
    CHECK(m.cv == Approx(cv).epsilon(0.06));
  }
}

TEST_CASE("offline requests all arrive at t = 0; duration mode counts rate x duration", "[serving][requests]") {
  const auto off = generate_requests(stream(ArrivalKind::kOffline, 1.0, 50), RandomStreams(1));
  REQUIRE(off.size() == 50);
  for (const auto& q : off) CHECK(q.arrival == Time::zero());

  auto c = stream(ArrivalKind::kPoisson, 50.0, 0);
  c.duration = Duration::s(200);
  const auto r = generate_requests(c, RandomStreams(1));
  // Poisson count over 200 s at 50/s: mean 10000, sd 100; 400 is 4 sd.
  CHECK(std::fabs(static_cast<double>(r.size()) - 10000.0) < 400.0);
  CHECK(r.back().arrival < Time::at(Duration::s(200)));
}

TEST_CASE("length distributions: mean, cv and clipping", "[serving][requests]") {
  RandomStreams streams(11);
  auto draw = [&](LengthDistribution d, int n) {
    RandomStream rng = streams.stream("test/lengths");
    std::vector<double> v;
    for (int i = 0; i < n; ++i) {
      const std::int64_t x = d.sample(rng);
      REQUIRE(x >= d.min);
      REQUIRE(x <= d.max);
      v.push_back(static_cast<double>(x));
    }
    return v;
  };
  // fixed: always round(mean).
  for (double x : draw({LengthDistKind::kFixed, 300.4, 0.5, 1, 10000}, 100)) CHECK(x == 300.0);
  // Unclipped distributions keep their mean and cv (50000 draws: standard
  // error of the mean cv/sqrt(n) < 0.5 %; rounding to integers is negligible
  // at a mean of 1000).
  for (LengthDistKind k : {LengthDistKind::kUniform, LengthDistKind::kNormal, LengthDistKind::kLogNormal}) {
    const double cv = k == LengthDistKind::kUniform ? 0.3 : 0.25;
    const Moments m = moments(draw({k, 1000.0, cv, 1, 1 << 20}, 50000));
    INFO(to_string(k));
    CHECK(m.mean == Approx(1000.0).epsilon(0.01));
    CHECK(m.cv == Approx(cv).epsilon(0.04));
  }
  // Uniform with cv 0.3 spans mean x (1 +- sqrt(3) 0.3) = [480, 1520].
  const auto u = draw({LengthDistKind::kUniform, 1000.0, 0.3, 1, 1 << 20}, 20000);
  CHECK(*std::min_element(u.begin(), u.end()) >= 480.0);
  CHECK(*std::max_element(u.begin(), u.end()) <= 1520.0);
  // Clipping: a wide normal clipped to [900, 1100] stays inside and hits both bounds.
  const auto c = draw({LengthDistKind::kNormal, 1000.0, 1.0, 900, 1100}, 2000);
  CHECK(std::count(c.begin(), c.end(), 900.0) > 100);
  CHECK(std::count(c.begin(), c.end(), 1100.0) > 100);
}

TEST_CASE("streams are seeded: same seed identical, another seed different; lengths do not depend on the rate",
          "[serving][requests]") {
  auto c = stream(ArrivalKind::kPoisson, 5.0, 500);
  c.prompt = {LengthDistKind::kLogNormal, 800.0, 0.7, 16, 8192};
  c.output = {LengthDistKind::kUniform, 100.0, 0.4, 1, 4096};
  const auto a = generate_requests(c, RandomStreams(42));
  const auto b = generate_requests(c, RandomStreams(42));
  const auto other = generate_requests(c, RandomStreams(43));
  REQUIRE(a.size() == b.size());
  bool differs = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].arrival == b[i].arrival);
    CHECK(a[i].prompt_tokens == b[i].prompt_tokens);
    CHECK(a[i].output_tokens == b[i].output_tokens);
    differs = differs || a[i].arrival != other[i].arrival || a[i].prompt_tokens != other[i].prompt_tokens;
  }
  CHECK(differs);
  // Common random numbers across a rate sweep: arrivals scale by the rate,
  // the lengths stay.
  auto fast = c;
  fast.rate = 50.0;
  const auto f = generate_requests(fast, RandomStreams(42));
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(f[i].prompt_tokens == a[i].prompt_tokens);
    CHECK(f[i].output_tokens == a[i].output_tokens);
    CHECK(f[i].arrival.seconds() == Approx(a[i].arrival.seconds() / 10.0).epsilon(1e-9));
  }
}

TEST_CASE("request trace: header, comments, unsorted rows", "[serving][requests][trace]") {
  const std::string text =
      "# a comment\n"
      "arrival_s,prompt_tokens,output_tokens\n"
      "0.5, 100, 10\n"
      "\n"
      "0.25,200,20\r\n"
      "1.0,300,1\n";
  const auto r = parse_request_trace(text, "t.csv");
  REQUIRE(r.size() == 3);
  CHECK(r[0].arrival == Time::at(Duration::ms(250)));
  CHECK(r[0].prompt_tokens == 200);
  CHECK(r[1].prompt_tokens == 100);
  CHECK(r[2].output_tokens == 1);
  CHECK(r[2].id == 2);
  // No header is fine too.
  CHECK(parse_request_trace("0,5,5\n", "t.csv").size() == 1);
}

TEST_CASE("request trace: a bad row is an InputError naming the file and line", "[serving][requests][trace]") {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"arrival_s,prompt_tokens,output_tokens\n0,10,10\n1,10\n", "t.csv:3: expected 3"},
      {"0,10,10\nsoon,10,10\n", "t.csv:2"},
      {"0,10,10\n# c\n-1,10,10\n", "t.csv:3: arrival time"},
      {"0,10,10\n1,0,10\n", "t.csv:2: prompt_tokens must be >= 1"},
      {"0,10,10\n1,10,ten\n", "t.csv:2: output_tokens 'ten' is not an integer"},
      {"0,10,10\n1,10.5,10\n", "t.csv:2: prompt_tokens"},
      {"0,10,10,4\n", "t.csv:1: expected 3"},
      {"# only a comment\n", "no rows"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const std::string msg = message_of([&] { (void)parse_request_trace(c.text, "t.csv"); });
    CHECK_THAT(msg, Catch::Contains(c.expect));
  }
  CHECK_THAT(message_of([] { (void)load_request_trace("/nonexistent/trace.csv"); }),
             Catch::Contains("cannot open request trace"));
}

TEST_CASE("trace stream: count and duration limits", "[serving][requests][trace]") {
  const std::string path = "/tmp/moesim_test_trace_" + std::to_string(::getpid()) + ".csv";
  {
    std::ofstream f(path);
    for (int i = 0; i < 10; ++i) f << i * 0.5 << "," << 10 + i << ",5\n";
  }
  RequestStreamConfig c;
  c.arrival = ArrivalKind::kTrace;
  c.trace_path = path;
  c.count = 0;
  CHECK(generate_requests(c, RandomStreams(1)).size() == 10);
  c.count = 4;
  CHECK(generate_requests(c, RandomStreams(1)).size() == 4);
  c.count = 0;
  c.duration = Duration::s(2);  // arrivals 0, 0.5, 1, 1.5
  const auto r = generate_requests(c, RandomStreams(1));
  CHECK(r.size() == 4);
  CHECK(r.back().prompt_tokens == 13);
  std::remove(path.c_str());
}

TEST_CASE("bad stream settings are InputErrors", "[serving][requests]") {
  auto c = stream(ArrivalKind::kPoisson, 0.0, 10);
  CHECK_THROWS_AS(generate_requests(c, RandomStreams(1)), InputError);
  c = stream(ArrivalKind::kBursty, 1.0, 10);
  c.cv = 0.0;
  CHECK_THROWS_AS(generate_requests(c, RandomStreams(1)), InputError);
  c = stream(ArrivalKind::kOffline, 1.0, 10);
  c.duration = Duration::s(1);
  CHECK_THROWS_AS(generate_requests(c, RandomStreams(1)), InputError);
  c = stream(ArrivalKind::kPoisson, 1.0, 10);
  c.prompt.max = 0;
  CHECK_THROWS_AS(generate_requests(c, RandomStreams(1)), InputError);
  c = stream(ArrivalKind::kTrace, 1.0, 10);
  CHECK_THROWS_AS(generate_requests(c, RandomStreams(1)), InputError);
}
