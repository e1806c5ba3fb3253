#include "sim/unit_parse.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace moesim {
namespace {

std::string trim(std::string_view s) {
  std::size_t a = 0;
  std::size_t b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a])) != 0) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])) != 0) --b;
  return std::string(s.substr(a, b - a));
}

// Splits "12.5 GiB" into the number 12.5 and the suffix "GiB".
struct NumberAndSuffix {
  double number;
  std::string suffix;
};

NumberAndSuffix split_number(std::string_view text, std::string_view what) {
  const std::string s = trim(text);
  if (s.empty()) throw ParseError("empty " + std::string(what));
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (end == begin || errno == ERANGE || !std::isfinite(v)) {
    throw ParseError("'" + s + "' is not a valid " + std::string(what));
  }
  // strtod accepts "inf"/"nan"/hex; reject anything that does not start like a decimal number.
  const char c0 = s[0];
  if (!(std::isdigit(static_cast<unsigned char>(c0)) != 0 || c0 == '.' || c0 == '-' || c0 == '+')) {
    throw ParseError("'" + s + "' is not a valid " + std::string(what));
  }
  return {v, trim(std::string_view(end))};
}

double prefix_factor(std::string_view p, bool& ok) {
  ok = true;
  if (p.empty()) return 1.0;
  if (p == "k" || p == "K") return 1e3;
  if (p == "M") return 1e6;
  if (p == "G") return 1e9;
  if (p == "T") return 1e12;
  if (p == "P") return 1e15;
  if (p == "Ki") return 1024.0;
  if (p == "Mi") return 1024.0 * 1024.0;
  if (p == "Gi") return 1024.0 * 1024.0 * 1024.0;
  if (p == "Ti") return 1024.0 * 1024.0 * 1024.0 * 1024.0;
  ok = false;
  return 0.0;
}

}  // namespace

Bytes parse_bytes(std::string_view text) {
  const auto [v, suffix] = split_number(text, "size");
  const std::string allowed = " (use a number of bytes or a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
  double factor = 1.0;
  if (!suffix.empty()) {
    if (suffix.back() != 'B') throw ParseError("size '" + trim(text) + "' has an unknown unit" + allowed);
    bool ok = false;
    factor = prefix_factor(std::string_view(suffix).substr(0, suffix.size() - 1), ok);
    if (!ok) throw ParseError("size '" + trim(text) + "' has an unknown unit" + allowed);
  }
  const double bytes = v * factor;
  if (bytes < 0) throw ParseError("size '" + trim(text) + "' is negative");
  if (bytes >= 9.2e18) throw ParseError("size '" + trim(text) + "' is too large");
  const double rounded = std::round(bytes);
  if (std::fabs(bytes - rounded) > 1e-6 * std::max(1.0, bytes)) {
    throw ParseError("size '" + trim(text) + "' is not a whole number of bytes");
  }
  return Bytes(static_cast<std::int64_t>(rounded));
}

Bandwidth parse_bandwidth(std::string_view text) {
  const auto [v, suffix] = split_number(text, "bandwidth");
  const std::string allowed =
      " (use bytes/s or a unit: GB/s, GBps, MB/s, Gbps, Gb/s, Mbps, TB/s, GiB/s)";
  double factor = 1.0;
  if (!suffix.empty()) {
    std::string unit = suffix;
    if (unit.size() > 2 && unit.compare(unit.size() - 2, 2, "/s") == 0) {
      unit.resize(unit.size() - 2);
    } else if (unit.size() > 2 && unit.compare(unit.size() - 2, 2, "ps") == 0) {
      unit.resize(unit.size() - 2);
    } else {
      throw ParseError("bandwidth '" + trim(text) + "' needs a per-second unit" + allowed);
    }
    if (unit.empty()) throw ParseError("bandwidth '" + trim(text) + "' has an unknown unit" + allowed);
    const char last = unit.back();
    double per = 0.0;
    if (last == 'B') per = 1.0;
    else if (last == 'b') per = 0.125;
    else throw ParseError("bandwidth '" + trim(text) + "' has an unknown unit" + allowed);
    bool ok = false;
    const double pf = prefix_factor(std::string_view(unit).substr(0, unit.size() - 1), ok);
    if (!ok) throw ParseError("bandwidth '" + trim(text) + "' has an unknown unit" + allowed);
    factor = pf * per;
  }
  const double bps = v * factor;
  if (!(bps > 0.0)) throw ParseError("bandwidth '" + trim(text) + "' must be positive");
  return Bandwidth::bytes_per_second(bps);
}

Duration parse_duration(std::string_view text, std::string_view bare_unit) {
  const auto [v, suffix0] = split_number(text, "duration");
  const std::string suffix = suffix0.empty() ? std::string(bare_unit) : suffix0;
  double ps_per_unit = 0.0;
  if (suffix == "ps") ps_per_unit = 1.0;
  else if (suffix == "ns") ps_per_unit = 1e3;
  else if (suffix == "us") ps_per_unit = 1e6;
  else if (suffix == "ms") ps_per_unit = 1e9;
  else if (suffix == "s") ps_per_unit = 1e12;
  else throw ParseError("duration '" + trim(text) + "' has an unknown unit (use ps, ns, us, ms or s)");
  const double ps = std::round(v * ps_per_unit);
  if (ps < 0) throw ParseError("duration '" + trim(text) + "' is negative");
  if (ps >= 9.2e18) throw ParseError("duration '" + trim(text) + "' is too long");
  return Duration::ps(static_cast<std::int64_t>(ps));
}

double parse_double(std::string_view text) {
  const auto [v, suffix] = split_number(text, "number");
  if (!suffix.empty()) throw ParseError("'" + trim(text) + "' is not a plain number");
  return v;
}

std::int64_t parse_int(std::string_view text) {
  const std::string s = trim(text);
  if (s.empty()) throw ParseError("empty integer");
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0' || errno == ERANGE) {
    throw ParseError("'" + s + "' is not an integer");
  }
  return v;
}

bool parse_bool(std::string_view text) {
  std::string s = trim(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  throw ParseError("'" + trim(text) + "' is not a boolean (use true/false, yes/no, on/off, 1/0)");
}

std::string format_bytes(Bytes b) {
  const double v = b.as_double();
  char buf[64];
  if (v >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1024.0 * 1024 * 1024));
  else if (v >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.2f MiB", v / (1024.0 * 1024));
  else if (v >= 1024.0) std::snprintf(buf, sizeof buf, "%.2f KiB", v / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b.count()));
  return buf;
}

std::string format_bandwidth(Bandwidth bw) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GB/s", bw.gbytes_per_second());
  return buf;
}

std::string format_duration(Duration d) {
  const double ps = static_cast<double>(d.count_ps());
  char buf[64];
  if (ps >= 1e12) std::snprintf(buf, sizeof buf, "%.4f s", ps * 1e-12);
  else if (ps >= 1e9) std::snprintf(buf, sizeof buf, "%.3f ms", ps * 1e-9);
  else if (ps >= 1e6) std::snprintf(buf, sizeof buf, "%.3f us", ps * 1e-6);
  else std::snprintf(buf, sizeof buf, "%.3f ns", ps * 1e-3);
  return buf;
}

}  // namespace moesim
