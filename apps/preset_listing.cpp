#include "apps/preset_listing.hpp"

#include <nlohmann/json.hpp>

namespace moesim::cli {

void print_preset_listing(std::ostream& out, bool json) {
  nlohmann::json doc = nlohmann::json::object();
  if (json) {
    out << doc.dump(2) << "\n";
    return;
  }
  out << "(preset tables are filled in as the modules land)\n";
}

}  // namespace moesim::cli
