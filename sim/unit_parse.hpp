#pragma once
// Parsing of quantities with units, as users write them in scenario files and
// on the command line. Decimal prefixes are powers of 1000 and binary prefixes
// (Ki, Mi, Gi, Ti) powers of 1024. A lower-case "b" after a prefix means bits
// ("400Gbps", "400Gb/s"); an upper-case "B" means bytes ("50GB/s", "50GBps").
// Every function throws ParseError with a message that names what is allowed.

#include <stdexcept>
#include <string>
#include <string_view>

#include "sim/units.hpp"

namespace moesim {

class ParseError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// "64GiB", "80GB", "1.5 MiB", "4096" (bare number = bytes). Must be >= 0 and integral bytes.
Bytes parse_bytes(std::string_view text);
/// "400Gbps", "400Gb/s", "50GB/s", "50GBps", "3.35TB/s", "1e9" (bare = bytes/s).
Bandwidth parse_bandwidth(std::string_view text);
/// "1us", "2.5 ms", "10ns", "3s", "100ps"; a bare number is taken in `bare_unit`
/// ("s" unless stated), e.g. parse_duration("0.5") == 0.5 s.
Duration parse_duration(std::string_view text, std::string_view bare_unit = "s");
/// Plain numbers, with the whole string consumed; "1e6" and "1_000" are not accepted... "1e6" is.
double parse_double(std::string_view text);
std::int64_t parse_int(std::string_view text);
bool parse_bool(std::string_view text);

/// Human-readable renderings used in reports ("64.0 GiB", "50.0 GB/s", "1.234 ms").
std::string format_bytes(Bytes b);
std::string format_bandwidth(Bandwidth bw);
std::string format_duration(Duration d);

}  // namespace moesim
