// Unit types and the parsing of quantities with units.
#include <catch2/catch.hpp>

#include "sim/unit_parse.hpp"
#include "sim/units.hpp"

using namespace moesim;
using namespace moesim::literals;

TEST_CASE("durations convert at compile time", "[units]") {
  static_assert(Duration::us(1).count_ps() == 1'000'000);
  static_assert(Duration::ms(2) == Duration::us(2000));
  static_assert(Duration::s(1) == Duration::ns(1'000'000'000));
  static_assert(3_ms + 500_us == Duration::us(3500));
  static_assert((Time::at(2_us) - Time::at(500_ns)) == 1500_ns);
  static_assert(Bytes::gib(1).count() == 1073741824);
  static_assert(Bytes::gb(64).count() == 64'000'000'000);
  static_assert(Bandwidth::gbits_per_second(400).bytes_per_second() == 50e9);
  REQUIRE(Duration::ns(5).count_ps() == 5000);
}

TEST_CASE("conversions that overflow are caught", "[units]") {
  REQUIRE_THROWS_AS(Duration::s(10'000'000), UnitError);  // 1e19 ps > int64
  REQUIRE_THROWS_AS(Duration::max() + 1_ps, UnitError);
  REQUIRE_THROWS_AS(Duration::from_seconds(1e300), UnitError);
  REQUIRE_THROWS_AS(Duration::from_seconds(std::nan("")), UnitError);
  REQUIRE(Duration::from_seconds(1.5e-6) == 1500_ns);
}

TEST_CASE("transfer_duration rounds up to the next picosecond", "[units]") {
  const Bandwidth b = Bandwidth::gbytes_per_second(50);  // 50 B/ns = 0.05 B/ps
  // 1 MiB / 50 GB/s = 1048576 / 5e10 s = 20.97152 us exactly.
  REQUIRE(transfer_duration(Bytes::mib(1), b) == Duration::ps(20'971'520));
  // 1 byte at 50 GB/s = 20 ps exactly; 1 byte at 3 B/ps needs 1/3 ps -> 1 ps.
  REQUIRE(transfer_duration(Bytes(1), b) == 20_ps);
  REQUIRE(transfer_duration(Bytes(1), Bandwidth::bytes_per_second(3e12)) == 1_ps);
  REQUIRE(transfer_duration(Bytes(0), b) == Duration::zero());
  REQUIRE_THROWS_AS(transfer_duration(Bytes(1), Bandwidth::bytes_per_second(0)), UnitError);
}

TEST_CASE("sizes parse with decimal and binary units", "[units][parse]") {
  REQUIRE(parse_bytes("64GiB") == Bytes::gib(64));
  REQUIRE(parse_bytes("80GB") == Bytes::gb(80));
  REQUIRE(parse_bytes(" 1.5 MiB ") == Bytes(1572864));
  REQUIRE(parse_bytes("4096") == Bytes(4096));
  REQUIRE(parse_bytes("2KB") == Bytes(2000));
  REQUIRE_THROWS_AS(parse_bytes("64 GiX"), ParseError);
  REQUIRE_THROWS_AS(parse_bytes("-1GB"), ParseError);
  REQUIRE_THROWS_AS(parse_bytes("1.5"), ParseError);  // not a whole number of bytes
  REQUIRE_THROWS_AS(parse_bytes("lots"), ParseError);
  REQUIRE_THROWS_AS(parse_bytes(""), ParseError);
}

TEST_CASE("bandwidths parse with bits and bytes", "[units][parse]") {
  REQUIRE(parse_bandwidth("400Gbps").bytes_per_second() == Approx(50e9));
  REQUIRE(parse_bandwidth("400Gb/s").bytes_per_second() == Approx(50e9));
  REQUIRE(parse_bandwidth("50GB/s").bytes_per_second() == Approx(50e9));
  REQUIRE(parse_bandwidth("50GBps").bytes_per_second() == Approx(50e9));
  REQUIRE(parse_bandwidth("3.35TB/s").bytes_per_second() == Approx(3.35e12));
  REQUIRE(parse_bandwidth("1GiB/s").bytes_per_second() == Approx(1073741824.0));
  REQUIRE_THROWS_AS(parse_bandwidth("50GB"), ParseError);  // not a rate
  REQUIRE_THROWS_AS(parse_bandwidth("0GB/s"), ParseError);
  REQUIRE_THROWS_AS(parse_bandwidth("fastGB/s"), ParseError);
}

TEST_CASE("durations parse with units", "[units][parse]") {
  REQUIRE(parse_duration("1us") == 1_us);
  REQUIRE(parse_duration("2.5ms") == Duration::us(2500));
  REQUIRE(parse_duration("10ns") == 10_ns);
  REQUIRE(parse_duration("0.5") == 500_ms);  // bare number: seconds
  REQUIRE(parse_duration("3", "us") == 3_us);
  REQUIRE_THROWS_AS(parse_duration("5 min"), ParseError);
  REQUIRE_THROWS_AS(parse_duration("-1us"), ParseError);
}

TEST_CASE("plain values", "[units][parse]") {
  REQUIRE(parse_int("42") == 42);
  REQUIRE_THROWS_AS(parse_int("4.2"), ParseError);
  REQUIRE_THROWS_AS(parse_int("12abc"), ParseError);
  REQUIRE(parse_double("1e3") == 1000.0);
  REQUIRE_THROWS_AS(parse_double("nan"), ParseError);
  REQUIRE(parse_bool("yes"));
  REQUIRE_FALSE(parse_bool("Off"));
  REQUIRE_THROWS_AS(parse_bool("maybe"), ParseError);
}
