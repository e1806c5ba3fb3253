#pragma once
// One registry of scenario options. Each option is defined once, with its
// name (`section.key`), type, unit, default and help text; values come from an
// INI scenario file (`[section]` / `key = value`) and from `--section.key=value`
// on the command line, the command line winning. Each module registers its own
// options (register_*_options functions) and reads them back from a Config.
//
// Every error is an InputError whose message says what to fix, naming the
// file and line (or "command line") and what is allowed; the CLI turns it into
// exit code 2.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sim/units.hpp"

namespace moesim {

/// Bad user input (file, value, strategy, topology). The CLI exits with 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class OptionType : std::uint8_t {
  kInt,
  kDouble,
  kBool,
  kString,
  kBytes,      // accepts 64GiB, 80GB, ...
  kBandwidth,  // accepts 400Gbps, 50GB/s, ...
  kDuration,   // accepts 1us, 2.5ms, ... (bare number: seconds)
  kChoice,     // one of `choices`
};

std::string_view to_string(OptionType t);

struct OptionSpec {
  std::string name;            // "section.key"
  OptionType type = OptionType::kString;
  std::string unit;            // shown in help: "bytes", "requests/s", ...
  std::string default_value;   // text form; empty = no default (optional option)
  std::string help;
  std::optional<double> min;   // inclusive bounds for numeric types (in base units)
  std::optional<double> max;
  std::vector<std::string> choices;  // for kChoice
};

class OptionRegistry {
 public:
  /// Adds an option; throws std::logic_error on a duplicate name or a default
  /// that does not validate (a programming error, not user input).
  void add(OptionSpec spec);
  [[nodiscard]] const OptionSpec* find(std::string_view name) const;
  /// All options, sorted by name.
  [[nodiscard]] std::vector<const OptionSpec*> all() const;
  /// The known option closest to `name` (edit distance), or "" when none is close.
  [[nodiscard]] std::string closest(std::string_view name) const;
  /// Checks `value` against the spec; returns "" when valid, else what is wrong.
  [[nodiscard]] static std::string validate(const OptionSpec& spec, std::string_view value);

 private:
  std::map<std::string, OptionSpec, std::less<>> specs_;
};

/// Resolved option values of one scenario.
class Config {
 public:
  explicit Config(const OptionRegistry& registry) : registry_(&registry) {}

  /// Reads an INI scenario file. Throws InputError (missing file, malformed
  /// line, unknown key, bad value), naming the file and line.
  void load_ini(const std::string& path);
  /// Reads INI text (the `origin` names it in messages).
  void load_ini_text(std::string_view text, const std::string& origin);
  /// Sets one option; `source` names where the value came from.
  void set(std::string_view name, std::string_view value, const std::string& source);

  [[nodiscard]] bool has(std::string_view name) const;       // set or defaulted
  [[nodiscard]] bool is_set(std::string_view name) const;    // set explicitly
  [[nodiscard]] std::string source(std::string_view name) const;  // "default", "file.ini:3", ...
  [[nodiscard]] std::string text(std::string_view name) const;    // raw value text

  [[nodiscard]] std::int64_t get_int(std::string_view name) const;
  [[nodiscard]] double get_double(std::string_view name) const;
  [[nodiscard]] bool get_bool(std::string_view name) const;
  [[nodiscard]] std::string get_string(std::string_view name) const;
  [[nodiscard]] Bytes get_bytes(std::string_view name) const;
  [[nodiscard]] Bandwidth get_bandwidth(std::string_view name) const;
  [[nodiscard]] Duration get_duration(std::string_view name) const;

  /// Every option with a value (set or default), sorted: name -> text.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> resolved() const;
  /// The resolved scenario (defaults included) as INI text, one [section]
  /// per option prefix: what results files record as provenance.
  [[nodiscard]] std::string to_ini() const;
  [[nodiscard]] const OptionRegistry& registry() const { return *registry_; }
  /// The scenario file this config was loaded from ("" for the built-in default).
  [[nodiscard]] const std::string& scenario_path() const { return scenario_path_; }

 private:
  struct Value {
    std::string text;
    std::string source;
  };
  const OptionSpec& spec_or_throw(std::string_view name) const;
  [[nodiscard]] std::string value_text(std::string_view name) const;

  const OptionRegistry* registry_;
  std::map<std::string, Value, std::less<>> values_;
  std::string scenario_path_;
};

/// Levenshtein edit distance (for "did you mean" suggestions).
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace moesim
