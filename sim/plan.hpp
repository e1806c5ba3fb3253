#pragma once
// A plan: the DAG of ops of one iteration, laid out on the GPUs' streams.
//
// Every GPU has kStreamsPerGpu streams (CUDA streams): one for compute, one for
// collectives (TP all-reduce, EP all-to-all) and a send and a receive stream for
// pipeline point-to-point transfers, so that a stage can receive micro-batch
// m+1 while it sends micro-batch m (what Megatron's batched isend/irecv gives).
// A "lane" is one (GPU, stream) pair. Ops on a lane run in program order: the
// order in which the builder appended them to that lane. A compute op occupies
// one lane; a collective occupies one lane on each participating GPU.
//
// Storage is flat (struct of vectors, integer ids, dependency lists packed in
// one array) because a DeepSeek-V3 plan on 1,024 GPUs has ~10^6 ops.
//
// Dependencies may only name ops that already exist, so the dependency graph
// is acyclic by construction; the stream order can still make a plan
// unrunnable (two GPUs that post the same two collectives in opposite orders),
// which the executor detects and reports as a PlanError.

#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sim/communication.hpp"
#include "sim/units.hpp"

namespace moesim {

/// A malformed plan or one that cannot run (deadlock): a bug in the plan
/// builder, never bad user input.
class PlanError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

using OpId = std::int32_t;
using LaneId = std::int32_t;

enum class OpKind : std::uint8_t { kCompute, kCollective };

enum class StreamKind : std::uint8_t {
  kCompute = 0,
  kComm = 1,    // TP all-reduce, EP dispatch/combine (one NCCL communicator stream)
  kPpSend = 2,  // pipeline: activations to the next stage
  kPpRecv = 3,  // pipeline: activations from the previous stage
};
inline constexpr int kStreamsPerGpu = 4;

/// What an op is, for the analysis (time breakdown, traces). The executor
/// itself only distinguishes compute from collective ops.
enum class OpCategory : std::uint8_t {
  kEmbedding,
  kNorm,
  kAttention,      // QKV / output projections and the attention kernel
  kRouter,         // gate GEMM + top-k
  kExpert,         // routed experts (grouped GEMM)
  kSharedExpert,
  kDenseFfn,       // FFN of the leading dense layers
  kLmHead,
  kOtherCompute,
  kTpAllReduce,
  kEpDispatch,
  kEpCombine,
  kPpTransfer,     // stage-to-stage send/recv of activations
  kOtherComm,
};
inline constexpr int kOpCategoryCount = 14;

std::string_view to_string(OpCategory category);
std::string_view to_string(StreamKind stream);

/// EP dispatch/combine: counted as all_to_all in the time breakdown.
constexpr bool is_all_to_all(OpCategory c) { return c == OpCategory::kEpDispatch || c == OpCategory::kEpCombine; }
constexpr bool is_communication(OpCategory c) {
  return c == OpCategory::kTpAllReduce || c == OpCategory::kEpDispatch || c == OpCategory::kEpCombine ||
         c == OpCategory::kPpTransfer || c == OpCategory::kOtherComm;
}

/// Labels for the analysis; -1 = not applicable.
struct OpLabel {
  OpCategory category = OpCategory::kOtherCompute;
  std::int16_t stage = -1;
  std::int16_t layer = -1;
  std::int32_t microbatch = -1;
};
std::string describe(const OpLabel& label);

/// One (GPU, stream) pair.
constexpr LaneId lane_of(GpuId gpu, StreamKind stream) {
  return gpu * kStreamsPerGpu + static_cast<LaneId>(stream);
}
constexpr GpuId gpu_of_lane(LaneId lane) { return lane / kStreamsPerGpu; }
constexpr StreamKind stream_of_lane(LaneId lane) { return static_cast<StreamKind>(lane % kStreamsPerGpu); }

class Plan {
 public:
  /// An op's position on one of its lanes: which lane, and which participant
  /// (rank in the collective's group; 0 for compute ops) it is there.
  struct LaneSlot {
    OpId op;
    std::int32_t participant;
  };

  explicit Plan(std::int32_t gpu_count);

  /// Reserves storage (a hint; plans grow as needed).
  void reserve(std::size_t ops, std::size_t deps);

  /// A compute op of `duration` on `gpu`'s `stream` (the compute stream unless
  /// a builder models, e.g., a copy engine).
  OpId add_compute(GpuId gpu, Duration duration, OpLabel label, std::span<const OpId> deps,
                   StreamKind stream = StreamKind::kCompute);
  OpId add_compute(GpuId gpu, Duration duration, OpLabel label, std::initializer_list<OpId> deps = {},
                   StreamKind stream = StreamKind::kCompute) {
    return add_compute(gpu, duration, label, std::span<const OpId>(deps.begin(), deps.size()), stream);
  }

  /// A collective on `stream` of every GPU of request.group (a GPU may appear
  /// once). It starts when all its dependencies are done and it is at the head
  /// of that stream on every participant (NCCL's rendezvous). A kSendRecv on
  /// kPpSend occupies the sender's kPpSend and the receiver's kPpRecv stream.
  OpId add_collective(CollectiveRequest request, OpLabel label, std::span<const OpId> deps,
                      StreamKind stream = StreamKind::kComm);
  OpId add_collective(CollectiveRequest request, OpLabel label, std::initializer_list<OpId> deps = {},
                      StreamKind stream = StreamKind::kComm) {
    return add_collective(std::move(request), label, std::span<const OpId>(deps.begin(), deps.size()), stream);
  }

  /// A point-to-point transfer (kSendRecv) of `bytes` from `src` to `dst`: it
  /// occupies src's kPpSend stream and dst's kPpRecv stream.
  OpId add_send_recv(GpuId src, GpuId dst, Bytes bytes, OpLabel label, std::span<const OpId> deps,
                     std::string trace_label = {});

  [[nodiscard]] std::int32_t gpu_count() const { return gpu_count_; }
  [[nodiscard]] std::int32_t lane_count() const { return gpu_count_ * kStreamsPerGpu; }
  [[nodiscard]] std::size_t size() const { return kind_.size(); }
  [[nodiscard]] std::size_t dependency_count() const { return deps_.size(); }
  [[nodiscard]] std::size_t collective_count() const { return requests_.size(); }

  [[nodiscard]] OpKind kind(OpId op) const { return kind_[idx(op)]; }
  [[nodiscard]] const OpLabel& label(OpId op) const { return label_[idx(op)]; }
  /// The compute time of a compute op; zero for a collective.
  [[nodiscard]] Duration duration(OpId op) const { return duration_[idx(op)]; }
  [[nodiscard]] std::span<const OpId> dependencies(OpId op) const;
  /// The lanes an op occupies (one for compute; the group's, in rank order, for
  /// a collective).
  [[nodiscard]] std::span<const LaneId> lanes(OpId op) const;
  /// Index of the op's first lane in the plan's packed lane list (lane slots of
  /// all ops are numbered 0 .. total_lane_slots()-1, op by op).
  [[nodiscard]] std::uint32_t lane_slot_begin(OpId op) const { return lane_begin_[idx(op)]; }
  [[nodiscard]] std::size_t total_lane_slots() const { return lanes_.size(); }
  /// Index of a collective op among the plan's collectives (-1 for compute).
  [[nodiscard]] std::int32_t collective_index(OpId op) const { return request_index_[idx(op)]; }
  /// The collective's request (valid for collective ops only). The executor
  /// moves each request into the backend when the collective starts, so after
  /// a run only its `op`, `bytes` and `label` remain meaningful.
  [[nodiscard]] const CollectiveRequest& request(OpId op) const;
  [[nodiscard]] CollectiveRequest& mutable_request(OpId op);
  /// The ops on one lane, in program order.
  [[nodiscard]] const std::vector<LaneSlot>& lane_ops(LaneId lane) const { return lane_ops_[static_cast<std::size_t>(lane)]; }

  /// Sum of the compute-op durations on `gpu` (any stream).
  [[nodiscard]] Duration compute_time(GpuId gpu) const;

 private:
  [[nodiscard]] std::size_t idx(OpId op) const;
  OpId append(OpKind kind, OpLabel label, Duration duration, std::span<const OpId> deps);
  void check_gpu(GpuId gpu, const char* what) const;

  std::int32_t gpu_count_;
  // Per op (struct of arrays).
  std::vector<OpKind> kind_;
  std::vector<OpLabel> label_;
  std::vector<Duration> duration_;
  std::vector<std::int32_t> request_index_;  // -1 for compute ops
  std::vector<std::uint32_t> dep_begin_;     // size() + 1 offsets into deps_
  std::vector<std::uint32_t> lane_begin_;    // size() + 1 offsets into lanes_
  // Packed lists.
  std::vector<OpId> deps_;
  std::vector<LaneId> lanes_;
  std::vector<CollectiveRequest> requests_;
  // Per lane: the ops in program order.
  std::vector<std::vector<LaneSlot>> lane_ops_;
};

}  // namespace moesim
