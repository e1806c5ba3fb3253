#include "apps/preset_listing.hpp"

#include <nlohmann/json.hpp>

#include "topology/presets.hpp"
#include "workloads/gpu_presets.hpp"
#include "workloads/model_spec.hpp"

namespace moesim::cli {

void print_preset_listing(std::ostream& out, bool json) {
  if (json) {
    nlohmann::json doc;
    for (const auto& m : model_presets()) {
      doc["models"].push_back({{"name", m.name}, {"description", m.description},
                               {"summary", describe(model_preset(m.name))}});
    }
    for (const auto& g : gpu_presets()) {
      doc["gpus"].push_back({{"name", g.name}, {"description", g.description},
                             {"summary", describe(gpu_preset(g.name))}});
    }
    for (const auto& t : topology_presets()) {
      doc["topologies"].push_back({{"name", t.name}, {"description", t.description}, {"source", t.source},
                                   {"default_nodes", t.default_nodes}});
    }
    out << doc.dump(2) << "\n";
    return;
  }
  out << "Models (model.preset; every field can be overridden, e.g. --model.layers=16):\n";
  for (const auto& m : model_presets()) {
    out << "  " << describe(model_preset(m.name)) << "\n      " << m.description << "\n";
  }
  out << "\nGPUs (gpu.preset):\n";
  for (const auto& g : gpu_presets()) {
    out << "  " << describe(gpu_preset(g.name)) << "\n      " << g.description << "\n";
  }
  out << "\nTopologies (topology.preset; node count: topology.nodes):\n";
  for (const auto& t : topology_presets()) {
    out << "  " << t.name << " (default " << t.default_nodes << " node" << (t.default_nodes == 1 ? "" : "s")
        << "): " << t.description << "\n      source: " << t.source << "\n";
  }
  out << "\nEvery scenario option: moesim presets --options [SECTION]\n";
}

}  // namespace moesim::cli
