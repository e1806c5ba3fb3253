#pragma once
// The narrow interface between the engine (which executes plans of ops) and
// the network (topology/). The sim core only knows that a communication op is
// handed to a CommunicationBackend and that a callback fires when the last
// byte has arrived; topology/ implements it (analytical or flow-level), so the
// sim core depends on nothing of ours.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/unique_function.hpp"
#include "sim/units.hpp"

namespace moesim {

/// Index of a GPU in the cluster (0 .. gpus-1), as numbered by the topology.
using GpuId = std::int32_t;

enum class CollectiveOp : std::uint8_t {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kBroadcast,
  kAllToAll,     // uniform: `bytes` is each rank's whole send buffer (nccl-tests meaning)
  kAllToAllV,    // from the byte matrix
  kSendRecv,     // point to point: group = {src, dst}
};

enum class CollectiveAlgorithm : std::uint8_t {
  kAuto,          // the backend's default for the op
  kRing,          // all-reduce / all-gather / reduce-scatter / broadcast
  kHierarchical,  // RS inside node, AR across nodes, AG inside node
  kDirect,        // all-to-all: every pair at once
  kTwoHop,        // all-to-all: gather per destination node over NVLink, rail, scatter
};

std::string_view to_string(CollectiveOp op);
std::string_view to_string(CollectiveAlgorithm algorithm);

struct CollectiveRequest {
  CollectiveOp op = CollectiveOp::kAllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto;
  /// The participating GPUs; rank r of the collective is group[r].
  std::vector<GpuId> group;
  /// Size in the nccl-tests sense for the op (all-reduce: the buffer; all-gather:
  /// the gathered output; reduce-scatter: the input; all-to-all: each rank's
  /// whole send buffer; send/recv and broadcast: the message).
  Bytes bytes{};
  /// For kAllToAllV: matrix[i * n + j] = bytes rank i sends to rank j (n = group size).
  std::vector<Bytes> matrix;
  /// Free-form label for traces ("layer 3 dispatch").
  std::string label;
};

/// Per-collective outcome reported when it completes.
struct CollectiveResult {
  Duration time{};            // first byte issued to last byte delivered
  std::uint64_t transfers = 0;  // point-to-point transfers it was turned into
};

class CommunicationBackend {
 public:
  using Completion = UniqueFunction<void(const CollectiveResult&)>;
  virtual ~CommunicationBackend() = default;
  /// Starts the collective now; `on_complete` runs (as a simulator event) when
  /// the last transfer has been delivered. Throws InputError (sim/options.hpp)
  /// on a malformed request (empty group, GPU out of range, matrix of the
  /// wrong size, ...), since requests come from user-given plans.
  virtual void start(CollectiveRequest request, Completion on_complete) = 0;
};

}  // namespace moesim
