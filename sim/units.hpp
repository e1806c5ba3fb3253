#pragma once
// Strong unit types: simulated time (integer picoseconds, as ns-3 and SST do),
// sizes in bytes and bandwidths in bytes per second.
//
// Why integers for time: event ordering must be exact and reproducible; two
// events computed along different arithmetic paths must compare equal when
// they are equal. Picoseconds in an int64 cover +-106 days, far beyond any
// simulated run, and resolve a 1-byte transfer at 1 TB/s.
//
// Bandwidth is a double: flow-level max-min shares are fractions of a link.
// The single bridge from (bytes, bandwidth) back to integer time is
// transfer_duration(), which rounds up (see its comment).

#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace moesim {

/// Thrown when a unit conversion would overflow or is not finite.
class UnitError : public std::range_error {
 public:
  using std::range_error::range_error;
};

namespace detail {
constexpr std::int64_t checked_mul(std::int64_t value, std::int64_t factor) {
  if (factor != 0 && (value > std::numeric_limits<std::int64_t>::max() / factor ||
                      value < std::numeric_limits<std::int64_t>::min() / factor)) {
    throw UnitError("time value overflows int64 picoseconds");
  }
  return value * factor;
}
constexpr std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  if ((b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) ||
      (b < 0 && a < std::numeric_limits<std::int64_t>::min() - b)) {
    throw UnitError("time value overflows int64 picoseconds");
  }
  return a + b;
}
}  // namespace detail

/// A span of simulated time, in integer picoseconds.
class Duration {
 public:
  constexpr Duration() = default;

  static constexpr Duration ps(std::int64_t n) { return Duration(n); }
  static constexpr Duration ns(std::int64_t n) { return Duration(detail::checked_mul(n, 1'000)); }
  static constexpr Duration us(std::int64_t n) { return Duration(detail::checked_mul(n, 1'000'000)); }
  static constexpr Duration ms(std::int64_t n) { return Duration(detail::checked_mul(n, 1'000'000'000)); }
  static constexpr Duration s(std::int64_t n) { return Duration(detail::checked_mul(n, 1'000'000'000'000)); }
  static constexpr Duration zero() { return Duration(0); }
  static constexpr Duration max() { return Duration(std::numeric_limits<std::int64_t>::max()); }

  /// From a real number of seconds, rounded to the nearest picosecond.
  /// Throws UnitError for NaN, infinities and values out of int64 range.
  static Duration from_seconds(double seconds) {
    const double ps = std::round(seconds * 1e12);
    if (!std::isfinite(ps) || ps >= 9.2e18 || ps <= -9.2e18) {
      throw UnitError("duration of " + std::to_string(seconds) + " s is out of range");
    }
    return Duration(static_cast<std::int64_t>(ps));
  }

  [[nodiscard]] constexpr std::int64_t count_ps() const { return ps_; }
  [[nodiscard]] constexpr double seconds() const { return static_cast<double>(ps_) * 1e-12; }
  [[nodiscard]] constexpr double microseconds() const { return static_cast<double>(ps_) * 1e-6; }
  [[nodiscard]] constexpr double milliseconds() const { return static_cast<double>(ps_) * 1e-9; }

  constexpr Duration operator+(Duration o) const { return Duration(detail::checked_add(ps_, o.ps_)); }
  constexpr Duration operator-(Duration o) const { return Duration(detail::checked_add(ps_, -o.ps_)); }
  constexpr Duration operator*(std::int64_t k) const { return Duration(detail::checked_mul(ps_, k)); }
  constexpr Duration operator/(std::int64_t k) const { return Duration(ps_ / k); }
  constexpr Duration& operator+=(Duration o) { return *this = *this + o; }
  constexpr Duration& operator-=(Duration o) { return *this = *this - o; }
  constexpr auto operator<=>(const Duration&) const = default;

 private:
  constexpr explicit Duration(std::int64_t ps) : ps_(ps) {}
  std::int64_t ps_ = 0;
};

/// A point in simulated time: picoseconds since the start of the run.
class Time {
 public:
  constexpr Time() = default;
  static constexpr Time zero() { return Time(); }
  static constexpr Time max() { return Time() + Duration::max(); }
  static constexpr Time at(Duration since_start) { return Time() + since_start; }

  [[nodiscard]] constexpr Duration since_start() const { return d_; }
  [[nodiscard]] constexpr std::int64_t count_ps() const { return d_.count_ps(); }
  [[nodiscard]] constexpr double seconds() const { return d_.seconds(); }

  constexpr Time operator+(Duration d) const { return Time(d_ + d); }
  constexpr Time operator-(Duration d) const { return Time(d_ - d); }
  constexpr Duration operator-(Time o) const { return d_ - o.d_; }
  constexpr Time& operator+=(Duration d) { return *this = *this + d; }
  constexpr auto operator<=>(const Time&) const = default;

 private:
  constexpr explicit Time(Duration d) : d_(d) {}
  Duration d_{};
};

/// A size in bytes (signed, so differences are natural; never negative in use).
class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(std::int64_t n) : n_(n) {}
  static constexpr Bytes kib(std::int64_t n) { return Bytes(detail::checked_mul(n, 1LL << 10)); }
  static constexpr Bytes mib(std::int64_t n) { return Bytes(detail::checked_mul(n, 1LL << 20)); }
  static constexpr Bytes gib(std::int64_t n) { return Bytes(detail::checked_mul(n, 1LL << 30)); }
  static constexpr Bytes gb(std::int64_t n) { return Bytes(detail::checked_mul(n, 1'000'000'000)); }

  [[nodiscard]] constexpr std::int64_t count() const { return n_; }
  [[nodiscard]] constexpr double as_double() const { return static_cast<double>(n_); }

  constexpr Bytes operator+(Bytes o) const { return Bytes(detail::checked_add(n_, o.n_)); }
  constexpr Bytes operator-(Bytes o) const { return Bytes(detail::checked_add(n_, -o.n_)); }
  constexpr Bytes operator*(std::int64_t k) const { return Bytes(detail::checked_mul(n_, k)); }
  constexpr Bytes operator/(std::int64_t k) const { return Bytes(n_ / k); }
  constexpr Bytes& operator+=(Bytes o) { return *this = *this + o; }
  constexpr Bytes& operator-=(Bytes o) { return *this = *this - o; }
  constexpr auto operator<=>(const Bytes&) const = default;

 private:
  std::int64_t n_ = 0;
};

/// A data rate in bytes per second. GB/s means 1e9 B/s; Gb/s means 1.25e8 B/s.
class Bandwidth {
 public:
  constexpr Bandwidth() = default;
  static constexpr Bandwidth bytes_per_second(double v) { return Bandwidth(v); }
  static constexpr Bandwidth gbytes_per_second(double v) { return Bandwidth(v * 1e9); }
  static constexpr Bandwidth gbits_per_second(double v) { return Bandwidth(v * 1e9 / 8.0); }

  [[nodiscard]] constexpr double bytes_per_second() const { return bps_; }
  [[nodiscard]] constexpr double gbytes_per_second() const { return bps_ * 1e-9; }

  constexpr Bandwidth operator*(double k) const { return Bandwidth(bps_ * k); }
  constexpr Bandwidth operator/(double k) const { return Bandwidth(bps_ / k); }
  constexpr Bandwidth operator+(Bandwidth o) const { return Bandwidth(bps_ + o.bps_); }
  constexpr auto operator<=>(const Bandwidth&) const = default;

 private:
  constexpr explicit Bandwidth(double v) : bps_(v) {}
  double bps_ = 0.0;
};

/// Duration of moving `size` at a constant `rate`, rounded UP to the next whole
/// picosecond: a transfer never completes before its last byte could have
/// arrived, and any non-empty transfer takes at least 1 ps. Zero bytes take
/// zero time. Throws UnitError for a non-positive rate with bytes to move, or
/// a result beyond the int64 range.
inline Duration transfer_duration(Bytes size, Bandwidth rate) {
  if (size.count() <= 0) return Duration::zero();
  if (!(rate.bytes_per_second() > 0.0)) {
    throw UnitError("transfer of " + std::to_string(size.count()) + " bytes at a non-positive bandwidth");
  }
  const double ps = std::ceil(size.as_double() * 1e12 / rate.bytes_per_second());
  if (!std::isfinite(ps) || ps >= 9.2e18) throw UnitError("transfer duration out of range");
  return Duration::ps(static_cast<std::int64_t>(ps));
}

/// Same rounding for a fractional number of bytes (flow-level remainders).
inline Duration transfer_duration(double bytes, Bandwidth rate) {
  if (bytes <= 0.0) return Duration::zero();
  if (!(rate.bytes_per_second() > 0.0)) throw UnitError("transfer at a non-positive bandwidth");
  const double ps = std::ceil(bytes * 1e12 / rate.bytes_per_second());
  if (!std::isfinite(ps) || ps >= 9.2e18) throw UnitError("transfer duration out of range");
  return Duration::ps(static_cast<std::int64_t>(ps));
}

namespace literals {
constexpr Duration operator""_ps(unsigned long long n) { return Duration::ps(static_cast<std::int64_t>(n)); }
constexpr Duration operator""_ns(unsigned long long n) { return Duration::ns(static_cast<std::int64_t>(n)); }
constexpr Duration operator""_us(unsigned long long n) { return Duration::us(static_cast<std::int64_t>(n)); }
constexpr Duration operator""_ms(unsigned long long n) { return Duration::ms(static_cast<std::int64_t>(n)); }
constexpr Duration operator""_s(unsigned long long n) { return Duration::s(static_cast<std::int64_t>(n)); }
}  // namespace literals

}  // namespace moesim
