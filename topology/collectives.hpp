#pragma once
// Collective algorithms, turned into point-to-point transfers in one place.
//
// A collective is first planned: a TransferPlan, i.e. a DAG of transfers (src,
// dst, bytes) where a transfer starts once all its predecessors have been
// delivered. The CollectiveEngine then runs the plan on a NetworkModel. Every
// transfer pays the model's per-message alpha, so a ring of 2(n-1) steps pays
// 2(n-1) alphas, as in the alpha-beta cost model of Thakur, Rabenseifner and
// Gropp, "Optimization of collective communication operations in MPICH"
// (IJHPCA 2005), which the closed forms in the tests come from.
//
// Algorithms (rank r of a group of n is request.group[r]):
//  - ring all-reduce: reduce-scatter then all-gather around the ring,
//    2(n-1) steps; at step t rank r sends chunk (r - t) mod n (S/n bytes) to
//    rank r+1. A rank's step t+1 starts when it has received step t from rank
//    r-1 and its own step-t send is done (the NCCL ring: one connection per
//    neighbour, a chunk is forwarded after it has been reduced).
//    Uncontended time 2(n-1) (alpha + S/(n B)).
//  - hierarchical all-reduce: ring reduce-scatter among the group's GPUs of
//    each node (over NVLink), ring all-reduce of each 1/L shard among the GPUs
//    with the same local index on every node (one rail each), ring all-gather
//    inside each node. Needs the same number L of group GPUs on every node.
//  - all-gather (S = gathered output) and reduce-scatter (S = input): ring,
//    n-1 steps of S/n.
//  - broadcast (root = group[0]): pipelined chain group[0] -> group[1] -> ...,
//    the message cut into chunks of kBroadcastChunk (NCCL's Simple-protocol
//    step, 4 MiB buffer / 8 steps = 512 KiB), at most kMaxBroadcastChunks;
//    chunk c moves hop h after it crossed hop h-1 and chunk c-1 crossed hop h.
//    Uncontended time (n-2+C)(alpha + S/(C B)) for C chunks.
//  - send/recv (group = {src, dst}): one transfer of S.
//  - all-to-all (S = each rank's send buffer, S/n per peer) and all-to-allv
//    (matrix[i*n+j] bytes from rank i to rank j), `direct`: every non-empty
//    pair i != j at once; `two_hop` (the DeepEP / NCCL PXN way): inside a node
//    direct; across nodes, for destination d on node B from node A, (1) each
//    source GPU of A gathers what it has for B's GPUs on rail r over NVLink to
//    A's GPU on rail r (the rail of d), (2) one transfer per node pair and
//    rail carries that aggregate from A's rail-r GPU to B's rail-r GPU, (3) on
//    arrival it is scattered over NVLink to the destinations that are not the
//    rail-r GPU itself. The rail of a GPU is its index inside its node (NIC i
//    of every node on leaf i in the rail-optimized presets). When a node's part
//    of the group has no GPU on rail r, rail r's traffic of that node goes
//    through the group GPU at position (r mod count) of that node.
//
// `auto`: all-reduce -> hierarchical when the group spans several nodes with
// the same count (>= 2) on each, else ring; all-gather, reduce-scatter,
// broadcast -> ring; all-to-all(v) -> direct; send/recv -> direct.
//
// Bandwidths follow nccl-tests (doc/PERFORMANCE.md): algbw = S / time;
// busbw = algbw x bus_bandwidth_factor(op, n).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/communication.hpp"
#include "sim/signal.hpp"
#include "sim/simulator.hpp"
#include "sim/units.hpp"
#include "topology/network.hpp"
#include "topology/topology.hpp"

namespace moesim {

inline constexpr Bytes kBroadcastChunk = Bytes::kib(512);
inline constexpr std::int64_t kMaxBroadcastChunks = 256;

/// A collective as a DAG of point-to-point transfers (struct of arrays).
struct TransferPlan {
  std::vector<GpuId> src;
  std::vector<GpuId> dst;
  std::vector<std::int64_t> bytes;
  /// Number of predecessors of each transfer (0: starts at once).
  std::vector<std::int32_t> predecessors;
  /// Successors of transfer t: successors[successor_begin[t] .. successor_begin[t+1]).
  std::vector<std::int32_t> successor_begin;
  std::vector<std::int32_t> successors;

  [[nodiscard]] std::size_t size() const { return src.size(); }
  [[nodiscard]] Bytes total_bytes() const;
};

/// busbw / algbw per nccl-tests: 2(n-1)/n all-reduce; (n-1)/n all-gather,
/// reduce-scatter, all-to-all(v); 1 broadcast and send/recv; 0 for n < 1.
double bus_bandwidth_factor(CollectiveOp op, std::int32_t n);

/// The algorithm `auto` stands for (or `request.algorithm` itself), after
/// checking that it applies to the op (InputError otherwise).
CollectiveAlgorithm resolve_algorithm(const CollectiveRequest& request, const Topology& topology);

/// Checks the request (InputError naming what to fix: empty group, GPU out of
/// range or repeated, negative bytes, matrix of the wrong size or with a
/// negative entry, send/recv group not of 2, algorithm not for the op) and
/// turns it into transfers.
TransferPlan plan_collective(const CollectiveRequest& request, const Topology& topology);

/// What the engine reports per finished collective.
struct CollectiveRecord {
  std::string label;
  CollectiveOp op = CollectiveOp::kAllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto;  // resolved
  std::int32_t ranks = 0;
  Bytes bytes;
  Time start;
  Time end;
  std::uint64_t transfers = 0;
};

/// Runs collectives as transfers on a NetworkModel (implements the sim core's
/// CommunicationBackend). Any number of collectives may be in flight at once;
/// they share the network.
class CollectiveEngine final : public CommunicationBackend {
 public:
  CollectiveEngine(Simulator& sim, NetworkModel& network);
  ~CollectiveEngine() override;
  CollectiveEngine(const CollectiveEngine&) = delete;
  CollectiveEngine& operator=(const CollectiveEngine&) = delete;

  /// Plans (see plan_collective; throws InputError on a malformed request)
  /// and starts the collective now; `on_complete` runs inside the simulator
  /// event that delivers its last transfer (a collective without transfers
  /// completes in a zero-delay event, never inside start()).
  void start(CollectiveRequest request, Completion on_complete) override;

  [[nodiscard]] std::size_t in_flight() const { return live_; }
  [[nodiscard]] NetworkModel& network() const { return network_; }

  /// Emitted when a collective starts (end == start) and when it finishes.
  Signal<CollectiveRecord> collective_started;
  Signal<CollectiveRecord> collective_finished;

 private:
  struct Running;
  void launch(std::uint32_t slot, std::int32_t task);
  void on_delivered(std::uint32_t slot, std::int32_t task);
  void finish(std::uint32_t slot);

  Simulator& sim_;
  NetworkModel& network_;
  std::vector<std::unique_ptr<Running>> running_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0;
};

/// Parses "all_reduce", "all_gather", "reduce_scatter", "broadcast",
/// "all_to_all", "all_to_allv", "sendrecv" (InputError listing them otherwise).
CollectiveOp parse_collective_op(std::string_view text);
/// Parses "auto", "ring", "hierarchical", "direct", "two_hop".
CollectiveAlgorithm parse_collective_algorithm(std::string_view text);

}  // namespace moesim
