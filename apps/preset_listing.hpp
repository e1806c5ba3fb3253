#pragma once
#include <ostream>

namespace moesim::cli {
/// Prints the models, GPUs and topologies known by name (or one JSON document).
void print_preset_listing(std::ostream& out, bool json);
}  // namespace moesim::cli
