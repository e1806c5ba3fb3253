#include "topology/topology.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <queue>
#include <stdexcept>
#include <utility>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/push_relabel_max_flow.hpp>

#include "sim/options.hpp"  // InputError

namespace moesim {

std::string_view to_string(VertexKind kind) {
  switch (kind) {
    case VertexKind::kGpu: return "gpu";
    case VertexKind::kNvSwitch: return "nvswitch";
    case VertexKind::kNic: return "nic";
    case VertexKind::kLeafSwitch: return "leaf";
    case VertexKind::kSpineSwitch: return "spine";
    case VertexKind::kTorSwitch: return "tor";
  }
  return "?";
}

std::string_view to_string(LinkClass cls) {
  switch (cls) {
    case LinkClass::kNvLink: return "nvlink";
    case LinkClass::kPcie: return "pcie";
    case LinkClass::kNic: return "nic";
    case LinkClass::kFabric: return "fabric";
  }
  return "?";
}

bool parse_vertex_kind(std::string_view text, VertexKind& out) {
  for (std::size_t i = 0; i < kVertexKindCount; ++i) {
    const auto k = static_cast<VertexKind>(i);
    if (to_string(k) == text) {
      out = k;
      return true;
    }
  }
  return false;
}

bool parse_link_class(std::string_view text, LinkClass& out) {
  for (std::size_t i = 0; i < kLinkClassCount; ++i) {
    const auto c = static_cast<LinkClass>(i);
    if (to_string(c) == text) {
      out = c;
      return true;
    }
  }
  return false;
}

std::string_view to_string(RoutingPolicy policy) {
  switch (policy) {
    case RoutingPolicy::kEcmpHash: return "ecmp";
    case RoutingPolicy::kBalanced: return "balanced";
  }
  return "?";
}

bool parse_routing_policy(std::string_view text, RoutingPolicy& out) {
  for (const RoutingPolicy p : {RoutingPolicy::kEcmpHash, RoutingPolicy::kBalanced}) {
    if (to_string(p) == text) {
      out = p;
      return true;
    }
  }
  return false;
}

namespace {

// splitmix64 finaliser (Steele, Lea, Flood 2014): a cheap, well-mixing,
// platform-independent hash, so ECMP choices are the same on every machine.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

std::uint64_t ecmp_hash(GpuId src, GpuId dst, std::size_t hop) {
  const std::uint64_t pair = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(src)) << 32U) |
                             static_cast<std::uint64_t>(static_cast<std::uint32_t>(dst));
  return splitmix64(splitmix64(pair) ^ static_cast<std::uint64_t>(hop));
}

constexpr std::int64_t kUnreached = std::numeric_limits<std::int64_t>::max();

}  // namespace

struct Topology::Impl {
  // Edge bundle: the LinkId into `links` (the flat table is what hot paths read).
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, VertexInfo, LinkId>;
  Graph graph;
  std::vector<LinkInfo> links;
  std::vector<VertexId> gpu_vertices;  // by GpuId
  std::int32_t nodes = 0;
  std::array<double, kLinkClassCount> efficiency = kDefaultEfficiency;

  // --- routing caches (mutable: route() is logically const) ---
  // Compressed adjacency, built on the first route after a modification.
  mutable bool adjacency_ready = false;
  mutable std::vector<std::int32_t> out_offset, out_link;  // out-links per vertex, ascending id
  mutable std::vector<std::int32_t> in_offset, in_link;    // in-links per vertex
  // Per destination GPU, the shortest-path DAG towards it, one int32 per
  // vertex: >= 0 is the only next-hop link; kNoHop means none (the
  // destination, or unreachable); otherwise -(k + 1) names the k-th interned
  // ECMP set (the on-path out-links of the vertex, ascending id). ECMP sets
  // repeat across destinations (a leaf's uplinks to all spines), so interning
  // keeps a table at 4 bytes per vertex: a 1,024-GPU all-to-all touches
  // ~10 MB of tables, which stay in cache. Built once per destination in
  // O(links); every route to that destination then costs O(hops). Released
  // once every source has had its route.
  struct NextHops {
    std::vector<std::int32_t> hop;  // by vertex; empty = not built
  };
  static constexpr std::int32_t kNoHop = std::numeric_limits<std::int32_t>::min();
  mutable std::vector<std::int32_t> ecmp_offset{0};  // interned ECMP sets, CSR
  mutable std::vector<LinkId> ecmp_links;
  mutable std::map<std::vector<LinkId>, std::int32_t> ecmp_index;
  mutable std::vector<NextHops> next_hops;
  RoutingPolicy policy = RoutingPolicy::kEcmpHash;
  mutable bool balanced_ready = false;
  mutable std::vector<std::vector<std::pair<VertexId, LinkId>>> balanced_choice;  // by destination
  mutable std::vector<std::int32_t> routes_to;    // routes cached per destination
  mutable std::vector<std::int32_t> appended_to;  // append_route calls per destination
  // Per source GPU: a row of n route indices + 1 (0 = not built), allocated lazily.
  mutable std::vector<std::vector<std::uint32_t>> route_index;
  mutable std::deque<Route> routes;  // deque: references stay valid as it grows
  mutable std::vector<LinkId> scratch;  // route under construction (one allocation per route)
  Route self_route;                  // src == dst

  void invalidate() {
    adjacency_ready = false;
    next_hops.clear();
    routes_to.clear();
    appended_to.clear();
    ecmp_offset.assign(1, 0);
    ecmp_links.clear();
    ecmp_index.clear();
    balanced_ready = false;
    balanced_choice.clear();
    route_index.clear();
    routes.clear();
  }

  [[nodiscard]] Bandwidth effective(LinkId l) const {
    const LinkInfo& li = links[static_cast<std::size_t>(l)];
    return li.bandwidth * efficiency[static_cast<std::size_t>(li.link_class)];
  }

  void build_adjacency() const {
    const std::size_t nv = boost::num_vertices(graph);
    out_offset.assign(nv + 1, 0);
    in_offset.assign(nv + 1, 0);
    for (const LinkInfo& l : links) {
      ++out_offset[static_cast<std::size_t>(l.from) + 1];
      ++in_offset[static_cast<std::size_t>(l.to) + 1];
    }
    for (std::size_t v = 0; v < nv; ++v) {
      out_offset[v + 1] += out_offset[v];
      in_offset[v + 1] += in_offset[v];
    }
    out_link.assign(links.size(), 0);
    in_link.assign(links.size(), 0);
    std::vector<std::int32_t> out_fill(out_offset.begin(), out_offset.end() - 1);
    std::vector<std::int32_t> in_fill(in_offset.begin(), in_offset.end() - 1);
    // Links in ascending id, so each vertex's lists are ascending too.
    for (std::size_t id = 0; id < links.size(); ++id) {
      const LinkInfo& l = links[id];
      out_link[static_cast<std::size_t>(out_fill[static_cast<std::size_t>(l.from)]++)] = static_cast<LinkId>(id);
      in_link[static_cast<std::size_t>(in_fill[static_cast<std::size_t>(l.to)]++)] = static_cast<LinkId>(id);
    }
    const auto n = gpu_vertices.size();
    next_hops.assign(n, {});
    routes_to.assign(n, 0);
    appended_to.assign(n, 0);
    route_index.assign(n, {});
    adjacency_ready = true;
  }

  [[nodiscard]] bool is_gpu(VertexId v) const { return graph[static_cast<std::size_t>(v)].kind == VertexKind::kGpu; }

  // Cost of stepping into vertex w on the way to `target`: one hop, plus a
  // penalty larger than any GPU-free path when w is a GPU other than the
  // target, so GPUs are transit hops only when nothing else connects.
  [[nodiscard]] std::int64_t step_cost(VertexId w, VertexId target, std::int64_t penalty) const {
    return (w != target && is_gpu(w)) ? 1 + penalty : 1;
  }

  // Cost to `target` from every vertex. Fast path: breadth-first search over
  // in-links that never expands a GPU other than the target. If some GPU is
  // left unreached (a graph where GPUs relay, e.g. a GPU ring), fall back to
  // Dijkstra with the GPU-transit penalty; both give the same costs on the
  // vertices of GPU-free shortest paths.
  [[nodiscard]] std::vector<std::int64_t> distances_to(VertexId target) const {
    const std::size_t nv = boost::num_vertices(graph);
    std::vector<std::int64_t> dist(nv, kUnreached);
    std::vector<VertexId> queue;
    queue.reserve(nv);
    dist[static_cast<std::size_t>(target)] = 0;
    queue.push_back(target);
    for (std::size_t head = 0; head < queue.size(); ++head) {
      const VertexId w = queue[head];
      if (w != target && is_gpu(w)) continue;  // GPUs are endpoints, not transit
      const auto wi = static_cast<std::size_t>(w);
      for (auto k = in_offset[wi]; k < in_offset[wi + 1]; ++k) {
        const VertexId u = links[static_cast<std::size_t>(in_link[static_cast<std::size_t>(k)])].from;
        auto& du = dist[static_cast<std::size_t>(u)];
        if (du == kUnreached) {
          du = dist[wi] + 1;
          queue.push_back(u);
        }
      }
    }
    const bool all_gpus = std::all_of(gpu_vertices.begin(), gpu_vertices.end(),
                                      [&](VertexId g) { return dist[static_cast<std::size_t>(g)] != kUnreached; });
    if (all_gpus) return dist;

    const std::int64_t penalty = transit_penalty();
    std::fill(dist.begin(), dist.end(), kUnreached);
    using Item = std::pair<std::int64_t, VertexId>;
    std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
    dist[static_cast<std::size_t>(target)] = 0;
    heap.emplace(0, target);
    while (!heap.empty()) {
      const auto [d, w] = heap.top();
      heap.pop();
      const auto wi = static_cast<std::size_t>(w);
      if (d != dist[wi]) continue;
      const std::int64_t through = d + step_cost(w, target, penalty);
      for (auto k = in_offset[wi]; k < in_offset[wi + 1]; ++k) {
        const VertexId u = links[static_cast<std::size_t>(in_link[static_cast<std::size_t>(k)])].from;
        auto& du = dist[static_cast<std::size_t>(u)];
        if (through < du) {
          du = through;
          heap.emplace(through, u);
        }
      }
    }
    return dist;
  }

  // Larger than any GPU-free path's cost. The BFS fast path leaves GPUs
  // unexpanded, so a GPU step is never on a BFS shortest path either, and the
  // same penalty describes both paths in for_each_next_hop_set.
  [[nodiscard]] std::int64_t transit_penalty() const {
    return static_cast<std::int64_t>(boost::num_vertices(graph)) + 1;
  }

  [[nodiscard]] std::string gpu_name(GpuId g) const {
    const VertexInfo& v = graph[static_cast<std::size_t>(gpu_vertices[static_cast<std::size_t>(g)])];
    std::string s = "gpu " + std::to_string(g);
    if (!v.name.empty()) s += " (" + v.name + ")";
    return s;
  }

  // The shortest-path DAG towards GPU `dst`: link u->w is a next hop of u
  // when cost(u) == cost(w) + step_cost(w).
  template <class F>
  void for_each_next_hop_set(GpuId dst, F&& f) const {
    const VertexId t = gpu_vertices[static_cast<std::size_t>(dst)];
    const std::vector<std::int64_t> dist = distances_to(t);
    const std::int64_t penalty = transit_penalty();
    std::vector<LinkId> set;
    for (std::size_t u = 0; u < dist.size(); ++u) {
      const std::int64_t du = dist[u];
      if (du == kUnreached || du == 0) continue;
      set.clear();
      for (auto k = out_offset[u]; k < out_offset[u + 1]; ++k) {
        const LinkId l = out_link[static_cast<std::size_t>(k)];
        const VertexId w = links[static_cast<std::size_t>(l)].to;
        const std::int64_t dw = dist[static_cast<std::size_t>(w)];
        if (dw != kUnreached && du == dw + step_cost(w, t, penalty)) set.push_back(l);
      }
      f(u, set);
    }
  }

  NextHops build_next_hops(GpuId dst) const {
    if (policy == RoutingPolicy::kBalanced && !balanced_ready) compute_balanced();
    NextHops nh;
    nh.hop.assign(boost::num_vertices(graph), kNoHop);
    for_each_next_hop_set(dst, [&](std::size_t u, const std::vector<LinkId>& set) {
      if (set.size() == 1) {
        nh.hop[u] = set.front();
      } else if (set.size() > 1) {
        auto [it, inserted] = ecmp_index.emplace(set, static_cast<std::int32_t>(ecmp_offset.size() - 1));
        if (inserted) {
          ecmp_links.insert(ecmp_links.end(), set.begin(), set.end());
          ecmp_offset.push_back(static_cast<std::int32_t>(ecmp_links.size()));
        }
        nh.hop[u] = -(it->second + 1);
      }
    });
    if (policy == RoutingPolicy::kBalanced) {
      for (const auto& [u, l] : balanced_choice[static_cast<std::size_t>(dst)]) nh.hop[static_cast<std::size_t>(u)] = l;
    }
    return nh;
  }

  // Destination-based balanced routing, in the spirit of InfiniBand subnet
  // managers (OpenSM's min-hop engine counts the destinations routed through
  // each port): destinations in GPU order; at every vertex with several
  // equal-cost next hops, the one whose path onward (the link and the forced
  // links after it, up to the next choice) has carried the fewest
  // destinations so far (ties: fewest on the link itself, then lowest id).
  // Counting the forced links too balances the down direction (spine -> leaf)
  // as well as the up direction. Only the choices are kept.
  void compute_balanced() const {
    const std::size_t n = gpu_vertices.size();
    const std::size_t nv = boost::num_vertices(graph);
    balanced_choice.assign(n, {});
    std::vector<std::int64_t> carried(links.size(), 0);
    std::vector<std::int32_t> single(nv);            // the forced next hop, or kNoHop
    std::vector<std::pair<std::size_t, std::vector<LinkId>>> multi;
    std::vector<std::vector<LinkId>> chains;
    std::vector<std::int32_t> in_chains(links.size(), 0);  // how many chains hold a link
    for (std::size_t d = 0; d < n; ++d) {
      std::fill(single.begin(), single.end(), kNoHop);
      multi.clear();
      for_each_next_hop_set(static_cast<GpuId>(d), [&](std::size_t u, const std::vector<LinkId>& set) {
        if (set.size() == 1) single[u] = set.front();
        if (set.size() > 1) multi.emplace_back(u, set);
      });
      auto forced_chain = [&](LinkId first, auto&& visit) {
        visit(first);
        std::int32_t next = single[static_cast<std::size_t>(links[static_cast<std::size_t>(first)].to)];
        while (next != kNoHop) {
          visit(next);
          next = single[static_cast<std::size_t>(links[static_cast<std::size_t>(next)].to)];
        }
      };
      auto& choices = balanced_choice[d];
      for (const auto& [u, set] : multi) {
        // Each candidate's chain: the link and the forced links after it.
        // Links that every chain shares (the destination's last hops) do not
        // discriminate and are left out of the score.
        chains.assign(set.size(), {});
        for (std::size_t i = 0; i < set.size(); ++i) {
          forced_chain(set[i], [&](LinkId l) {
            chains[i].push_back(l);
            ++in_chains[static_cast<std::size_t>(l)];
          });
        }
        LinkId best = set.front();
        std::int64_t best_max = std::numeric_limits<std::int64_t>::max();
        std::int64_t best_sum = std::numeric_limits<std::int64_t>::max();
        for (std::size_t i = 0; i < set.size(); ++i) {
          std::int64_t mx = 0;
          std::int64_t sum = 0;
          for (const LinkId l : chains[i]) {
            if (in_chains[static_cast<std::size_t>(l)] == static_cast<std::int32_t>(set.size())) continue;  // shared
            mx = std::max(mx, carried[static_cast<std::size_t>(l)]);
            sum += carried[static_cast<std::size_t>(l)];
          }
          if (mx < best_max || (mx == best_max && sum < best_sum)) {
            best = set[i];
            best_max = mx;
            best_sum = sum;
          }
        }
        for (const auto& c : chains) {
          for (const LinkId l : c) in_chains[static_cast<std::size_t>(l)] = 0;
        }
        forced_chain(best, [&](LinkId l) { ++carried[static_cast<std::size_t>(l)]; });
        choices.emplace_back(static_cast<VertexId>(u), best);
      }
      choices.shrink_to_fit();
    }
    balanced_ready = true;
  }

  // Walks the shortest-path DAG from src to dst, appending the links to `out`.
  RouteMetrics walk(GpuId src, GpuId dst, const NextHops& nh, const std::string& topo,
                    std::vector<LinkId>& out) const {
    const VertexId s = gpu_vertices[static_cast<std::size_t>(src)];
    const VertexId t = gpu_vertices[static_cast<std::size_t>(dst)];
    RouteMetrics m;
    m.latency = Duration::zero();
    m.bottleneck = Bandwidth::bytes_per_second(std::numeric_limits<double>::infinity());
    VertexId u = s;
    std::size_t hop = 0;
    while (u != t) {
      const std::int32_t entry = nh.hop[static_cast<std::size_t>(u)];
      if (entry == kNoHop) {
        if (u == s) {
          throw InputError("topology '" + topo + "': " + gpu_name(dst) + " cannot be reached from " + gpu_name(src) +
                           " (no path of links between them; check the links of both)");
        }
        throw std::logic_error("route: inconsistent shortest-path table");
      }
      LinkId chosen = entry;
      if (entry < 0) {
        // ECMP: among equal-cost next hops, a deterministic hash of (src, dst, hop).
        const auto k = static_cast<std::size_t>(-(entry + 1));
        const auto first = static_cast<std::size_t>(ecmp_offset[k]);
        const auto count = static_cast<std::size_t>(ecmp_offset[k + 1]) - first;
        chosen = ecmp_links[first + static_cast<std::size_t>(ecmp_hash(src, dst, hop) % count)];
      }
      out.push_back(chosen);
      m.latency += links[static_cast<std::size_t>(chosen)].latency;
      m.bottleneck = std::min(m.bottleneck, effective(chosen));
      u = links[static_cast<std::size_t>(chosen)].to;
      ++hop;
    }
    m.hops = hop;
    return m;
  }

  // The next-hop table towards dst, built on first use; `done` counts the
  // routes taken from it and releases it when every source has had one.
  const NextHops& table_to(GpuId dst) const {
    if (!adjacency_ready) build_adjacency();
    auto& nh = next_hops[static_cast<std::size_t>(dst)];
    if (nh.hop.empty()) nh = build_next_hops(dst);
    return nh;
  }
  void count_use(GpuId dst, std::vector<std::int32_t>& counter) const {
    if (++counter[static_cast<std::size_t>(dst)] >= static_cast<std::int32_t>(gpu_vertices.size()) - 1) {
      counter[static_cast<std::size_t>(dst)] = 0;
      next_hops[static_cast<std::size_t>(dst)] = NextHops{};
    }
  }
};

Topology::Topology() : impl_(std::make_unique<Impl>()) {
  impl_->self_route.bottleneck = Bandwidth::bytes_per_second(std::numeric_limits<double>::infinity());
}
Topology::~Topology() = default;
Topology::Topology(Topology&&) noexcept = default;
Topology& Topology::operator=(Topology&&) noexcept = default;

VertexId Topology::add_vertex(VertexInfo info) {
  if (info.kind == VertexKind::kGpu) {
    const auto next = static_cast<GpuId>(impl_->gpu_vertices.size());
    if (info.gpu != -1 && info.gpu != next) {
      throw std::invalid_argument("add_vertex: GPU '" + info.name + "' has id " + std::to_string(info.gpu) +
                                  " but GPUs are numbered in order of addition (next is " + std::to_string(next) + ")");
    }
    if (info.node < 0) throw std::invalid_argument("add_vertex: GPU '" + info.name + "' has no node (server) index");
    info.gpu = next;
    impl_->nodes = std::max(impl_->nodes, info.node + 1);
  } else {
    info.gpu = -1;
  }
  const auto v = static_cast<VertexId>(boost::add_vertex(std::move(info), impl_->graph));
  if (impl_->graph[static_cast<std::size_t>(v)].kind == VertexKind::kGpu) impl_->gpu_vertices.push_back(v);
  impl_->invalidate();
  return v;
}

LinkId Topology::add_link(VertexId from, VertexId to, Bandwidth bw, Duration latency, LinkClass cls) {
  const auto nv = static_cast<VertexId>(boost::num_vertices(impl_->graph));
  if (from < 0 || from >= nv || to < 0 || to >= nv) {
    throw std::invalid_argument("add_link: unknown vertex " + std::to_string(from < 0 || from >= nv ? from : to));
  }
  if (from == to) throw std::invalid_argument("add_link: self loop on vertex " + vertex(from).name);
  if (!(bw.bytes_per_second() > 0.0) || !std::isfinite(bw.bytes_per_second())) {
    throw std::invalid_argument("add_link: bandwidth of " + vertex(from).name + " -> " + vertex(to).name +
                                " must be positive and finite");
  }
  if (latency < Duration::zero()) {
    throw std::invalid_argument("add_link: negative latency on " + vertex(from).name + " -> " + vertex(to).name);
  }
  const auto id = static_cast<LinkId>(impl_->links.size());
  impl_->links.push_back(LinkInfo{from, to, bw, latency, cls});
  boost::add_edge(static_cast<std::size_t>(from), static_cast<std::size_t>(to), id, impl_->graph);
  impl_->invalidate();
  return id;
}

LinkId Topology::add_duplex(VertexId a, VertexId b, Bandwidth bw, Duration latency, LinkClass cls) {
  const LinkId first = add_link(a, b, bw, latency, cls);
  add_link(b, a, bw, latency, cls);
  return first;
}

std::int32_t Topology::gpu_count() const { return static_cast<std::int32_t>(impl_->gpu_vertices.size()); }
std::int32_t Topology::node_count() const { return impl_->nodes; }

VertexId Topology::gpu_vertex(GpuId gpu) const {
  if (gpu < 0 || gpu >= gpu_count()) {
    throw std::out_of_range("GPU " + std::to_string(gpu) + " does not exist (the topology has " +
                            std::to_string(gpu_count()) + " GPUs)");
  }
  return impl_->gpu_vertices[static_cast<std::size_t>(gpu)];
}

std::int32_t Topology::node_of(GpuId gpu) const { return vertex(gpu_vertex(gpu)).node; }

std::vector<GpuId> Topology::gpus_of_node(std::int32_t node) const {
  std::vector<GpuId> out;
  for (GpuId g = 0; g < gpu_count(); ++g) {
    if (node_of(g) == node) out.push_back(g);
  }
  return out;
}

std::size_t Topology::vertex_count() const { return boost::num_vertices(impl_->graph); }
std::size_t Topology::link_count() const { return impl_->links.size(); }

const VertexInfo& Topology::vertex(VertexId v) const {
  if (v < 0 || static_cast<std::size_t>(v) >= vertex_count()) {
    throw std::out_of_range("vertex " + std::to_string(v) + " does not exist");
  }
  return impl_->graph[static_cast<std::size_t>(v)];
}

const LinkInfo& Topology::link(LinkId l) const {
  if (l < 0 || static_cast<std::size_t>(l) >= impl_->links.size()) {
    throw std::out_of_range("link " + std::to_string(l) + " does not exist");
  }
  return impl_->links[static_cast<std::size_t>(l)];
}

std::vector<LinkId> Topology::out_links(VertexId v) const {
  (void)vertex(v);  // range check
  std::vector<LinkId> out;
  for (auto [it, end] = boost::out_edges(static_cast<std::size_t>(v), impl_->graph); it != end; ++it) {
    out.push_back(impl_->graph[*it]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RoutingPolicy Topology::routing_policy() const { return impl_->policy; }

void Topology::set_routing_policy(RoutingPolicy policy) {
  if (policy == impl_->policy) return;
  impl_->policy = policy;
  impl_->invalidate();
}

double Topology::efficiency(LinkClass cls) const { return impl_->efficiency[static_cast<std::size_t>(cls)]; }

void Topology::set_efficiency(LinkClass cls, double fraction) {
  if (!(fraction > 0.0 && fraction <= 1.0)) {
    throw std::invalid_argument("set_efficiency: the fraction of line rate for " + std::string(to_string(cls)) +
                                " links must be in (0, 1], got " + std::to_string(fraction));
  }
  impl_->efficiency[static_cast<std::size_t>(cls)] = fraction;
  for (Route& r : impl_->routes) {
    r.bottleneck = Bandwidth::bytes_per_second(std::numeric_limits<double>::infinity());
    for (const LinkId l : r.links) r.bottleneck = std::min(r.bottleneck, impl_->effective(l));
  }
}

Bandwidth Topology::effective_bandwidth(LinkId l) const {
  (void)link(l);  // range check
  return impl_->effective(l);
}

const Route& Topology::route(GpuId src, GpuId dst) const {
  const auto n = gpu_count();
  if (src < 0 || src >= n || dst < 0 || dst >= n) {
    throw std::out_of_range("route(" + std::to_string(src) + ", " + std::to_string(dst) + "): the topology has " +
                            std::to_string(n) + " GPUs");
  }
  if (src == dst) return impl_->self_route;
  Impl& m = *impl_;
  if (!m.adjacency_ready) m.build_adjacency();  // sizes route_index
  auto& row = m.route_index[static_cast<std::size_t>(src)];
  if (row.empty()) row.assign(static_cast<std::size_t>(n), 0U);
  std::uint32_t& slot = row[static_cast<std::size_t>(dst)];
  if (slot != 0U) return m.routes[slot - 1U];

  Route r;
  m.scratch.clear();
  const RouteMetrics metrics = m.walk(src, dst, m.table_to(dst), name, m.scratch);
  r.links.assign(m.scratch.begin(), m.scratch.end());  // one exact allocation
  r.latency = metrics.latency;
  r.bottleneck = metrics.bottleneck;
  m.routes.push_back(std::move(r));
  slot = static_cast<std::uint32_t>(m.routes.size());
  m.count_use(dst, m.routes_to);
  return m.routes.back();
}

RouteMetrics Topology::append_route(GpuId src, GpuId dst, std::vector<LinkId>& links) const {
  const auto n = gpu_count();
  if (src < 0 || src >= n || dst < 0 || dst >= n) {
    throw std::out_of_range("append_route(" + std::to_string(src) + ", " + std::to_string(dst) +
                            "): the topology has " + std::to_string(n) + " GPUs");
  }
  if (src == dst) return RouteMetrics{0, Duration::zero(), impl_->self_route.bottleneck};
  Impl& m = *impl_;
  const RouteMetrics metrics = m.walk(src, dst, m.table_to(dst), name, links);
  m.count_use(dst, m.appended_to);
  return metrics;
}

std::string Topology::describe_gpu(GpuId gpu) const {
  (void)gpu_vertex(gpu);  // range check
  return impl_->gpu_name(gpu);
}

void Topology::validate(const std::string& context) const {
  const auto n = gpu_count();
  if (n == 0) throw InputError(context + ": the cluster has no GPU (declare vertices with kind=gpu)");
  Impl& m = *impl_;
  if (!m.adjacency_ready) m.build_adjacency();
  // Every GPU must reach every other: with GPU 0 as hub, it suffices that all
  // reach GPU 0 and GPU 0 reaches all (reachability through GPU 0 is a path,
  // and route() may relay through a GPU when nothing else connects).
  const std::size_t nv = vertex_count();
  auto reach = [&](VertexId start, bool forward) {
    std::vector<char> seen(nv, 0);
    std::vector<VertexId> stack{start};
    seen[static_cast<std::size_t>(start)] = 1;
    while (!stack.empty()) {
      const auto u = static_cast<std::size_t>(stack.back());
      stack.pop_back();
      const auto& off = forward ? m.out_offset : m.in_offset;
      const auto& lst = forward ? m.out_link : m.in_link;
      for (auto k = off[u]; k < off[u + 1]; ++k) {
        const LinkInfo& l = m.links[static_cast<std::size_t>(lst[static_cast<std::size_t>(k)])];
        const auto w = static_cast<std::size_t>(forward ? l.to : l.from);
        if (seen[w] == 0) {
          seen[w] = 1;
          stack.push_back(static_cast<VertexId>(w));
        }
      }
    }
    return seen;
  };
  const auto from0 = reach(gpu_vertex(0), true);
  const auto to0 = reach(gpu_vertex(0), false);
  for (GpuId g = 1; g < n; ++g) {
    const auto v = static_cast<std::size_t>(gpu_vertex(g));
    if (from0[v] == 0) {
      throw InputError(context + ": " + m.gpu_name(g) + " cannot be reached from " + m.gpu_name(0) +
                       " (the graph is disconnected; add links joining them)");
    }
    if (to0[v] == 0) {
      throw InputError(context + ": " + m.gpu_name(0) + " cannot be reached from " + m.gpu_name(g) +
                       " (the graph is disconnected; add links joining them)");
    }
  }
}

// ---------------------------------------------------------------------------
// Summary and bisection bandwidth.

namespace {

// Max-flow from the GPUs of `side_a` to those of `side_b` over the directed
// links at line rate (integer bytes/s, so the result is exact and the same on
// every machine), via Boost's push-relabel.
std::int64_t cut_capacity(const Topology& t, const std::vector<GpuId>& side_a, const std::vector<GpuId>& side_b) {
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using FlowGraph = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<boost::edge_capacity_t, std::int64_t,
                      boost::property<boost::edge_residual_capacity_t, std::int64_t,
                                      boost::property<boost::edge_reverse_t, Traits::edge_descriptor>>>>;
  const std::size_t nv = t.vertex_count();
  FlowGraph g(nv + 2);
  const std::size_t source = nv;
  const std::size_t sink = nv + 1;
  auto cap = boost::get(boost::edge_capacity, g);
  auto rev = boost::get(boost::edge_reverse, g);
  auto add = [&](std::size_t u, std::size_t v, std::int64_t c) {
    const auto e = boost::add_edge(u, v, g).first;
    const auto r = boost::add_edge(v, u, g).first;
    cap[e] = c;
    cap[r] = 0;
    rev[e] = r;
    rev[r] = e;
  };
  std::int64_t total = 0;
  for (std::size_t l = 0; l < t.link_count(); ++l) {
    const LinkInfo& li = t.link(static_cast<LinkId>(l));
    const auto c = static_cast<std::int64_t>(std::llround(li.bandwidth.bytes_per_second()));
    total += c;
    add(static_cast<std::size_t>(li.from), static_cast<std::size_t>(li.to), c);
  }
  const std::int64_t unbounded = total + 1;  // more than any cut
  for (const GpuId a : side_a) add(source, static_cast<std::size_t>(t.gpu_vertex(a)), unbounded);
  for (const GpuId b : side_b) add(static_cast<std::size_t>(t.gpu_vertex(b)), sink, unbounded);
  return boost::push_relabel_max_flow(g, source, sink);
}

struct Halving {
  std::string what;
  std::vector<GpuId> a, b;
};

// "server 3" or "servers 0-7".
std::string range_text(const std::string& what, std::int32_t first, std::int32_t last) {
  if (first == last) return what + " " + std::to_string(first);
  return what + "s " + std::to_string(first) + "-" + std::to_string(last);
}

std::vector<Halving> candidate_halvings(const Topology& t) {
  std::vector<Halving> out;
  const auto n = t.gpu_count();
  const auto nodes = t.node_count();
  if (n < 2) return out;
  if (nodes >= 2) {
    Halving contiguous{range_text("server", 0, nodes / 2 - 1) + " | " + range_text("server", nodes / 2, nodes - 1),
                       {},
                       {}};
    Halving interleaved{"even servers | odd servers", {}, {}};
    for (GpuId g = 0; g < n; ++g) {
      const auto node = t.node_of(g);
      (node < nodes / 2 ? contiguous.a : contiguous.b).push_back(g);
      (node % 2 == 0 ? interleaved.a : interleaved.b).push_back(g);
    }
    out.push_back(std::move(contiguous));
    if (nodes > 2) out.push_back(std::move(interleaved));
  } else {
    Halving contiguous{range_text("GPU", 0, n / 2 - 1) + " | " + range_text("GPU", n / 2, n - 1), {}, {}};
    Halving interleaved{"even GPUs | odd GPUs", {}, {}};
    for (GpuId g = 0; g < n; ++g) {
      (g < n / 2 ? contiguous.a : contiguous.b).push_back(g);
      (g % 2 == 0 ? interleaved.a : interleaved.b).push_back(g);
    }
    out.push_back(std::move(contiguous));
    if (n > 2) out.push_back(std::move(interleaved));
  }
  return out;
}

}  // namespace

TopologySummary summarize(const Topology& t) {
  TopologySummary s;
  s.name = t.name;
  s.source = t.source;
  s.gpus = t.gpu_count();
  s.nodes = t.node_count();
  s.vertices = t.vertex_count();
  s.links = t.link_count();
  for (std::size_t v = 0; v < s.vertices; ++v) {
    ++s.vertices_by_kind[static_cast<std::size_t>(t.vertex(static_cast<VertexId>(v)).kind)];
  }
  double total = 0.0;
  for (std::size_t l = 0; l < s.links; ++l) {
    const LinkInfo& li = t.link(static_cast<LinkId>(l));
    ++s.links_by_class[static_cast<std::size_t>(li.link_class)];
    total += li.bandwidth.bytes_per_second();
  }
  for (std::size_t c = 0; c < kLinkClassCount; ++c) s.efficiency[c] = t.efficiency(static_cast<LinkClass>(c));
  s.total_link_capacity = Bandwidth::bytes_per_second(total);

  std::int64_t best = -1;
  for (const Halving& h : candidate_halvings(t)) {
    const std::int64_t cut = std::min(cut_capacity(t, h.a, h.b), cut_capacity(t, h.b, h.a));
    if (best < 0 || cut < best) {
      best = cut;
      s.bisection_cut = h.what;
    }
  }
  s.bisection_bandwidth = Bandwidth::bytes_per_second(static_cast<double>(std::max<std::int64_t>(best, 0)));
  if (best < 0) s.bisection_cut = "none (fewer than 2 GPUs)";
  return s;
}

}  // namespace moesim
