// Named random streams: independence, reproducibility, distribution sanity.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "sim/random.hpp"

using namespace moesim;

namespace {
std::vector<std::uint64_t> draw(RandomStream s, int n) {
  std::vector<std::uint64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(s());
  return v;
}
}  // namespace

TEST_CASE("same seed and name give the same stream", "[random]") {
  REQUIRE(draw(RandomStreams(42).stream("routing"), 100) == draw(RandomStreams(42).stream("routing"), 100));
}

TEST_CASE("streams are independent of each other and of creation order", "[random]") {
  const RandomStreams streams(42);
  // Drawing from a newly added component's stream first must not change
  // what an existing component draws.
  const auto before = draw(streams.stream("arrivals"), 50);
  RandomStream added = streams.stream("new-component");
  for (int i = 0; i < 1000; ++i) (void)added();
  const auto after = draw(streams.stream("arrivals"), 50);
  REQUIRE(before == after);
  REQUIRE(draw(streams.stream("arrivals"), 50) != draw(streams.stream("routing"), 50));
  REQUIRE(draw(RandomStreams(42).stream("arrivals"), 50) != draw(RandomStreams(43).stream("arrivals"), 50));
  REQUIRE(draw(RandomStreams(42, 0).stream("arrivals"), 50) != draw(RandomStreams(42, 1).stream("arrivals"), 50));
}

TEST_CASE("distributions have the right moments", "[random]") {
  RandomStream s = RandomStreams(1).stream("moments");
  const int n = 200000;
  double sum_u = 0;
  double sum_e = 0;
  double sum_n = 0;
  double sum_n2 = 0;
  double sum_g = 0;
  double sum_g2 = 0;
  for (int i = 0; i < n; ++i) {
    sum_u += s.uniform();
    sum_e += s.exponential(2.0);
    const double z = s.normal();
    sum_n += z;
    sum_n2 += z * z;
    const double g = s.gamma(4.0, 0.5);  // mean k*theta = 2, var k*theta^2 = 1
    sum_g += g;
    sum_g2 += g * g;
  }
  // Standard errors: uniform 0.29/sqrt(n) ~ 6.5e-4; exponential 2/sqrt(n) ~ 4.5e-3.
  CHECK(sum_u / n == Approx(0.5).margin(0.004));
  CHECK(sum_e / n == Approx(2.0).margin(0.03));
  CHECK(sum_n / n == Approx(0.0).margin(0.01));
  CHECK(sum_n2 / n == Approx(1.0).margin(0.02));
  const double mg = sum_g / n;
  CHECK(mg == Approx(2.0).margin(0.02));
  CHECK(sum_g2 / n - mg * mg == Approx(1.0).margin(0.03));
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[s.below(7)];
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);  // ~5 sigma
}
