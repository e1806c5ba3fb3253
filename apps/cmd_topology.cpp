// `moesim topology PRESET|FILE.dot|SCENARIO.ini`: summarizes a cluster topology
// (counts, link classes, capacities, bisection bandwidth, sample routes), and
// writes it as GraphViz DOT with --dot.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "sim/unit_parse.hpp"
#include "topology/dot_io.hpp"
#include "topology/presets.hpp"
#include "topology/topology.hpp"
#include "topology/topology_options.hpp"

namespace moesim::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Parses "A:B" (two GPU ids).
std::pair<GpuId, GpuId> parse_route_arg(const std::string& text, const Topology& t) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw InputError("--route wants SRC:DST (two GPU numbers), got '" + text + "'");
  std::int64_t a = 0;
  std::int64_t b = 0;
  try {
    a = parse_int(text.substr(0, colon));
    b = parse_int(text.substr(colon + 1));
  } catch (const ParseError&) {
    throw InputError("--route wants SRC:DST (two GPU numbers), got '" + text + "'");
  }
  const auto n = t.gpu_count();
  if (a < 0 || a >= n || b < 0 || b >= n) {
    throw InputError("--route " + text + ": GPUs are numbered 0.." + std::to_string(n - 1));
  }
  return {static_cast<GpuId>(a), static_cast<GpuId>(b)};
}

struct ClassStats {
  std::size_t count = 0;
  double min_bps = std::numeric_limits<double>::infinity();
  double max_bps = 0.0;
  double total_bps = 0.0;
};

std::string rate_range(const ClassStats& c) {
  if (c.count == 0) return "-";
  if (c.min_bps == c.max_bps) return format_bandwidth(Bandwidth::bytes_per_second(c.min_bps));
  return format_bandwidth(Bandwidth::bytes_per_second(c.min_bps)) + " .. " +
         format_bandwidth(Bandwidth::bytes_per_second(c.max_bps));
}

std::string hops_text(const Topology& t, const Route& r, GpuId src) {
  std::string s = t.vertex(t.gpu_vertex(src)).name;
  for (const LinkId l : r.links) s += " -> " + t.vertex(t.link(l).to).name;
  return s;
}

nlohmann::json route_json(const Topology& t, GpuId a, GpuId b) {
  const Route& r = t.route(a, b);
  nlohmann::json hops = nlohmann::json::array();
  hops.push_back(t.vertex(t.gpu_vertex(a)).name);
  for (const LinkId l : r.links) hops.push_back(t.vertex(t.link(l).to).name);
  return {{"src", a},
          {"dst", b},
          {"hops", hops},
          {"links", r.links.size()},
          {"latency_s", r.latency.seconds()},
          {"bottleneck_Bps", r.links.empty() ? 0.0 : r.bottleneck.bytes_per_second()}};
}

// Routes worth showing: inside a server; to the same local GPU (rail) of the
// last server; to the last GPU (another rail of the last server).
std::vector<std::pair<GpuId, GpuId>> sample_routes(const Topology& t) {
  std::vector<std::pair<GpuId, GpuId>> out;
  const auto n = t.gpu_count();
  if (n < 2) return out;
  const auto first = t.gpus_of_node(t.node_of(0));
  if (first.size() > 1) out.emplace_back(0, first[1]);
  if (t.node_count() > 1) {
    const auto last = t.gpus_of_node(t.node_count() - 1);
    if (!last.empty() && last.front() != 0) out.emplace_back(0, last.front());
    if (!last.empty() && last.back() != last.front()) out.emplace_back(0, last.back());
  }
  if (out.empty()) out.emplace_back(0, n - 1);
  return out;
}

}  // namespace

int cmd_topology(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("nodes", po::value<int>(), "number of servers of a preset (same as --topology.nodes=N)")(
      "dot", po::value<std::string>(), "write the topology as GraphViz DOT to this file ('-' = stdout only)")(
      "route", po::value<std::string>(), "also show the routes SRC:DST[,SRC:DST...] (GPU numbers)")(
      "json", "print one JSON document instead of the table");
  const ParsedArgs parsed = parse_command_args("topology", args, desc, 1);
  if (parsed.help) {
    std::ostringstream presets;
    for (const auto& p : topology_presets()) presets << "  " << std::left << std::setw(10) << p.name << p.description << "\n";
    print_command_help(
        "moesim topology [PRESET|FILE.dot|SCENARIO.ini] [--nodes N] [--dot OUT.dot] [--route A:B] [--json]\n"
        "                [--topology.key=value ...]",
        "Summarizes a cluster topology: GPUs, servers, switches and NICs, links per class\n"
        "(line rate, achievable efficiency), total capacity, bisection bandwidth and sample\n"
        "routes; --dot writes it as GraphViz (draw with: dot -Tpng OUT.dot -o OUT.png).\n"
        "Without an argument: the scenario default (topology.preset = default).\n\n"
        "Presets:\n" +
            presets.str() +
            "\nExamples:\n"
            "  moesim topology dgx-h100 --nodes 4\n"
            "  moesim topology dgx-h100 --topology.nodes=16 --topology.scale_out=tor --topology.oversubscription=2\n"
            "  moesim topology default --dot cluster.dot && dot -Tpng cluster.dot -o cluster.png\n"
            "  moesim topology experiments/topologies/example.dot --route 0:7 --json\n"
            "  moesim topology my_scenario.ini          # the topology of a scenario\n"
            "DOT format, presets and their sources, routing and bisection: docs/topology.md.",
        desc, true);
    return 0;
  }

  // The topology: from a scenario file, a DOT file or a preset name.
  std::optional<std::string> scenario;
  std::string what;
  if (!parsed.positional.empty()) {
    what = parsed.positional[0];
    if (ends_with(what, ".ini")) scenario = what;
  }
  Config config = make_config(scenario, parsed.overrides);
  if (!what.empty() && !scenario) {
    const bool file = ends_with(what, ".dot") || ends_with(what, ".gv") || what.find('/') != std::string::npos;
    config.set(file ? "topology.file" : "topology.preset", what, "command line");
  }
  if (parsed.vm.count("nodes") != 0) config.set("topology.nodes", std::to_string(parsed.vm["nodes"].as<int>()), "--nodes");
  const Topology t = topology_from_config(config);

  std::vector<std::pair<GpuId, GpuId>> routes = sample_routes(t);
  if (parsed.vm.count("route") != 0) {
    std::stringstream list(parsed.vm["route"].as<std::string>());
    std::string one;
    while (std::getline(list, one, ',')) routes.push_back(parse_route_arg(one, t));
  }

  std::string dot_path;
  if (parsed.vm.count("dot") != 0) {
    dot_path = parsed.vm["dot"].as<std::string>();
    if (dot_path == "-") {
      write_dot(t, std::cout);
      return 0;
    }
    std::ofstream out(dot_path);
    if (!out) throw InputError("cannot write DOT file '" + dot_path + "' (check the directory exists and is writable)");
    write_dot(t, out);
    out.close();
    if (!out) throw InputError("writing DOT file '" + dot_path + "' failed");
  }

  const TopologySummary s = summarize(t);
  std::array<ClassStats, kLinkClassCount> cls{};
  for (std::size_t l = 0; l < t.link_count(); ++l) {
    const LinkInfo& li = t.link(static_cast<LinkId>(l));
    ClassStats& c = cls[static_cast<std::size_t>(li.link_class)];
    const double bps = li.bandwidth.bytes_per_second();
    ++c.count;
    c.min_bps = std::min(c.min_bps, bps);
    c.max_bps = std::max(c.max_bps, bps);
    c.total_bps += bps;
  }

  if (parsed.vm.count("json") != 0) {
    nlohmann::json j;
    j["name"] = s.name;
    j["source"] = s.source;
    j["gpus"] = s.gpus;
    j["nodes"] = s.nodes;
    j["vertices"] = {{"total", s.vertices}};
    for (std::size_t k = 0; k < kVertexKindCount; ++k) {
      j["vertices"][std::string(to_string(static_cast<VertexKind>(k)))] = s.vertices_by_kind[k];
    }
    j["links"] = {{"total", s.links}};
    for (std::size_t c = 0; c < kLinkClassCount; ++c) {
      nlohmann::json e = {{"count", cls[c].count}, {"efficiency", s.efficiency[c]}, {"capacity_Bps", cls[c].total_bps}};
      if (cls[c].count != 0) {
        e["min_bandwidth_Bps"] = cls[c].min_bps;
        e["max_bandwidth_Bps"] = cls[c].max_bps;
      }
      j["links"][std::string(to_string(static_cast<LinkClass>(c)))] = e;
    }
    j["total_link_capacity_Bps"] = s.total_link_capacity.bytes_per_second();
    j["bisection_bandwidth_Bps"] = s.bisection_bandwidth.bytes_per_second();
    j["bisection_cut"] = s.bisection_cut;
    j["routing"] = std::string(to_string(t.routing_policy()));
    j["routes"] = nlohmann::json::array();
    for (const auto& [a, b] : routes) j["routes"].push_back(route_json(t, a, b));
    if (!dot_path.empty()) j["dot"] = dot_path;
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << "Topology " << s.name << ": " << s.gpus << (s.gpus == 1 ? " GPU on " : " GPUs on ") << s.nodes << (s.nodes == 1 ? " server" : " servers")
            << "\n";
  if (!s.source.empty()) std::cout << "Source: " << s.source << "\n";
  std::cout << "\nVertices (" << s.vertices << ")\n";
  for (std::size_t k = 0; k < kVertexKindCount; ++k) {
    if (s.vertices_by_kind[k] == 0) continue;
    std::cout << "  " << std::left << std::setw(10) << to_string(static_cast<VertexKind>(k)) << std::right
              << std::setw(8) << s.vertices_by_kind[k] << "\n";
  }
  std::cout << "\nDirected links (" << s.links << ")\n"
            << "  " << std::left << std::setw(10) << "class" << std::right << std::setw(8) << "count" << "  "
            << std::left << std::setw(26) << "line rate per direction" << std::right << std::setw(11) << "efficiency"
            << std::setw(18) << "capacity" << "\n";
  for (std::size_t c = 0; c < kLinkClassCount; ++c) {
    if (cls[c].count == 0) continue;
    std::cout << "  " << std::left << std::setw(10) << to_string(static_cast<LinkClass>(c)) << std::right << std::setw(8)
              << cls[c].count << "  " << std::left << std::setw(26) << rate_range(cls[c]) << std::right << std::setw(11)
              << std::fixed << std::setprecision(2) << s.efficiency[c] << std::setw(18)
              << format_bandwidth(Bandwidth::bytes_per_second(cls[c].total_bps)) << "\n";
  }
  std::cout << "\nTotal link capacity:  " << format_bandwidth(s.total_link_capacity) << " (sum of directed line rates)\n"
            << "Bisection bandwidth:  " << format_bandwidth(s.bisection_bandwidth) << " (line rate, one direction; cut "
            << s.bisection_cut << ")\n";
  if (!routes.empty()) {
    std::cout << "\nRoutes (shortest; equal-cost choice: "
              << (t.routing_policy() == RoutingPolicy::kBalanced ? "balanced per destination" : "ECMP hash of the GPU pair")
              << ", topology.routing = " << to_string(t.routing_policy()) << ")\n";
    for (const auto& [a, b] : routes) {
      const Route& r = t.route(a, b);
      std::cout << "  gpu " << a << " -> gpu " << b << ": " << r.links.size() << (r.links.size() == 1 ? " link" : " links") << ", latency "
                << format_duration(r.latency) << ", bottleneck "
                << (r.links.empty() ? std::string("-") : format_bandwidth(r.bottleneck)) << " (effective)\n"
                << "    " << hops_text(t, r, a) << "\n";
    }
  }
  if (!dot_path.empty()) std::cout << "\nWrote " << dot_path << " (draw: dot -Tpng " << dot_path << " -o out.png)\n";
  return 0;
}

}  // namespace moesim::cli
