#include <catch2/catch.hpp>

#include "sim/units.hpp"

using namespace moesim;

TEST_CASE("durations convert at compile time", "[units]") {
  static_assert(Duration::us(1).count_ps() == 1'000'000);
  static_assert(Duration::ms(2) == Duration::us(2000));
  static_assert(Duration::s(1) == Duration::ns(1'000'000'000));
  REQUIRE(Duration::ns(5).count_ps() == 5000);
}
