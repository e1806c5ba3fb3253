#include "topology/analytical_network.hpp"

#include <algorithm>
#include <utility>

namespace moesim {

AnalyticalNetwork::AnalyticalNetwork(Simulator& sim, const Topology& topology, NetworkParams params)
    : NetworkModel(sim, topology, std::move(params)) {
  const std::size_t links = topology.link_count();
  link_bytes_.assign(links, 0);
  link_transfers_.assign(links, 0);
  link_busy_.assign(links, 0);
  link_busy_until_.assign(links, 0);
}

AnalyticalNetwork::~AnalyticalNetwork() {
  // Pending deliveries capture `this`: take them off the queue.
  // (A handle of an event that already ran is ignored by cancel.)
  for (const EventHandle& e : event_) sim_.cancel(e);
}

TransferId AnalyticalNetwork::start_transfer(GpuId src, GpuId dst, Bytes bytes,
                                             UniqueFunction<void()> on_delivered) {
  check_transfer(src, dst, bytes);
  const std::int32_t p = path_index(src, dst);
  const PathInfo& info = path(p);

  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(cb_.size());
    cb_.emplace_back();
    path_.push_back(0);
    src_.push_back(0);
    dst_.push_back(0);
    bytes_.push_back(0);
    start_.push_back(0);
    gen_.push_back(1);
    event_.emplace_back();
  }
  const std::int64_t now = sim_.now().count_ps();
  cb_[slot] = std::move(on_delivered);
  path_[slot] = p;
  src_[slot] = src;
  dst_[slot] = dst;
  bytes_[slot] = bytes.count();
  start_[slot] = now;

  // Bandwidth phase [now + alpha, now + alpha + bytes / bottleneck), then the latency.
  const std::int64_t phase_start = now + params_.alpha.count_ps();
  std::int64_t phase = 0;
  if (info.length > 0 && bytes.count() > 0) {
    phase = transfer_duration(bytes, Bandwidth::bytes_per_second(info.bottleneck)).count_ps();
  }
  const std::int64_t phase_end = phase_start + phase;
  for (LinkId l : path_links(p)) {
    const auto li = static_cast<std::size_t>(l);
    link_bytes_[li] += bytes.count();
    ++link_transfers_[li];
    // Union of the bandwidth phases: they start in non-decreasing order.
    if (phase_end > link_busy_until_[li]) {
      link_busy_[li] += phase_end - std::max(phase_start, link_busy_until_[li]);
      link_busy_until_[li] = phase_end;
    }
  }
  const Time deliver_at = Time::at(Duration::ps(phase_end) + info.latency);
  event_[slot] = sim_.schedule_at(deliver_at, [this, slot] { deliver(slot); });

  ++stats_.transfers_started;
  stats_.bytes_started += bytes;
  ++in_flight_;
  stats_.peak_active_flows = std::max(stats_.peak_active_flows, in_flight_);
  const TransferId id = (static_cast<std::uint64_t>(gen_[slot]) << 32) | slot;
  if (transfer_started.connected()) {
    transfer_started.emit(TransferRecord{id, src, dst, bytes, sim_.now(), sim_.now(), path_links(p)});
  }
  return id;
}

void AnalyticalNetwork::deliver(std::uint32_t slot) {
  UniqueFunction<void()> cb = std::move(cb_[slot]);
  cb_[slot] = nullptr;
  ++stats_.transfers_delivered;
  stats_.bytes_delivered += Bytes(bytes_[slot]);
  --in_flight_;
  if (transfer_delivered.connected()) {
    const TransferId id = (static_cast<std::uint64_t>(gen_[slot]) << 32) | slot;
    transfer_delivered.emit(TransferRecord{id, src_[slot], dst_[slot], Bytes(bytes_[slot]),
                                           Time::at(Duration::ps(start_[slot])), sim_.now(),
                                           path_links(path_[slot])});
  }
  ++gen_[slot];
  free_.push_back(slot);
  if (cb) cb();
}

std::vector<LinkUsage> AnalyticalNetwork::link_usage() const {
  std::vector<LinkUsage> out(link_bytes_.size());
  for (std::size_t l = 0; l < out.size(); ++l) {
    out[l] = LinkUsage{static_cast<LinkId>(l), Bytes(link_bytes_[l]), Duration::ps(link_busy_[l]),
                       link_transfers_[l]};
  }
  return out;
}

}  // namespace moesim
