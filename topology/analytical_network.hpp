#pragma once
// The analytical network model: every transfer takes
//   alpha + route latency + transfer_duration(bytes, bottleneck effective bandwidth)
// whatever else is on the network (no contention). It is the alpha-beta model
// (Hockney 1994) with beta = 1 / bottleneck; fast, and exact for a transfer
// alone. See topology/network.hpp for the timing conventions.

#include <cstdint>
#include <vector>

#include "topology/network.hpp"

namespace moesim {

class AnalyticalNetwork final : public NetworkModel {
 public:
  AnalyticalNetwork(Simulator& sim, const Topology& topology, NetworkParams params);
  ~AnalyticalNetwork() override;

  TransferId start_transfer(GpuId src, GpuId dst, Bytes bytes, UniqueFunction<void()> on_delivered) override;
  [[nodiscard]] NetworkStats stats() const override { return stats_; }
  [[nodiscard]] std::vector<LinkUsage> link_usage() const override;

 private:
  void deliver(std::uint32_t slot);

  // Transfers in flight, in reusable slots (struct of arrays).
  std::vector<UniqueFunction<void()>> cb_;
  std::vector<std::int32_t> path_;
  std::vector<GpuId> src_;
  std::vector<GpuId> dst_;
  std::vector<std::int64_t> bytes_;
  std::vector<std::int64_t> start_;
  std::vector<std::uint32_t> gen_;
  std::vector<EventHandle> event_;
  std::vector<std::uint32_t> free_;

  // Per link: bytes, transfers, busy time as the union of bandwidth phases
  // (phases start in non-decreasing order, so a running end suffices).
  std::vector<std::int64_t> link_bytes_;
  std::vector<std::uint64_t> link_transfers_;
  std::vector<std::int64_t> link_busy_;
  std::vector<std::int64_t> link_busy_until_;

  NetworkStats stats_;
  std::uint64_t in_flight_ = 0;
};

}  // namespace moesim
