// `moesim sweep [SCENARIO.ini] --vary key=v1,v2,... [--vary ...] [-o sweep.h5] [--json]`
// `moesim sweep [SCENARIO.ini] --search strategies [-o search.h5] [--json]`
//
// A sweep runs the scenario once per configuration: the cartesian product of
// the --vary lists (the first --vary varies slowest), each value applied as a
// command-line override (it wins over the scenario file and the other
// overrides). Any scenario key may be varied. Every key and value is checked
// before anything runs (a bad one is exit 2, naming it). Configurations run
// in parallel on the machine's cores; each lands in its own row, so the
// output does not depend on the thread count. A configuration that fails
// (e.g. an invalid strategy for one value) is reported in its row; the sweep
// fails (exit 2) only when every configuration does.
//
// Serving scenarios print rate, throughput, TTFT p50/p99, TPOT p50/p99 and
// goodput per row, and, when workload.rate is varied, the highest rate whose
// run meets the SLO (slo.attainment of the requests within slo.ttft and
// slo.tpot), per combination of the other varied keys.
//
// --search strategies hands the scenario to the strategy search
// (apps/strategy_search.hpp).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/hdf5_writer.hpp"
#include "analysis/run_report.hpp"
#include "analysis/serving_run.hpp"
#include "apps/commands.hpp"
#include "apps/strategy_search.hpp"
#include "sim/unit_parse.hpp"

namespace moesim::cli {
namespace {

struct Axis {
  std::string key;
  std::vector<std::string> values;
};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

// "key=v1,v2,..." -> Axis, every value checked against the option's spec.
Axis parse_axis(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError("--vary '" + text + "': expected KEY=V1,V2,... (e.g. --vary workload.rate=1,2,4,8)");
  }
  Axis axis;
  axis.key = trim(text.substr(0, eq));
  if (axis.key.rfind("--", 0) == 0) axis.key = axis.key.substr(2);
  const OptionSpec* spec = scenario_registry().find(axis.key);
  if (spec == nullptr) {
    std::string msg = "--vary: unknown scenario key '" + axis.key + "'";
    const std::string guess = scenario_registry().closest(axis.key);
    if (!guess.empty()) msg += "; did you mean '" + guess + "'?";
    msg += " (moesim presets --options lists every scenario key)";
    throw InputError(msg);
  }
  std::string rest = text.substr(eq + 1);
  std::size_t start = 0;
  for (;;) {
    const auto comma = rest.find(',', start);
    const std::string v = trim(rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (v.empty()) throw InputError("--vary " + axis.key + ": empty value in '" + rest + "'");
    if (const std::string err = OptionRegistry::validate(*spec, v); !err.empty()) {
      throw InputError("--vary " + axis.key + "=" + v + ": " + err);
    }
    axis.values.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return axis;
}

// A value as JSON: a number when it is one, else the text.
nlohmann::json value_json(const std::string& v) {
  try {
    const double d = parse_double(v);
    if (std::isfinite(d)) {
      if (d == std::floor(d) && std::fabs(d) < 9e15 && v.find_first_of(".eE") == std::string::npos) {
        return static_cast<std::int64_t>(d);
      }
      return d;
    }
  } catch (const ParseError&) {
  }
  return v;
}

struct Row {
  std::vector<std::string> values;  // one per axis
  bool ok = false;
  std::string error;
  nlohmann::json summary;
  bool serving = false;
};

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string ms(double s) { return fmt(s * 1e3, s * 1e3 >= 100 ? 0 : 1); }
std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s.insert(0, w - s.size(), ' ');
  return s;
}

double num(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json* p = &j;
  if (!p->contains(a)) return std::nan("");
  p = &(*p)[a];
  if (b != nullptr) {
    if (!p->contains(b)) return std::nan("");
    p = &(*p)[b];
  }
  return p->is_number() ? p->get<double>() : std::nan("");
}

std::string format_table(const std::vector<Axis>& axes, const std::vector<Row>& rows) {
  std::ostringstream o;
  const bool serving = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.ok && r.serving; });
  bool ramp_up_rows = false;
  std::vector<std::size_t> w;
  for (const Axis& a : axes) {
    std::size_t width = a.key.size();
    for (const auto& v : a.values) width = std::max(width, v.size());
    w.push_back(width + 2);
    o << pad(a.key, w.back());
  }
  if (serving) {
    o << pad("out tok/s", 12) << pad("tok/s", 12) << pad("req/s", 9) << pad("TTFT p50", 10) << pad("p99", 9)
      << pad("TPOT p50", 10) << pad("p99", 8) << pad("goodput", 9) << pad("SLO", 9) << "\n";
    o << std::string(std::accumulate(w.begin(), w.end(), std::size_t{0}), ' ') << pad("", 12) << pad("", 12)
      << pad("", 9) << pad("[ms]", 10) << pad("[ms]", 9) << pad("[ms]", 10) << pad("[ms]", 8) << pad("[req/s]", 9)
      << "\n";
  } else {
    o << pad("latency ms", 12) << pad("tok/s", 12) << pad("out tok/s", 12) << pad("seq/s", 10) << "\n";
  }
  for (const Row& r : rows) {
    for (std::size_t i = 0; i < axes.size(); ++i) o << pad(r.values[i], w[i]);
    if (!r.ok) {
      o << "  failed: " << r.error.substr(0, r.error.find('\n')) << "\n";
      continue;
    }
    const auto& j = r.summary;
    if (r.serving) {
      const double att = num(j, "slo_attainment");
      o << pad(fmt(num(j, "throughput", "output_tokens_per_s"), 1), 12)
        << pad(fmt(num(j, "throughput", "tokens_per_s"), 1), 12) << pad(fmt(num(j, "requests_per_s"), 2), 9)
        << pad(ms(num(j, "ttft_s", "p50")), 10) << pad(ms(num(j, "ttft_s", "p99")), 9)
        << pad(ms(num(j, "tpot_s", "p50")), 10) << pad(ms(num(j, "tpot_s", "p99")), 8)
        << pad(fmt(num(j, "goodput"), 2), 9)
        << pad((j.value("meets_slo", false) ? "yes " : "no ") + fmt(100 * att, 0) + "%", 9);
      const double ramp = num(j, "window_s", "ramp_up_fraction");
      if (ramp > analysis::kRampUpWarning) {
        o << "  * ~" << fmt(100 * ramp, 0) << " % low";
        ramp_up_rows = true;
      }
      o << "\n";
    } else {
      o << pad(ms(num(j, "latency_s")), 12) << pad(fmt(num(j, "throughput", "tokens_per_s"), 1), 12)
        << pad(fmt(num(j, "throughput", "output_tokens_per_s"), 1), 12)
        << pad(fmt(num(j, "throughput", "sequences_per_s"), 2), 10) << "\n";
    }
  }
  if (ramp_up_rows) {
    o << "* the run is short for its load: its measured window opens less than a request lifetime after the\n"
         "  first arrival (ramp-up), so req/s, tok/s and goodput are about that much low and its latencies\n"
         "  come from a filling system (not counted for the highest rate); raise workload.requests\n";
  }
  return o.str();
}

// When workload.rate is varied in a serving sweep: for each combination of the
// other varied keys, the highest rate whose run meets the SLO.
nlohmann::json max_rate_meeting_slo(const std::vector<Axis>& axes, const std::vector<Row>& rows) {
  nlohmann::json out = nlohmann::json::array();
  std::size_t rate_axis = axes.size();
  for (std::size_t i = 0; i < axes.size(); ++i) {
    if (axes[i].key == "workload.rate") rate_axis = i;
  }
  if (rate_axis == axes.size()) return out;
  std::map<std::vector<std::string>, std::pair<double, bool>> best;  // others -> (rate, found)
  std::vector<std::vector<std::string>> order;
  for (const Row& r : rows) {
    std::vector<std::string> others;
    for (std::size_t i = 0; i < axes.size(); ++i) {
      if (i != rate_axis) others.push_back(axes[i].key + "=" + r.values[i]);
    }
    if (best.find(others) == best.end()) {
      best[others] = {0.0, false};
      order.push_back(others);
    }
    // A run too short for its load (ramp-up) has not shown its steady state:
    // its latencies come from a filling system, so it does not count.
    const bool steady = !(num(r.summary, "window_s", "ramp_up_fraction") > analysis::kRampUpWarning);
    if (r.ok && r.serving && steady && r.summary.value("meets_slo", false)) {
      const double rate = parse_double(r.values[rate_axis]);
      auto& b = best[others];
      if (!b.second || rate > b.first) b = {rate, true};
    }
  }
  for (const auto& others : order) {
    nlohmann::json e;
    e["others"] = others;
    const auto& b = best[others];
    e["rate"] = b.second ? nlohmann::json(b.first) : nlohmann::json(nullptr);
    out.push_back(e);
  }
  return out;
}

int run_search(const std::optional<std::string>& scenario, const ParsedArgs& parsed, bool json,
               const std::optional<std::string>& output, const std::string& command) {
  const Config config = make_config(scenario, parsed.overrides);
  SearchOptions options;
  std::mutex mu;
  bool line_open = false;
  options.progress = [&mu, &line_open](std::size_t done, std::size_t total) {
    const std::lock_guard<std::mutex> lock(mu);
    std::cerr << "\rmoesim sweep: searching strategies " << done << "/" << total << std::flush;
    line_open = done != total;
    if (!line_open) std::cerr << "\n";
  };
  const SearchResult result = run_strategy_search(config, options);
  if (line_open) std::cerr << "\n";
  if (output) write_search_results(*output, result, config, command);
  if (json) {
    std::cout << search_result_json(result).dump(2) << "\n";
  } else {
    std::cout << format_search_result(result);
    if (output) std::cout << "Results written to " << *output << "\n";
  }
  return 0;
}

}  // namespace

int cmd_sweep(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("vary", po::value<std::vector<std::string>>()->value_name("KEY=V1,V2,..."),
                     "vary a scenario key over values (repeat for a cartesian product)")(
      "search", po::value<std::vector<std::string>>()->value_name("strategies"),
      "search the parallel strategies instead (--search strategies)")(
      "json", "print one JSON document ({rows: [...]}) instead of the table")(
      "output,o", po::value<std::vector<std::string>>()->value_name("FILE"),
      "write the results to an HDF5 file (/sweep table, docs/results-format.md)")(
      "threads", po::value<std::vector<std::string>>()->value_name("N"),
      "configurations run at once (default: the machine's cores)");
  const ParsedArgs parsed = parse_command_args("sweep", args, desc, 1);
  if (parsed.help) {
    print_command_help(
        "moesim sweep [SCENARIO.ini] --vary KEY=V1,V2,... [--vary ...] [-o sweep.h5] [--json]\n"
        "       moesim sweep [SCENARIO.ini] --search strategies [-o search.h5] [--json]",
        "Runs the scenario (the built-in default when none is given) once per combination of the --vary values\n"
        "and prints one row per run: for serving, throughput, TTFT and TPOT percentiles and goodput, and the\n"
        "highest workload.rate meeting the SLO (slo.ttft, slo.tpot, slo.attainment). --search strategies ranks\n"
        "every valid parallel strategy for the scenario's model, cluster and workload.\n"
        "Example: moesim sweep --vary workload.rate=10,20,40,80",
        desc, true);
    return 0;
  }
  const bool json = parsed.vm.count("json") != 0;
  std::optional<std::string> output;
  if (parsed.vm.count("output") != 0) output = parsed.vm["output"].as<std::vector<std::string>>().back();
  std::optional<std::string> scenario;
  if (!parsed.positional.empty()) scenario = parsed.positional.front();
  std::string command = "moesim sweep";
  for (const auto& a : args) command += " " + a;
  unsigned threads = std::max(1U, std::thread::hardware_concurrency());
  if (parsed.vm.count("threads") != 0) {
    const std::string t = parsed.vm["threads"].as<std::vector<std::string>>().back();
    std::int64_t n = 0;
    try {
      n = parse_int(t);
    } catch (const ParseError&) {
      n = 0;
    }
    if (n < 1 || n > 1024) throw InputError("--threads " + t + ": expected a number of threads in [1, 1024]");
    threads = static_cast<unsigned>(n);
  }

  const bool search = parsed.vm.count("search") != 0;
  const bool vary = parsed.vm.count("vary") != 0;
  if (search) {
    const std::string what = parsed.vm["search"].as<std::vector<std::string>>().back();
    if (what != "strategies") {
      throw InputError("--search " + what + ": the only search is --search strategies");
    }
    if (vary) throw InputError("--search strategies and --vary cannot be combined");
    return run_search(scenario, parsed, json, output, command);
  }
  if (!vary) {
    throw InputError("nothing to sweep: give --vary KEY=V1,V2,... (e.g. --vary workload.rate=1,2,4,8) or "
                     "--search strategies");
  }

  std::vector<Axis> axes;
  for (const auto& text : parsed.vm["vary"].as<std::vector<std::string>>()) {
    Axis a = parse_axis(text);
    for (const Axis& b : axes) {
      if (b.key == a.key) throw InputError("--vary " + a.key + " is given twice");
    }
    axes.push_back(std::move(a));
  }
  // The base scenario is checked once up front (bad file, bad override).
  (void)make_config(scenario, parsed.overrides);

  std::size_t total = 1;
  for (const Axis& a : axes) {
    total *= a.values.size();
    if (total > 100000) throw InputError("--vary: more than 100000 configurations");
  }
  std::vector<Row> rows(total);
  for (std::size_t i = 0; i < total; ++i) {
    std::size_t rest = i;
    rows[i].values.resize(axes.size());
    for (std::size_t k = axes.size(); k-- > 0;) {
      rows[i].values[k] = axes[k].values[rest % axes[k].values.size()];
      rest /= axes[k].values.size();
    }
  }

  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex mu;
  auto worker = [&]() {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= total) return;
      Row& row = rows[i];
      try {
        auto overrides = parsed.overrides;
        for (std::size_t k = 0; k < axes.size(); ++k) overrides.emplace_back(axes[k].key, row.values[k]);
        const Config config = make_config(scenario, overrides);
        if (config.get_string("workload.kind") == "serving") {
          row.serving = true;
          row.summary = analysis::to_json(analysis::run_serving(config));
        } else {
          row.summary = analysis::to_json(analysis::run_batch(config));
        }
        row.ok = true;
      } catch (const InputError& e) {
        row.error = e.what();
      } catch (const std::exception& e) {
        row.error = std::string("internal error: ") + e.what();
      }
      const std::size_t d = ++done;
      const std::lock_guard<std::mutex> lock(mu);
      std::cerr << "\rmoesim sweep: " << d << "/" << total << " configurations done" << std::flush;
      if (d == total) std::cerr << "\n";
    }
  };
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, total));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  const bool any_ok = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.ok; });
  if (!any_ok) throw InputError("every configuration failed; the first: " + rows.front().error);

  nlohmann::json doc;
  doc["varied"] = nlohmann::json::array();
  for (const Axis& a : axes) doc["varied"].push_back(a.key);
  std::vector<nlohmann::json> row_docs;
  for (const Row& r : rows) {
    nlohmann::json j = r.ok ? r.summary : nlohmann::json::object();
    for (std::size_t k = 0; k < axes.size(); ++k) j[axes[k].key] = value_json(r.values[k]);
    j["ok"] = r.ok;
    if (!r.ok) j["error"] = r.error;
    row_docs.push_back(std::move(j));
  }
  doc["rows"] = row_docs;
  const nlohmann::json best = max_rate_meeting_slo(axes, rows);
  if (!best.empty()) doc["max_rate_meeting_slo"] = best;

  if (output) {
    analysis::Hdf5Writer w(*output);
    analysis::Provenance p;
    p.kind = "sweep";
    const Config base = make_config(scenario, parsed.overrides);
    p.seed = base.has("run.seed") ? static_cast<std::uint64_t>(base.get_int("run.seed")) : 0;
    p.scenario_ini = base.to_ini();
    p.command = command;
    analysis::write_provenance(w, p);
    const std::vector<std::string> varied = doc["varied"].get<std::vector<std::string>>();
    analysis::write_json_table(w, analysis::schema::kSweep, row_docs, varied);
    w.commit();
  }

  if (json) {
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::cout << "moesim sweep: " << total << " configuration(s)" << (scenario ? " of " + *scenario : std::string())
            << "\n";
  for (const Row& r : rows) {
    if (r.ok && r.serving && r.summary.contains("slo")) {
      const auto& slo = r.summary["slo"];
      std::cout << "SLO: TTFT <= " << ms(slo.value("ttft_s", 0.0)) << " ms and TPOT <= " << ms(slo.value("tpot_s", 0.0))
                << " ms for at least " << fmt(100 * slo.value("attainment", 0.0), 0) << " % of the requests\n";
      break;
    }
  }
  std::cout << "\n" << format_table(axes, rows);
  for (const auto& e : best) {
    std::string others;
    for (const auto& o : e["others"]) others += (others.empty() ? " (" : ", ") + o.get<std::string>();
    if (!others.empty()) others += ")";
    if (e["rate"].is_null()) {
      std::cout << "\nNo workload.rate tried meets the SLO in steady state" << others << "\n";
    } else {
      std::ostringstream rate;
      rate << e["rate"].get<double>();
      std::cout << "\nHighest workload.rate meeting the SLO in steady state" << others << ": " << rate.str()
                << " requests/s\n";
    }
  }
  if (output) std::cout << "Results written to " << *output << "\n";
  return 0;
}

}  // namespace moesim::cli
