// `moesim run [SCENARIO.ini] [--section.key=value ...] [-o results.h5]
//             [--trace timeline.json] [--json]`
//
// workload.kind = batch: one prefill iteration (analysis/run_report.hpp's
// run_batch). workload.kind = serving: a request stream (run_serving_mode
// below; the serving engine plugs in there).
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/chrome_trace.hpp"
#include "analysis/run_report.hpp"
#include "analysis/serving_run.hpp"
#include "apps/commands.hpp"

namespace moesim::cli {
namespace {

/// What the user asked to get out of a run, whatever the mode.
struct RunOutputs {
  bool json = false;
  std::optional<std::string> hdf5_path;
  std::optional<std::string> trace_path;
  std::string command;  // the command line, for provenance
};

int run_batch_mode(const Config& config, const RunOutputs& out) {
  analysis::ChromeTrace trace;
  analysis::BatchRunOptions options;
  if (out.trace_path) options.trace = &trace;
  const analysis::RunSummary summary = analysis::run_batch(config, options);
  if (out.hdf5_path) analysis::write_results(*out.hdf5_path, summary, config.to_ini(), out.command);
  if (out.trace_path) trace.write(*out.trace_path);
  if (out.json) {
    std::cout << analysis::to_json(summary).dump(2) << "\n";
  } else {
    std::cout << analysis::format_report(summary);
    if (out.hdf5_path) std::cout << "Results written to " << *out.hdf5_path << "\n";
    if (out.trace_path) std::cout << "Timeline written to " << *out.trace_path << " (open in ui.perfetto.dev)\n";
  }
  return 0;
}

// ---- serving mode (serving engineer; logic in analysis/serving_run.hpp) ----
int run_serving_mode(const Config& config, const RunOutputs& out) {
  const analysis::ServingRun run = analysis::run_serving(config);
  if (out.hdf5_path) analysis::write_serving_results(*out.hdf5_path, run, config.to_ini(), out.command);
  if (out.trace_path) {
    analysis::ChromeTrace trace;
    analysis::fill_serving_trace(trace, run);
    trace.write(*out.trace_path);
  }
  if (out.json) {
    std::cout << analysis::to_json(run).dump(2) << "\n";
  } else {
    std::cout << analysis::format_serving_report(run);
    if (out.hdf5_path) std::cout << "Results written to " << *out.hdf5_path << "\n";
    if (out.trace_path) std::cout << "Timeline written to " << *out.trace_path << " (open in ui.perfetto.dev)\n";
  }
  return 0;
}
// ---- end of serving mode ----

}  // namespace

int cmd_run(const std::vector<std::string>& args) {
  // Path options are vectors (the last one given wins): GCC 12's
  // -Wnull-dereference flags Boost's typed_value<std::string>::notify in this
  // translation unit, not the vector instantiation.
  po::options_description desc("Options");
  desc.add_options()("json", "print one JSON document (DESIGN.md `run` keys) instead of the report")(
      "output,o", po::value<std::vector<std::string>>()->value_name("FILE"),
      "write the results to an HDF5 file (docs/results-format.md)")(
      "trace", po::value<std::vector<std::string>>()->value_name("FILE"),
      "write the simulated timeline as a Chrome trace (open in ui.perfetto.dev)");
  const ParsedArgs parsed = parse_command_args("run", args, desc, 1);
  if (parsed.help) {
    print_command_help(
        "moesim run [SCENARIO.ini] [--section.key=value ...] [-o results.h5] [--trace timeline.json] [--json]",
        "Simulates a scenario (the built-in default when none is given). workload.kind = batch runs one prefill\n"
        "iteration of workload.batch sequences of workload.prompt_tokens and reports its latency, throughput,\n"
        "memory per GPU and where the GPUs' time went; workload.kind = serving runs a request stream.",
        desc, true);
    return 0;
  }
  RunOutputs out;
  out.json = parsed.vm.count("json") != 0;
  if (parsed.vm.count("output") != 0) out.hdf5_path = parsed.vm["output"].as<std::vector<std::string>>().back();
  if (parsed.vm.count("trace") != 0) out.trace_path = parsed.vm["trace"].as<std::vector<std::string>>().back();
  out.command = "moesim run";
  for (const auto& a : args) out.command += " " + a;

  std::optional<std::string> scenario;
  if (!parsed.positional.empty()) scenario = parsed.positional.front();
  const Config config = make_config(scenario, parsed.overrides);
  if (config.get_string("workload.kind") == "batch") return run_batch_mode(config, out);
  return run_serving_mode(config, out);
}

}  // namespace moesim::cli
