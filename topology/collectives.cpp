#include "topology/collectives.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "sim/options.hpp"  // InputError

namespace moesim {
namespace {

inline std::size_t us(std::int64_t v) { return static_cast<std::size_t>(v); }

/// Collects transfers and dependency edges, then lays them out as a plan.
class PlanBuilder {
 public:
  std::int32_t add(GpuId src, GpuId dst, std::int64_t bytes) {
    plan_.src.push_back(src);
    plan_.dst.push_back(dst);
    plan_.bytes.push_back(bytes);
    return static_cast<std::int32_t>(plan_.src.size() - 1);
  }
  /// `after` starts only once `before` has been delivered.
  void depend(std::int32_t before, std::int32_t after) { edges_.emplace_back(before, after); }
  [[nodiscard]] std::int32_t size() const { return static_cast<std::int32_t>(plan_.src.size()); }

  TransferPlan finish() {
    const std::size_t n = plan_.src.size();
    plan_.predecessors.assign(n, 0);
    plan_.successor_begin.assign(n + 1, 0);
    for (const auto& [before, after] : edges_) {
      ++plan_.successor_begin[us(before) + 1];
      ++plan_.predecessors[us(after)];
    }
    for (std::size_t t = 0; t < n; ++t) plan_.successor_begin[t + 1] += plan_.successor_begin[t];
    plan_.successors.assign(edges_.size(), 0);
    std::vector<std::int32_t> fill(plan_.successor_begin.begin(), plan_.successor_begin.end() - 1);
    for (const auto& [before, after] : edges_) plan_.successors[us(fill[us(before)]++)] = after;
    edges_.clear();
    return std::move(plan_);
  }

 private:
  TransferPlan plan_;
  std::vector<std::pair<std::int32_t, std::int32_t>> edges_;
};

/// Size of part `index` when `total` bytes are cut into `parts` near-equal parts.
std::int64_t part(std::int64_t total, std::int64_t parts, std::int64_t index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

/// Per rank of a sub-collective: the transfers that must be delivered before
/// the rank may send (its gates), or after which it is done (its ends).
using RankTasks = std::vector<std::vector<std::int32_t>>;

/// A ring of `steps` steps among `members` over data of `total` bytes cut into
/// members.size() chunks: at step t rank r sends chunk (r - t) mod k to rank
/// r+1, after its own step t-1 send and its receipt of step t-1 (or, at step 0,
/// after its gates). Returns each rank's ends.
RankTasks add_ring(PlanBuilder& b, const std::vector<GpuId>& members, std::int64_t steps, std::int64_t total,
                   const RankTasks* gates) {
  const auto k = static_cast<std::int64_t>(members.size());
  if (k < 2 || steps <= 0) return gates != nullptr ? *gates : RankTasks(us(k));
  const std::int32_t base = b.size();
  const auto task = [&](std::int64_t t, std::int64_t r) { return static_cast<std::int32_t>(base + t * k + r); };
  for (std::int64_t t = 0; t < steps; ++t) {
    for (std::int64_t r = 0; r < k; ++r) {
      const std::int64_t chunk = ((r - t) % k + k) % k;
      const std::int32_t id = b.add(members[us(r)], members[us((r + 1) % k)], part(total, k, chunk));
      if (t == 0) {
        if (gates != nullptr) {
          for (const std::int32_t g : (*gates)[us(r)]) b.depend(g, id);
        }
      } else {
        b.depend(task(t - 1, r), id);                // own previous send
        b.depend(task(t - 1, (r - 1 + k) % k), id);  // previous chunk received from r-1
      }
    }
  }
  RankTasks ends(us(k));
  for (std::int64_t r = 0; r < k; ++r) ends[us(r)] = {task(steps - 1, r), task(steps - 1, (r - 1 + k) % k)};
  return ends;
}

std::string op_name(CollectiveOp op) { return std::string(to_string(op)); }

/// The group's nodes in order of first appearance, each with its ranks in group order.
struct NodeGroups {
  std::vector<std::int32_t> node_of_rank;  // index into `ranks`
  std::vector<std::vector<std::int32_t>> ranks;
};

NodeGroups group_by_node(const std::vector<GpuId>& group, const Topology& topology) {
  NodeGroups g;
  std::map<std::int32_t, std::int32_t> index;  // topology node -> position (planning only)
  g.node_of_rank.resize(group.size());
  for (std::size_t r = 0; r < group.size(); ++r) {
    const std::int32_t node = topology.node_of(group[r]);
    auto [it, inserted] = index.emplace(node, static_cast<std::int32_t>(g.ranks.size()));
    if (inserted) g.ranks.emplace_back();
    g.node_of_rank[r] = it->second;
    g.ranks[us(it->second)].push_back(static_cast<std::int32_t>(r));
  }
  return g;
}

bool uniform_nodes(const NodeGroups& g) {
  for (const auto& r : g.ranks) {
    if (r.size() != g.ranks.front().size()) return false;
  }
  return true;
}

void check_request(const CollectiveRequest& req, const Topology& topology) {
  const std::string what = "collective " + op_name(req.op) + (req.label.empty() ? "" : " '" + req.label + "'");
  if (req.group.empty()) throw InputError(what + ": the group of GPUs is empty");
  const std::int32_t gpus = topology.gpu_count();
  std::vector<std::int32_t> seen(us(gpus), -1);
  for (std::size_t r = 0; r < req.group.size(); ++r) {
    const GpuId g = req.group[r];
    if (g < 0 || g >= gpus) {
      throw InputError(what + ": rank " + std::to_string(r) + " is GPU " + std::to_string(g) + ", but topology '" +
                       topology.name + "' has " + std::to_string(gpus) + " GPUs (0.." + std::to_string(gpus - 1) +
                       ")");
    }
    if (seen[us(g)] >= 0) {
      throw InputError(what + ": GPU " + std::to_string(g) + " appears twice in the group (ranks " +
                       std::to_string(seen[us(g)]) + " and " + std::to_string(r) + ")");
    }
    seen[us(g)] = static_cast<std::int32_t>(r);
  }
  if (req.bytes.count() < 0) {
    throw InputError(what + ": negative size (" + std::to_string(req.bytes.count()) + " bytes)");
  }
  const std::size_t n = req.group.size();
  if (req.op == CollectiveOp::kAllToAllV) {
    if (req.matrix.size() != n * n) {
      throw InputError(what + ": the byte matrix has " + std::to_string(req.matrix.size()) +
                       " entries, but a group of " + std::to_string(n) + " needs " + std::to_string(n) + " x " +
                       std::to_string(n) + " = " + std::to_string(n * n));
    }
    for (std::size_t e = 0; e < req.matrix.size(); ++e) {
      if (req.matrix[e].count() < 0) {
        throw InputError(what + ": matrix entry [" + std::to_string(e / n) + "][" + std::to_string(e % n) +
                         "] is negative (" + std::to_string(req.matrix[e].count()) + " bytes)");
      }
    }
  }
  if (req.op == CollectiveOp::kSendRecv && n != 2) {
    throw InputError(what + ": send/recv needs a group of exactly 2 GPUs {src, dst}, got " + std::to_string(n));
  }
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

void plan_ring_all_reduce(PlanBuilder& b, const std::vector<GpuId>& group, std::int64_t bytes) {
  const auto n = static_cast<std::int64_t>(group.size());
  add_ring(b, group, 2 * (n - 1), bytes, nullptr);
}

void plan_hierarchical_all_reduce(PlanBuilder& b, const CollectiveRequest& req, const NodeGroups& nodes) {
  const std::int64_t bytes = req.bytes.count();
  const std::size_t k = nodes.ranks.size();      // nodes
  const std::size_t l = nodes.ranks[0].size();   // GPUs per node
  std::vector<std::vector<GpuId>> node_gpus(k);
  for (std::size_t a = 0; a < k; ++a) {
    for (const std::int32_t r : nodes.ranks[a]) node_gpus[a].push_back(req.group[us(r)]);
  }
  // 1. Reduce-scatter inside each node: L-1 steps of S/L.
  std::vector<RankTasks> phase1(k);
  for (std::size_t a = 0; a < k; ++a) {
    phase1[a] = add_ring(b, node_gpus[a], static_cast<std::int64_t>(l) - 1, bytes, nullptr);
  }
  // 2. All-reduce of shard j among the j-th GPUs of every node: 2(K-1) steps of S/(L K).
  std::vector<RankTasks> phase2(k, RankTasks(l));
  for (std::size_t j = 0; j < l; ++j) {
    std::vector<GpuId> rail;
    RankTasks gates;
    for (std::size_t a = 0; a < k; ++a) {
      rail.push_back(node_gpus[a][j]);
      gates.push_back(phase1[a][j]);
    }
    const std::int64_t shard = part(bytes, static_cast<std::int64_t>(l), static_cast<std::int64_t>(j));
    const RankTasks ends = add_ring(b, rail, 2 * (static_cast<std::int64_t>(k) - 1), shard, &gates);
    for (std::size_t a = 0; a < k; ++a) phase2[a][j] = ends[a];
  }
  // 3. All-gather inside each node: L-1 steps of S/L.
  for (std::size_t a = 0; a < k; ++a) add_ring(b, node_gpus[a], static_cast<std::int64_t>(l) - 1, bytes, &phase2[a]);
}

void plan_broadcast(PlanBuilder& b, const std::vector<GpuId>& group, std::int64_t bytes) {
  const auto k = static_cast<std::int64_t>(group.size());
  if (k < 2) return;
  const std::int64_t chunk = kBroadcastChunk.count();
  const std::int64_t chunks = std::clamp<std::int64_t>((bytes + chunk - 1) / chunk, 1, kMaxBroadcastChunks);
  const std::int32_t base = b.size();
  const auto task = [&](std::int64_t c, std::int64_t h) { return static_cast<std::int32_t>(base + c * (k - 1) + h); };
  for (std::int64_t c = 0; c < chunks; ++c) {
    for (std::int64_t h = 0; h + 1 < k; ++h) {
      const std::int32_t id = b.add(group[us(h)], group[us(h + 1)], part(bytes, chunks, c));
      if (h > 0) b.depend(task(c, h - 1), id);  // chunk c reached this hop's sender
      if (c > 0) b.depend(task(c - 1, h), id);  // this hop's previous chunk is through
    }
  }
}

std::int64_t pair_bytes(const CollectiveRequest& req, std::size_t i, std::size_t j) {
  const std::size_t n = req.group.size();
  if (req.op == CollectiveOp::kAllToAllV) return req.matrix[i * n + j].count();
  return req.bytes.count() / static_cast<std::int64_t>(n);
}

void plan_direct_all_to_all(PlanBuilder& b, const CollectiveRequest& req) {
  const std::size_t n = req.group.size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const std::int64_t bytes = pair_bytes(req, i, j);
      if (bytes > 0) b.add(req.group[i], req.group[j], bytes);
    }
  }
}

void plan_two_hop_all_to_all(PlanBuilder& b, const CollectiveRequest& req, const Topology& topology,
                             const NodeGroups& nodes) {
  const std::size_t n = req.group.size();
  const std::size_t k = nodes.ranks.size();
  // Rail of each rank: its GPU's index inside its node; position inside its node's ranks.
  std::vector<std::int32_t> rail(n);
  std::vector<std::int32_t> pos(n);
  std::int32_t rails = 0;
  for (std::size_t a = 0; a < k; ++a) {
    const std::int32_t node = topology.node_of(req.group[us(nodes.ranks[a][0])]);
    const std::vector<GpuId> local = topology.gpus_of_node(node);
    for (std::size_t p = 0; p < nodes.ranks[a].size(); ++p) {
      const std::int32_t r = nodes.ranks[a][p];
      const auto it = std::find(local.begin(), local.end(), req.group[us(r)]);
      rail[us(r)] = static_cast<std::int32_t>(it - local.begin());
      pos[us(r)] = static_cast<std::int32_t>(p);
      rails = std::max(rails, rail[us(r)] + 1);
    }
  }
  // The rank of node a that carries rail r's traffic.
  std::vector<std::vector<std::int32_t>> on_rail(k, std::vector<std::int32_t>(us(rails), -1));
  for (std::size_t a = 0; a < k; ++a) {
    for (const std::int32_t r : nodes.ranks[a]) {
      if (on_rail[a][us(rail[us(r)])] < 0) on_rail[a][us(rail[us(r)])] = r;
    }
  }
  const auto relay = [&](std::size_t a, std::int32_t r) {
    const std::int32_t direct = on_rail[a][us(r)];
    return direct >= 0 ? direct : nodes.ranks[a][us(r) % nodes.ranks[a].size()];
  };

  for (std::size_t a = 0; a < k; ++a) {
    const std::vector<std::int32_t>& here = nodes.ranks[a];
    const std::size_t la = here.size();
    // gather_task[(ip * k + B) * la + pp]: source ip's gather to relay pp for node B.
    std::vector<std::int32_t> gather_task(la * k * la, -1);
    std::vector<std::int64_t> gather_bytes(k * la);
    std::vector<std::int64_t> rail_bytes(la * n, 0);  // [pp * n + q]
    std::map<std::tuple<std::int32_t, std::int32_t, std::int32_t>, std::int64_t> scatter;  // (p, q, j)
    for (std::size_t ip = 0; ip < la; ++ip) {
      const auto i = us(here[ip]);
      std::fill(gather_bytes.begin(), gather_bytes.end(), 0);
      for (std::size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const std::int64_t bytes = pair_bytes(req, i, j);
        if (bytes <= 0) continue;
        const auto bnode = us(nodes.node_of_rank[j]);
        if (bnode == a) {
          b.add(req.group[i], req.group[j], bytes);  // inside the node: direct over NVLink
          continue;
        }
        const std::int32_t p = relay(a, rail[j]);
        const std::int32_t q = relay(bnode, rail[us(p)]);
        if (us(p) != i) gather_bytes[bnode * la + us(pos[us(p)])] += bytes;
        rail_bytes[us(pos[us(p)]) * n + us(q)] += bytes;
        if (us(q) != j) scatter[{p, q, static_cast<std::int32_t>(j)}] += bytes;
      }
      for (std::size_t bnode = 0; bnode < k; ++bnode) {
        for (std::size_t pp = 0; pp < la; ++pp) {
          const std::int64_t bytes = gather_bytes[bnode * la + pp];
          if (bytes > 0) {
            gather_task[(ip * k + bnode) * la + pp] = b.add(req.group[i], req.group[us(here[pp])], bytes);
          }
        }
      }
    }
    std::vector<std::int32_t> rail_task(la * n, -1);
    for (std::size_t pp = 0; pp < la; ++pp) {
      for (std::size_t q = 0; q < n; ++q) {
        const std::int64_t bytes = rail_bytes[pp * n + q];
        if (bytes <= 0) continue;
        const std::int32_t t = b.add(req.group[us(here[pp])], req.group[q], bytes);
        rail_task[pp * n + q] = t;
        const auto bnode = us(nodes.node_of_rank[q]);
        for (std::size_t ip = 0; ip < la; ++ip) {
          const std::int32_t g = gather_task[(ip * k + bnode) * la + pp];
          if (g >= 0) b.depend(g, t);
        }
      }
    }
    for (const auto& [key, bytes] : scatter) {
      const auto [p, q, j] = key;
      const std::int32_t t = b.add(req.group[us(q)], req.group[us(j)], bytes);
      b.depend(rail_task[us(pos[us(p)]) * n + us(q)], t);
    }
  }
}

}  // namespace

Bytes TransferPlan::total_bytes() const {
  std::int64_t sum = 0;
  for (const std::int64_t b : bytes) sum += b;
  return Bytes(sum);
}

double bus_bandwidth_factor(CollectiveOp op, std::int32_t n) {
  if (n < 1) return 0.0;
  const double dn = static_cast<double>(n);
  switch (op) {
    case CollectiveOp::kAllReduce: return 2.0 * (dn - 1.0) / dn;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllToAll:
    case CollectiveOp::kAllToAllV: return (dn - 1.0) / dn;
    case CollectiveOp::kBroadcast:
    case CollectiveOp::kSendRecv: return 1.0;
  }
  return 0.0;
}

CollectiveAlgorithm resolve_algorithm(const CollectiveRequest& req, const Topology& topology) {
  check_request(req, topology);
  const CollectiveAlgorithm a = req.algorithm;
  const auto bad = [&](const char* allowed) {
    return InputError("collective " + op_name(req.op) + ": algorithm '" + std::string(to_string(a)) +
                      "' does not apply; use one of " + allowed);
  };
  switch (req.op) {
    case CollectiveOp::kAllReduce: {
      if (a == CollectiveAlgorithm::kRing) return a;
      const NodeGroups nodes = group_by_node(req.group, topology);
      if (a == CollectiveAlgorithm::kHierarchical) {
        if (!uniform_nodes(nodes)) {
          std::string counts;
          for (const auto& r : nodes.ranks) counts += (counts.empty() ? "" : ", ") + std::to_string(r.size());
          throw InputError("collective all_reduce: hierarchical needs the same number of group GPUs on every "
                           "node, but the group has " +
                           counts + " GPUs on its " + std::to_string(nodes.ranks.size()) +
                           " nodes; use --algorithm ring or an evenly spread group");
        }
        return a;
      }
      if (a != CollectiveAlgorithm::kAuto) throw bad("auto, ring, hierarchical");
      return nodes.ranks.size() >= 2 && uniform_nodes(nodes) && nodes.ranks[0].size() >= 2
                 ? CollectiveAlgorithm::kHierarchical
                 : CollectiveAlgorithm::kRing;
    }
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kBroadcast:
      if (a == CollectiveAlgorithm::kAuto || a == CollectiveAlgorithm::kRing) return CollectiveAlgorithm::kRing;
      throw bad("auto, ring");
    case CollectiveOp::kAllToAll:
    case CollectiveOp::kAllToAllV:
      if (a == CollectiveAlgorithm::kAuto || a == CollectiveAlgorithm::kDirect) return CollectiveAlgorithm::kDirect;
      if (a == CollectiveAlgorithm::kTwoHop) return a;
      throw bad("auto, direct, two_hop");
    case CollectiveOp::kSendRecv:
      if (a == CollectiveAlgorithm::kAuto || a == CollectiveAlgorithm::kDirect) return CollectiveAlgorithm::kDirect;
      throw bad("auto, direct");
  }
  throw bad("auto");
}

TransferPlan plan_collective(const CollectiveRequest& req, const Topology& topology) {
  const CollectiveAlgorithm algorithm = resolve_algorithm(req, topology);
  PlanBuilder b;
  const std::int64_t bytes = req.bytes.count();
  const bool empty = req.op != CollectiveOp::kAllToAllV && bytes == 0;  // as NCCL: a zero count is a no-op
  if (req.group.size() < 2 || empty) return b.finish();
  const auto n = static_cast<std::int64_t>(req.group.size());
  switch (req.op) {
    case CollectiveOp::kAllReduce:
      if (algorithm == CollectiveAlgorithm::kHierarchical) {
        plan_hierarchical_all_reduce(b, req, group_by_node(req.group, topology));
      } else {
        plan_ring_all_reduce(b, req.group, bytes);
      }
      break;
    case CollectiveOp::kAllGather:
    case CollectiveOp::kReduceScatter: add_ring(b, req.group, n - 1, bytes, nullptr); break;
    case CollectiveOp::kBroadcast: plan_broadcast(b, req.group, bytes); break;
    case CollectiveOp::kSendRecv:
      if (req.group[0] != req.group[1]) b.add(req.group[0], req.group[1], bytes);
      break;
    case CollectiveOp::kAllToAll:
    case CollectiveOp::kAllToAllV:
      if (algorithm == CollectiveAlgorithm::kTwoHop) {
        plan_two_hop_all_to_all(b, req, topology, group_by_node(req.group, topology));
      } else {
        plan_direct_all_to_all(b, req);
      }
      break;
  }
  return b.finish();
}

CollectiveOp parse_collective_op(std::string_view text) {
  for (const CollectiveOp op : {CollectiveOp::kAllReduce, CollectiveOp::kAllGather, CollectiveOp::kReduceScatter,
                                CollectiveOp::kBroadcast, CollectiveOp::kAllToAll, CollectiveOp::kAllToAllV,
                                CollectiveOp::kSendRecv}) {
    if (text == to_string(op)) return op;
  }
  throw InputError("unknown collective '" + std::string(text) +
                   "'; use one of all_reduce, all_gather, reduce_scatter, broadcast, all_to_all, all_to_allv, "
                   "sendrecv");
}

CollectiveAlgorithm parse_collective_algorithm(std::string_view text) {
  for (const CollectiveAlgorithm a : {CollectiveAlgorithm::kAuto, CollectiveAlgorithm::kRing,
                                      CollectiveAlgorithm::kHierarchical, CollectiveAlgorithm::kDirect,
                                      CollectiveAlgorithm::kTwoHop}) {
    if (text == to_string(a)) return a;
  }
  throw InputError("unknown collective algorithm '" + std::string(text) +
                   "'; use one of auto, ring, hierarchical, direct, two_hop");
}

// ---------------------------------------------------------------------------
// CollectiveEngine
// ---------------------------------------------------------------------------

struct CollectiveEngine::Running {
  TransferPlan plan;
  std::vector<std::int32_t> waiting;  // predecessors not yet delivered, per transfer
  std::size_t outstanding = 0;        // transfers not yet delivered
  Completion on_complete;
  CollectiveRecord record;
};

CollectiveEngine::CollectiveEngine(Simulator& sim, NetworkModel& network) : sim_(sim), network_(network) {}

CollectiveEngine::~CollectiveEngine() = default;

void CollectiveEngine::start(CollectiveRequest request, Completion on_complete) {
  TransferPlan plan = plan_collective(request, network_.topology());  // checks the request
  const CollectiveAlgorithm algorithm = resolve_algorithm(request, network_.topology());

  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(running_.size());
    running_.emplace_back();
  }
  auto run = std::make_unique<Running>();
  run->waiting = plan.predecessors;
  run->outstanding = plan.size();
  run->plan = std::move(plan);
  run->on_complete = std::move(on_complete);
  run->record = CollectiveRecord{std::move(request.label),
                                 request.op,
                                 algorithm,
                                 static_cast<std::int32_t>(request.group.size()),
                                 request.bytes,
                                 sim_.now(),
                                 sim_.now(),
                                 run->plan.size()};
  running_[slot] = std::move(run);
  ++live_;
  Running& r = *running_[slot];
  if (collective_started.connected()) collective_started.emit(r.record);
  if (r.outstanding == 0) {
    sim_.schedule_in(Duration::zero(), [this, slot] { finish(slot); });
    return;
  }
  // Large collectives: look the routes up in the order the topology prefers.
  if (r.plan.size() >= 4096) network_.prepare_paths(r.plan.src, r.plan.dst);
  // A direct all-to-all(v) is one phase of independent transfers that
  // completes as a whole: the network may move it as one group (a coflow in
  // the flow model, network.alltoall_sharing).
  const bool one_phase = r.plan.successors.empty() &&
                         std::all_of(r.plan.predecessors.begin(), r.plan.predecessors.end(),
                                     [](std::int32_t p) { return p == 0; });
  if (algorithm == CollectiveAlgorithm::kDirect && one_phase &&
      (request.op == CollectiveOp::kAllToAll || request.op == CollectiveOp::kAllToAllV)) {
    network_.start_group(r.plan.src, r.plan.dst, r.plan.bytes, [this, slot] { finish(slot); });
    return;
  }
  for (std::size_t t = 0; t < r.plan.size(); ++t) {
    if (r.plan.predecessors[t] == 0) launch(slot, static_cast<std::int32_t>(t));
  }
}

void CollectiveEngine::launch(std::uint32_t slot, std::int32_t task) {
  const Running& r = *running_[slot];
  const auto t = us(task);
  network_.start_transfer(r.plan.src[t], r.plan.dst[t], Bytes(r.plan.bytes[t]),
                          [this, slot, task] { on_delivered(slot, task); });
}

void CollectiveEngine::on_delivered(std::uint32_t slot, std::int32_t task) {
  Running& r = *running_[slot];
  const auto t = us(task);
  for (auto s = r.plan.successor_begin[t]; s < r.plan.successor_begin[t + 1]; ++s) {
    const std::int32_t next = r.plan.successors[us(s)];
    if (--r.waiting[us(next)] == 0) launch(slot, next);
  }
  if (--r.outstanding == 0) finish(slot);
}

void CollectiveEngine::finish(std::uint32_t slot) {
  std::unique_ptr<Running> r = std::move(running_[slot]);
  free_.push_back(slot);
  --live_;
  r->record.end = sim_.now();
  if (collective_finished.connected()) collective_finished.emit(r->record);
  const CollectiveResult result{r->record.end - r->record.start, r->record.transfers};
  if (r->on_complete) r->on_complete(result);
}

}  // namespace moesim
