#pragma once
// Independent reference for the flow solver tests: max-min fair rates by the
// textbook progressive filling (Bertsekas & Gallager, "Data Networks", 6.5.2),
// written naively, with weights: entity f uses weights[f][i] x its rate on link
// paths[f][i]. Raise every unfrozen rate equally until some link is full,
// freeze the entities on it, repeat. O(entities x links) per step, no heaps,
// no incrementality.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "topology/topology.hpp"

namespace moesim::test {

inline std::vector<double> reference_weighted_max_min(const std::vector<double>& cap,
                                                      const std::vector<std::vector<LinkId>>& paths,
                                                      const std::vector<std::vector<double>>& weights) {
  const std::size_t n = paths.size();
  std::vector<double> rate(n, 0.0);
  std::vector<bool> frozen(n, false);
  std::vector<double> used(cap.size(), 0.0);
  std::size_t left = n;
  double level = 0.0;
  while (left > 0) {
    // The smallest increment that fills a link with unfrozen entities.
    double inc = 1e300;
    for (std::size_t l = 0; l < cap.size(); ++l) {
      double w = 0.0;
      for (std::size_t f = 0; f < n; ++f) {
        if (frozen[f]) continue;
        for (std::size_t i = 0; i < paths[f].size(); ++i) {
          w += paths[f][i] == static_cast<LinkId>(l) ? weights[f][i] : 0.0;
        }
      }
      if (w > 0.0) inc = std::min(inc, (cap[l] - used[l]) / w);
    }
    level += inc;
    for (std::size_t f = 0; f < n; ++f) {
      if (frozen[f]) continue;
      for (std::size_t i = 0; i < paths[f].size(); ++i) {
        used[static_cast<std::size_t>(paths[f][i])] += weights[f][i] * inc;
      }
    }
    for (std::size_t l = 0; l < cap.size(); ++l) {
      if (cap[l] - used[l] > 1e-9 * cap[l]) continue;  // not saturated
      for (std::size_t f = 0; f < n; ++f) {
        if (frozen[f]) continue;
        if (std::find(paths[f].begin(), paths[f].end(), static_cast<LinkId>(l)) == paths[f].end()) continue;
        frozen[f] = true;
        rate[f] = level;
        --left;
      }
    }
  }
  return rate;
}

/// Every entity a plain transfer: weight 1 on each link of its path.
inline std::vector<double> reference_max_min(const std::vector<double>& cap,
                                             const std::vector<std::vector<LinkId>>& paths) {
  std::vector<std::vector<double>> weights;
  weights.reserve(paths.size());
  for (const auto& p : paths) weights.emplace_back(p.size(), 1.0);
  return reference_weighted_max_min(cap, paths, weights);
}

}  // namespace moesim::test
