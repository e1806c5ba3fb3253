// `moesim collective`: an nccl-tests-like sweep of one collective over message
// sizes on a simulated cluster (topology/collective_bench.hpp has the logic;
// this file parses the command line and prints the table or the JSON).
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "sim/unit_parse.hpp"
#include "topology/collective_bench.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/topology_options.hpp"

namespace moesim::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Bytes bytes_option(const po::variables_map& vm, const char* name) {
  const std::string text = vm[name].as<std::string>();
  try {
    return parse_bytes(text);
  } catch (const ParseError& e) {
    throw InputError(std::string("--") + name + " " + text + ": " + e.what());
  }
}

constexpr const char* kUsage =
    "moesim collective --op OP [--gpus N] [--min-bytes SIZE] [--max-bytes SIZE] [--factor F]\n"
    "                  [--topology PRESET|FILE.dot] [--nodes N] [--algorithm ALG] [--dtype T]\n"
    "                  [--network.model=analytical|flow] [--section.key=value ...] [SCENARIO.ini] [--json]";

constexpr const char* kDescription =
    "Simulates one collective alone on the cluster for each message size, like nccl-tests,\n"
    "and prints size, count, type, time, algbw and busbw (nccl-tests conventions:\n"
    "algbw = size / time; busbw = algbw x 2(n-1)/n for all_reduce, x (n-1)/n for\n"
    "all_gather, reduce_scatter and all_to_all, x 1 for broadcast and sendrecv; GB/s = 1e9 B/s).\n"
    "The size means what it means in nccl-tests: all_reduce, broadcast, sendrecv the buffer;\n"
    "all_gather the gathered output; reduce_scatter the input; all_to_all each rank's whole\n"
    "send buffer (1/n of it to each peer). Ranks are GPUs 0..N-1. sendrecv: every rank\n"
    "sends to the next and receives from the previous one, all at once.\n"
    "\n"
    "Algorithms (--algorithm, default auto):\n"
    "  all_reduce      ring | hierarchical (reduce-scatter in node, all-reduce per rail,\n"
    "                  all-gather in node); auto = hierarchical across nodes, else ring\n"
    "  all_gather, reduce_scatter, broadcast   ring (broadcast: pipelined chain)\n"
    "  all_to_all      direct (every pair at once) | two_hop (NVLink gather to the\n"
    "                  destination's rail, one transfer per node pair and rail, scatter)\n"
    "Network fidelity: --network.model=flow (default: max-min fair sharing of every link)\n"
    "or analytical (alpha + latency + size / bottleneck, no contention). The per-message\n"
    "overhead and link efficiencies are calibrated per preset (docs/network.md); override\n"
    "them with --network.alpha=2us, --network.nvlink_efficiency=0.8, ...\n"
    "A direct all_to_all moves as one coflow in the flow model (its transfers progress in\n"
    "proportion to their sizes); --network.alltoall_sharing=per_transfer makes every transfer\n"
    "its own max-min flow (docs/network.md).\n"
    "\n"
    "Examples:\n"
    "  moesim collective --op all_reduce --gpus 8 --topology dgx-h100\n"
    "  moesim collective --op all_reduce --gpus 8 --topology dgx-a100 --min-bytes 16MiB --max-bytes 64MiB --factor 4\n"
    "  moesim collective --op all_to_all --gpus 64 --topology dgx-h100 --nodes 8 --algorithm two_hop\n"
    "  moesim collective --op all_to_all --gpus 256 --topology dgx-h100 --topology.nodes=32 \\\n"
    "                    --topology.oversubscription=2 --min-bytes 1MiB --max-bytes 64MiB --json\n"
    "  moesim collective --op all_gather --gpus 16 --topology my_cluster.dot --network.model=analytical\n"
    "  moesim collective --op broadcast --gpus 4 --min-bytes 1KiB --max-bytes 1GiB --factor 8";

}  // namespace

int cmd_collective(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()
      ("op", po::value<std::string>(),
       "collective: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, sendrecv (required)")
      ("gpus", po::value<int>(), "number of ranks, GPUs 0..N-1 (default: every GPU of the topology)")
      ("min-bytes", po::value<std::string>()->default_value("1MiB"), "smallest size (nccl-tests -b), e.g. 1MiB")
      ("max-bytes", po::value<std::string>()->default_value("1GiB"), "largest size (nccl-tests -e), e.g. 1GiB")
      ("factor", po::value<double>()->default_value(2.0), "size multiplier between rows (nccl-tests -f)")
      ("topology", po::value<std::string>(),
       "cluster: a preset (moesim presets) or a GraphViz .dot file (same as --topology.preset=...)")
      ("nodes", po::value<int>(), "servers of a preset (same as --topology.nodes=N)")
      ("algorithm", po::value<std::string>()->default_value("auto"), "auto, ring, hierarchical, direct, two_hop")
      ("dtype", po::value<std::string>()->default_value("float"),
       "element type for the count column and size rounding: int8, half, bfloat16, float, double, ...")
      ("json", "print one JSON document instead of the table");
  const ParsedArgs parsed = parse_command_args("collective", args, desc, 1);
  if (parsed.help) {
    print_command_help(kUsage, kDescription, desc, true);
    return 0;
  }
  const po::variables_map& vm = parsed.vm;
  if (vm.count("op") == 0) {
    throw InputError("--op is required: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast or sendrecv "
                     "(see moesim collective --help)");
  }

  std::optional<std::string> scenario;
  if (!parsed.positional.empty()) scenario = parsed.positional[0];
  Config config = make_config(scenario, parsed.overrides);
  if (vm.count("topology") != 0) {
    const std::string what = vm["topology"].as<std::string>();
    const bool file = ends_with(what, ".dot") || ends_with(what, ".gv") || what.find('/') != std::string::npos;
    config.set(file ? "topology.file" : "topology.preset", what, "command line (--topology)");
  }
  if (vm.count("nodes") != 0) config.set("topology.nodes", std::to_string(vm["nodes"].as<int>()), "--nodes");
  const Topology topology = topology_from_config(config);
  const NetworkParams params = network_params_from_config(config, topology);

  CollectiveBenchConfig bench;
  bench.op = parse_collective_op(vm["op"].as<std::string>());
  if (bench.op == CollectiveOp::kAllToAllV) {
    throw InputError("--op all_to_allv needs a byte matrix; the sweep measures the uniform all_to_all");
  }
  bench.algorithm = parse_collective_algorithm(vm["algorithm"].as<std::string>());
  if (vm.count("gpus") != 0) {
    bench.gpus = vm["gpus"].as<int>();
    if (bench.gpus < 1) throw InputError("--gpus must be >= 1, got " + std::to_string(bench.gpus));
  }
  bench.min_bytes = bytes_option(vm, "min-bytes");
  bench.max_bytes = bytes_option(vm, "max-bytes");
  bench.factor = vm["factor"].as<double>();
  bench.dtype = vm["dtype"].as<std::string>();

  const CollectiveBenchResult result = run_collective_bench(topology, params, bench);

  if (vm.count("json") != 0) {
    nlohmann::json j;
    j["op"] = std::string(to_string(result.op));
    j["gpus"] = result.gpus;
    j["algorithm"] = std::string(to_string(result.algorithm));
    j["algorithm_requested"] = std::string(to_string(bench.algorithm));
    j["dtype"] = result.dtype;
    j["topology"] = {{"name", topology.name},
                     {"gpus", topology.gpu_count()},
                     {"nodes", topology.node_count()},
                     {"routing", std::string(to_string(topology.routing_policy()))}};
    nlohmann::json eff;
    for (std::size_t c = 0; c < kLinkClassCount; ++c) {
      eff[std::string(to_string(static_cast<LinkClass>(c)))] = params.efficiency[c];
    }
    j["network"] = {{"model", std::string(to_string(params.model))},
                    {"alpha_s", params.alpha.seconds()},
                    {"efficiency", eff},
                    {"provenance", params.provenance}};
    j["rows"] = nlohmann::json::array();
    for (const CollectiveBenchRow& r : result.rows) {
      j["rows"].push_back({{"bytes", r.bytes.count()},
                           {"count", r.count},
                           {"time_us", r.time.microseconds()},
                           {"algbw_GBps", r.algbw_GBps},
                           {"busbw_GBps", r.busbw_GBps},
                           {"transfers", r.transfers}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("# moesim collective: %s, %d GPUs of '%s' (%d nodes, %d GPUs), algorithm %s\n",
              std::string(to_string(result.op)).c_str(), result.gpus, topology.name.c_str(), topology.node_count(),
              topology.gpu_count(), std::string(to_string(result.algorithm)).c_str());
  std::printf("# network %s, alpha %s, efficiency nvlink %.3f pcie %.3f nic %.3f fabric %.3f\n",
              std::string(to_string(params.model)).c_str(), format_duration(params.alpha).c_str(),
              params.efficiency[0], params.efficiency[1], params.efficiency[2], params.efficiency[3]);
  std::printf("# calibration: %s\n#\n", params.provenance.c_str());
  std::printf("# %14s %14s %9s %12s %9s %9s\n", "size", "count", "type", "time", "algbw", "busbw");
  std::printf("# %14s %14s %9s %12s %9s %9s\n", "(B)", "(elements)", "", "(us)", "(GB/s)", "(GB/s)");
  double busbw_sum = 0.0;
  for (const CollectiveBenchRow& r : result.rows) {
    std::printf("  %14lld %14lld %9s %12.2f %9.2f %9.2f\n", static_cast<long long>(r.bytes.count()),
                static_cast<long long>(r.count), result.dtype.c_str(), r.time.microseconds(), r.algbw_GBps,
                r.busbw_GBps);
    busbw_sum += r.busbw_GBps;
  }
  if (!result.rows.empty()) {
    std::printf("# Avg bus bandwidth    : %g GB/s\n", busbw_sum / static_cast<double>(result.rows.size()));
  }
  return 0;
}

}  // namespace moesim::cli
