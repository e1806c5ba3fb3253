#include "sim/options.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <numeric>
#include <sstream>

#include "sim/unit_parse.hpp"

namespace moesim {
namespace {

std::string trim(std::string_view s) {
  std::size_t a = 0;
  std::size_t b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a])) != 0) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])) != 0) --b;
  return std::string(s.substr(a, b - a));
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 0) out += sep;
    out += v[i];
  }
  return out;
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Numeric value of `value` in the option's base unit, for range checks.
double numeric_value(const OptionSpec& spec, std::string_view value) {
  switch (spec.type) {
    case OptionType::kInt: return static_cast<double>(parse_int(value));
    case OptionType::kDouble: return parse_double(value);
    case OptionType::kBytes: return parse_bytes(value).as_double();
    case OptionType::kBandwidth: return parse_bandwidth(value).bytes_per_second();
    case OptionType::kDuration: return parse_duration(value).seconds();
    default: return 0.0;
  }
}

}  // namespace

std::string_view to_string(OptionType t) {
  switch (t) {
    case OptionType::kInt: return "integer";
    case OptionType::kDouble: return "number";
    case OptionType::kBool: return "boolean";
    case OptionType::kString: return "text";
    case OptionType::kBytes: return "size";
    case OptionType::kBandwidth: return "bandwidth";
    case OptionType::kDuration: return "duration";
    case OptionType::kChoice: return "choice";
  }
  return "?";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string OptionRegistry::validate(const OptionSpec& spec, std::string_view value) {
  try {
    switch (spec.type) {
      case OptionType::kBool: parse_bool(value); return "";
      case OptionType::kString: return "";
      case OptionType::kChoice: {
        const std::string v = trim(value);
        if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end()) {
          return "'" + v + "' is not one of: " + join(spec.choices, ", ");
        }
        return "";
      }
      default: break;
    }
    const double v = numeric_value(spec, value);
    if (spec.min && v < *spec.min) {
      return "'" + trim(value) + "' is below the minimum " + format_number(*spec.min) +
             (spec.unit.empty() ? "" : " " + spec.unit);
    }
    if (spec.max && v > *spec.max) {
      return "'" + trim(value) + "' is above the maximum " + format_number(*spec.max) +
             (spec.unit.empty() ? "" : " " + spec.unit);
    }
    return "";
  } catch (const ParseError& e) {
    return std::string(e.what()) + " (expected a " + std::string(to_string(spec.type)) +
           (spec.unit.empty() ? "" : " in " + spec.unit) + ")";
  }
}

void OptionRegistry::add(OptionSpec spec) {
  if (spec.name.find('.') == std::string::npos) {
    throw std::logic_error("option name '" + spec.name + "' must be section.key");
  }
  if (specs_.count(spec.name) != 0) throw std::logic_error("option '" + spec.name + "' defined twice");
  if (!spec.default_value.empty()) {
    const std::string err = validate(spec, spec.default_value);
    if (!err.empty()) throw std::logic_error("default of option '" + spec.name + "': " + err);
  }
  std::string name = spec.name;
  specs_.emplace(std::move(name), std::move(spec));
}

const OptionSpec* OptionRegistry::find(std::string_view name) const {
  const auto it = specs_.find(name);
  return it == specs_.end() ? nullptr : &it->second;
}

std::vector<const OptionSpec*> OptionRegistry::all() const {
  std::vector<const OptionSpec*> out;
  out.reserve(specs_.size());
  for (const auto& [name, spec] : specs_) out.push_back(&spec);
  return out;
}

std::string OptionRegistry::closest(std::string_view name) const {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& [known, spec] : specs_) {
    std::size_t d = edit_distance(name, known);
    // A key in the wrong section ("network.tp" for "strategy.tp") is close too.
    const auto dot_a = name.find('.');
    const auto dot_b = known.find('.');
    if (dot_a != std::string_view::npos && name.substr(dot_a) == std::string_view(known).substr(dot_b)) {
      d = std::min<std::size_t>(d, 2);
    }
    if (d < best_d) {
      best_d = d;
      best = known;
    }
  }
  const std::size_t limit = std::max<std::size_t>(3, name.size() / 3);
  return best_d <= limit ? best : std::string();
}

const OptionSpec& Config::spec_or_throw(std::string_view name) const {
  const OptionSpec* spec = registry_->find(name);
  if (spec == nullptr) throw std::logic_error("unregistered option '" + std::string(name) + "' read");
  return *spec;
}

void Config::set(std::string_view name, std::string_view value, const std::string& source) {
  const OptionSpec* spec = registry_->find(name);
  if (spec == nullptr) {
    std::string msg = source + ": unknown option '" + std::string(name) + "'";
    const std::string guess = registry_->closest(name);
    if (!guess.empty()) msg += "; did you mean '" + guess + "'?";
    msg += " (moesim presets --options lists every option)";
    throw InputError(msg);
  }
  const std::string err = OptionRegistry::validate(*spec, value);
  if (!err.empty()) {
    std::string msg = source + ": " + spec->name + ": " + err;
    if (spec->type == OptionType::kChoice) {
      // validate() already lists the choices
    } else if (spec->min || spec->max) {
      msg += " [allowed: ";
      msg += spec->min ? format_number(*spec->min) : std::string("-inf");
      msg += " .. ";
      msg += spec->max ? format_number(*spec->max) : std::string("+inf");
      msg += spec->unit.empty() ? "]" : " " + spec->unit + "]";
    }
    throw InputError(msg);
  }
  values_[spec->name] = Value{trim(value), source};
}

void Config::load_ini(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot open scenario file '" + path + "': no such file or not readable");
  std::stringstream ss;
  ss << in.rdbuf();
  scenario_path_ = path;
  load_ini_text(ss.str(), path);
}

void Config::load_ini_text(std::string_view text, const std::string& origin) {
  std::string section;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t eol = text.find('\n', pos);
    const std::string_view raw = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
    ++line_no;
    const std::string where = origin + ":" + std::to_string(line_no);
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']' || line.size() < 3) {
        throw InputError(where + ": malformed section header '" + line + "' (write [section])");
      }
      section = trim(std::string_view(line).substr(1, line.size() - 2));
      if (section.empty() || section.find_first_of(" \t[]=") != std::string::npos) {
        throw InputError(where + ": malformed section name '" + section + "'");
      }
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) {
      throw InputError(where + ": malformed line '" + line + "' (expected key = value)");
    }
    std::string key = trim(std::string_view(line).substr(0, eq));
    std::string value = trim(std::string_view(line).substr(eq + 1));
    // Trailing comments: "key = value   # why"
    for (const char* marker : {" #", "\t#", " ;", "\t;"}) {
      const std::size_t c = value.find(marker);
      if (c != std::string::npos) value = trim(std::string_view(value).substr(0, c));
    }
    if (key.empty()) throw InputError(where + ": missing key before '='");
    if (section.empty()) {
      throw InputError(where + ": key '" + key + "' appears before any [section] header");
    }
    if (value.empty()) throw InputError(where + ": " + section + "." + key + " has no value");
    set(section + "." + key, value, where);
  }
}

bool Config::has(std::string_view name) const {
  if (values_.count(name) != 0) return true;
  const OptionSpec* spec = registry_->find(name);
  return spec != nullptr && !spec->default_value.empty();
}

bool Config::is_set(std::string_view name) const { return values_.count(name) != 0; }

std::string Config::source(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::string("default") : it->second.source;
}

std::string Config::value_text(std::string_view name) const {
  const auto it = values_.find(name);
  if (it != values_.end()) return it->second.text;
  const OptionSpec& spec = spec_or_throw(name);
  if (spec.default_value.empty()) {
    throw InputError("option " + spec.name + " is required here but has no value (set it in the scenario or as --" +
                     spec.name + "=...)");
  }
  return spec.default_value;
}

std::string Config::text(std::string_view name) const { return value_text(name); }
std::int64_t Config::get_int(std::string_view name) const { return parse_int(value_text(name)); }
double Config::get_double(std::string_view name) const { return parse_double(value_text(name)); }
bool Config::get_bool(std::string_view name) const { return parse_bool(value_text(name)); }
std::string Config::get_string(std::string_view name) const { return value_text(name); }
Bytes Config::get_bytes(std::string_view name) const { return parse_bytes(value_text(name)); }
Bandwidth Config::get_bandwidth(std::string_view name) const { return parse_bandwidth(value_text(name)); }
Duration Config::get_duration(std::string_view name) const { return parse_duration(value_text(name)); }

std::string Config::to_ini() const {
  std::string out;
  std::string section;
  for (const auto& [name, value] : resolved()) {  // sorted, so sections come out grouped
    const auto dot = name.find('.');
    const std::string s = name.substr(0, dot);
    if (s != section) {
      if (!section.empty()) out += "\n";
      out += "[" + s + "]\n";
      section = s;
    }
    out += name.substr(dot + 1) + " = " + value + "\n";
  }
  if (!section.empty()) out += "\n";
  return out;
}

std::vector<std::pair<std::string, std::string>> Config::resolved() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const OptionSpec* spec : registry_->all()) {
    if (has(spec->name)) out.emplace_back(spec->name, value_text(spec->name));
  }
  return out;
}

}  // namespace moesim
