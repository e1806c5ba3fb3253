#include "sim/plan.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace moesim {

std::string_view to_string(OpCategory category) {
  switch (category) {
    case OpCategory::kEmbedding: return "embedding";
    case OpCategory::kNorm: return "norm";
    case OpCategory::kAttention: return "attention";
    case OpCategory::kRouter: return "router";
    case OpCategory::kExpert: return "expert";
    case OpCategory::kSharedExpert: return "shared_expert";
    case OpCategory::kDenseFfn: return "dense_ffn";
    case OpCategory::kLmHead: return "lm_head";
    case OpCategory::kOtherCompute: return "compute";
    case OpCategory::kTpAllReduce: return "tp_allreduce";
    case OpCategory::kEpDispatch: return "ep_dispatch";
    case OpCategory::kEpCombine: return "ep_combine";
    case OpCategory::kPpTransfer: return "pp_send";
    case OpCategory::kOtherComm: return "communication";
  }
  return "unknown";
}

std::string_view to_string(StreamKind stream) {
  switch (stream) {
    case StreamKind::kCompute: return "compute";
    case StreamKind::kComm: return "comm";
    case StreamKind::kPpSend: return "pp_send";
    case StreamKind::kPpRecv: return "pp_recv";
  }
  return "unknown";
}

std::string describe(const OpLabel& label) {
  std::string s(to_string(label.category));
  if (label.stage >= 0) s += " stage " + std::to_string(label.stage);
  if (label.layer >= 0) s += " layer " + std::to_string(label.layer);
  if (label.microbatch >= 0) s += " micro-batch " + std::to_string(label.microbatch);
  return s;
}

Plan::Plan(std::int32_t gpu_count) : gpu_count_(gpu_count) {
  if (gpu_count <= 0 || gpu_count > std::numeric_limits<std::int32_t>::max() / kStreamsPerGpu) {
    throw PlanError("a plan needs a positive GPU count, got " + std::to_string(gpu_count));
  }
  lane_ops_.resize(static_cast<std::size_t>(gpu_count) * kStreamsPerGpu);
  dep_begin_.push_back(0);
  lane_begin_.push_back(0);
}

void Plan::reserve(std::size_t ops, std::size_t deps) {
  kind_.reserve(ops);
  label_.reserve(ops);
  duration_.reserve(ops);
  request_index_.reserve(ops);
  dep_begin_.reserve(ops + 1);
  lane_begin_.reserve(ops + 1);
  lanes_.reserve(ops);
  deps_.reserve(deps);
}

std::size_t Plan::idx(OpId op) const {
  if (op < 0 || static_cast<std::size_t>(op) >= kind_.size()) {
    throw PlanError("op id " + std::to_string(op) + " is not in the plan (" + std::to_string(kind_.size()) + " ops)");
  }
  return static_cast<std::size_t>(op);
}

void Plan::check_gpu(GpuId gpu, const char* what) const {
  if (gpu < 0 || gpu >= gpu_count_) {
    throw PlanError(std::string(what) + ": GPU " + std::to_string(gpu) + " is outside 0.." +
                    std::to_string(gpu_count_ - 1));
  }
}

OpId Plan::append(OpKind kind, OpLabel label, Duration duration, std::span<const OpId> deps) {
  if (kind_.size() >= static_cast<std::size_t>(std::numeric_limits<OpId>::max())) {
    throw PlanError("plan exceeds the op id range");
  }
  const auto id = static_cast<OpId>(kind_.size());
  for (OpId d : deps) {
    // Only existing ops: the dependency graph is acyclic by construction.
    if (d < 0 || d >= id) {
      throw PlanError("op " + std::to_string(id) + " (" + describe(label) + ") depends on op " + std::to_string(d) +
                      ", which does not exist yet");
    }
  }
  deps_.insert(deps_.end(), deps.begin(), deps.end());
  if (deps_.size() > std::numeric_limits<std::uint32_t>::max()) throw PlanError("plan has too many dependencies");
  kind_.push_back(kind);
  label_.push_back(label);
  duration_.push_back(duration);
  request_index_.push_back(-1);
  dep_begin_.push_back(static_cast<std::uint32_t>(deps_.size()));
  return id;
}

OpId Plan::add_compute(GpuId gpu, Duration duration, OpLabel label, std::span<const OpId> deps, StreamKind stream) {
  check_gpu(gpu, "compute op");
  if (duration < Duration::zero()) throw PlanError("compute op " + describe(label) + " has a negative duration");
  const OpId id = append(OpKind::kCompute, label, duration, deps);
  const LaneId lane = lane_of(gpu, stream);
  lanes_.push_back(lane);
  lane_begin_.push_back(static_cast<std::uint32_t>(lanes_.size()));
  lane_ops_[static_cast<std::size_t>(lane)].push_back(LaneSlot{id, 0});
  return id;
}

OpId Plan::add_collective(CollectiveRequest request, OpLabel label, std::span<const OpId> deps, StreamKind stream) {
  if (request.group.empty()) throw PlanError("collective " + describe(label) + " has an empty group");
  for (GpuId g : request.group) check_gpu(g, "collective op");
  {
    // A GPU twice in one collective would wait for itself on its own stream.
    std::vector<GpuId> sorted = request.group;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      throw PlanError("collective " + describe(label) + " names a GPU twice in its group");
    }
  }
  if (request.op == CollectiveOp::kAllToAllV && request.matrix.size() != request.group.size() * request.group.size()) {
    throw PlanError("all-to-allv " + describe(label) + " has a matrix of " + std::to_string(request.matrix.size()) +
                    " entries for a group of " + std::to_string(request.group.size()));
  }
  const OpId id = append(OpKind::kCollective, label, Duration::zero(), deps);
  for (std::size_t r = 0; r < request.group.size(); ++r) {
    StreamKind s = stream;
    if (request.op == CollectiveOp::kSendRecv && stream == StreamKind::kPpSend && request.group.size() == 2) {
      // The receiver posts its recv on its own receive stream.
      s = r == 0 ? StreamKind::kPpSend : StreamKind::kPpRecv;
    }
    const LaneId lane = lane_of(request.group[r], s);
    lanes_.push_back(lane);
    lane_ops_[static_cast<std::size_t>(lane)].push_back(LaneSlot{id, static_cast<std::int32_t>(r)});
  }
  lane_begin_.push_back(static_cast<std::uint32_t>(lanes_.size()));
  request_index_.back() = static_cast<std::int32_t>(requests_.size());
  requests_.push_back(std::move(request));
  return id;
}

OpId Plan::add_send_recv(GpuId src, GpuId dst, Bytes bytes, OpLabel label, std::span<const OpId> deps,
                         std::string trace_label) {
  if (src == dst) throw PlanError("send/recv " + describe(label) + " from GPU " + std::to_string(src) + " to itself");
  CollectiveRequest req;
  req.op = CollectiveOp::kSendRecv;
  req.group = {src, dst};
  req.bytes = bytes;
  req.label = std::move(trace_label);
  return add_collective(std::move(req), label, deps, StreamKind::kPpSend);
}

std::span<const OpId> Plan::dependencies(OpId op) const {
  const std::size_t i = idx(op);
  return {deps_.data() + dep_begin_[i], dep_begin_[i + 1] - dep_begin_[i]};
}

std::span<const LaneId> Plan::lanes(OpId op) const {
  const std::size_t i = idx(op);
  return {lanes_.data() + lane_begin_[i], lane_begin_[i + 1] - lane_begin_[i]};
}

const CollectiveRequest& Plan::request(OpId op) const {
  const std::int32_t r = request_index_[idx(op)];
  if (r < 0) throw PlanError("op " + std::to_string(op) + " is not a collective");
  return requests_[static_cast<std::size_t>(r)];
}

CollectiveRequest& Plan::mutable_request(OpId op) {
  const std::int32_t r = request_index_[idx(op)];
  if (r < 0) throw PlanError("op " + std::to_string(op) + " is not a collective");
  return requests_[static_cast<std::size_t>(r)];
}

Duration Plan::compute_time(GpuId gpu) const {
  check_gpu(gpu, "compute_time");
  Duration total{};
  for (int s = 0; s < kStreamsPerGpu; ++s) {
    for (const LaneSlot& slot : lane_ops_[static_cast<std::size_t>(lane_of(gpu, static_cast<StreamKind>(s)))]) {
      if (kind_[static_cast<std::size_t>(slot.op)] == OpKind::kCompute) total += duration_[static_cast<std::size_t>(slot.op)];
    }
  }
  return total;
}

}  // namespace moesim
