#pragma once
// The network model: how point-to-point transfers between GPUs move over the
// links of a Topology. One interface, two fidelities (`network.model`):
//
//  - analytical: alpha + route latency + bytes / bottleneck effective
//    bandwidth; transfers never interact (the LogP/alpha-beta model).
//  - flow (default): every transfer in its bandwidth phase gets a max-min fair
//    share of each directed link it crosses (progressive filling, Bertsekas &
//    Gallager, "Data Networks", 6.5.2), recomputed whenever the set of active
//    transfers changes, all changes of one instant batched into one
//    recomputation, and only the transfers connected to the change (through
//    shared links) re-solved. This is the fluid model of SimGrid (Velho et
//    al., "On the validity of flow-level TCP network models", TOMACS 2013).
//
// Timing of one transfer started at t0 (both models):
//   [t0, t0 + alpha)          per-message overhead: software, kernel launch,
//                             protocol handshake; occupies no link.
//   [t0 + alpha, t_drain)     bandwidth phase: the bytes leave the sender at
//                             the (shared) rate; links are busy.
//   t_drain + route latency   delivery: the last byte arrives (propagation and
//                             switching along the route), `on_delivered` runs.
// Analytical: t_drain = t0 + alpha + transfer_duration(bytes, bottleneck).
// A transfer of 0 bytes, or from a GPU to itself, has no bandwidth phase.
//
// Link capacity = line rate x achievable efficiency of its class. The per-class
// efficiencies and alpha are calibrated per topology preset against measured
// NCCL collectives (calibration.md; docs/network.md has the fit and errors);
// `network.*` options override them.
//
// Models never write files: observers connect to the signals below.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sim/communication.hpp"
#include "sim/options.hpp"
#include "sim/signal.hpp"
#include "sim/simulator.hpp"
#include "sim/unique_function.hpp"
#include "sim/units.hpp"
#include "topology/topology.hpp"

namespace moesim {

enum class NetworkModelKind : std::uint8_t { kAnalytical, kFlow };

/// "analytical", "flow".
std::string_view to_string(NetworkModelKind kind);

/// How the flow model shares links among the transfers of one direct
/// all-to-all(v) (`network.alltoall_sharing`):
///  - coflow (default): the collective moves as ONE entity whose transfers
///    progress in proportion to their sizes and finish together, the way
///    DeepEP-style dispatch/combine kernels stream tokens in order to all
///    their destinations at once; against other traffic it claims on each
///    link what its transfers there would claim together
///    (FlowSolver::start_coflow). One entity per collective: a skewed
///    all-to-allv costs one rate recomputation, not one per transfer.
///  - per_transfer: every transfer is its own max-min flow (NCCL grouped
///    send/recv: each peer its own connection). Exact max-min per pair; a
///    skewed all-to-allv drains transfer by transfer, which costs about
///    (transfers)^2 work per collective.
/// The analytical model ignores it (transfers never interact there).
enum class AllToAllSharing : std::uint8_t { kCoflow, kPerTransfer };

/// "coflow", "per_transfer".
std::string_view to_string(AllToAllSharing sharing);

/// Identifies one transfer (unique within one network model).
using TransferId = std::uint64_t;

/// Per-message overhead and per-link-class efficiency fitted for a cluster
/// (docs/network.md, "Calibration").
struct NetworkCalibration {
  std::string name;      // profile name: the preset it was fitted for, or "generic"
  Duration alpha;        // per-message overhead
  /// Achievable fraction of line rate per LinkClass; 0 = keep the topology's
  /// own figure (Topology::efficiency) for that class.
  std::array<double, kLinkClassCount> efficiency{};
  std::string source;    // what it was fitted against
};

/// The calibration profile of a topology, chosen by its preset name
/// (Topology::name): dgx-h100, dgx-a100, hgx-h800, default (A100 64GB) and
/// mi300x-8 have one; anything else (DOT files) gets "generic".
NetworkCalibration network_calibration(std::string_view topology_name);

/// Fully resolved parameters of a network model.
/// Flow model: flows due within this fraction of their remaining time drain
/// together with the current drain (topology/flow_network.hpp).
inline constexpr double kDefaultDrainTolerance = 1e-9;

struct NetworkParams {
  NetworkModelKind model = NetworkModelKind::kFlow;
  Duration alpha;
  double drain_tolerance = kDefaultDrainTolerance;
  AllToAllSharing alltoall_sharing = AllToAllSharing::kCoflow;
  /// Efficiency per LinkClass actually used (all > 0).
  std::array<double, kLinkClassCount> efficiency{1.0, 1.0, 1.0, 1.0};
  /// Where the figures came from, for reports ("dgx-h100 calibration; network.alpha from command line").
  std::string provenance;
};

/// The defaults for `topology`: its calibration profile, falling back to the
/// topology's own class efficiencies where the profile has none.
NetworkParams default_network_params(const Topology& topology, NetworkModelKind model = NetworkModelKind::kFlow);

/// Resolves the `network.*` options for `topology`: an option set explicitly
/// wins over the calibration profile, which wins over the topology's figures.
NetworkParams network_params_from_config(const Config& config, const Topology& topology);

/// Registers the `network.*` scenario options:
///   network.model               analytical | flow (default flow)
///   network.alpha               per-message overhead (unset: calibrated per preset)
///   network.nvlink_efficiency   achievable fraction of line rate, (0, 1] (unset: calibrated)
///   network.pcie_efficiency     "
///   network.nic_efficiency      "
///   network.fabric_efficiency   "
///   network.drain_tolerance     flow model: relative window for draining flows together (default 1e-9)
///   network.alltoall_sharing    flow model: coflow | per_transfer (default coflow)
void register_network_options(OptionRegistry& registry);

/// What a signal reports about one transfer.
struct TransferRecord {
  TransferId id = 0;
  GpuId src = -1;
  GpuId dst = -1;
  Bytes bytes;
  Time start;                       // start_transfer() was called
  Time end;                         // delivered (equal to start in transfer_started)
  std::span<const LinkId> links;    // the route; valid only during the emission
};

/// Counters of one directed link.
struct LinkUsage {
  LinkId link = 0;
  Bytes bytes;                      // bytes of the transfers that crossed it (counted when they drain)
  Duration busy;                    // time with at least one transfer in its bandwidth phase on it
  std::uint64_t transfers = 0;      // transfers that crossed it
};

struct NetworkStats {
  std::uint64_t transfers_started = 0;
  std::uint64_t transfers_delivered = 0;
  Bytes bytes_started;
  Bytes bytes_delivered;
  /// Flow model: recomputations of max-min rates (one per batch of
  /// simultaneous changes), and the flows and links they re-solved in total.
  std::uint64_t rate_recomputations = 0;
  /// ... of which found the rates unchanged (a drain that freed capacity no
  /// other flow can use) without re-solving.
  std::uint64_t unchanged_recomputations = 0;
  std::uint64_t flows_resolved = 0;
  std::uint64_t links_resolved = 0;
  std::uint64_t peak_active_flows = 0;
  /// Flow model, numerical self-check: largest |bytes left in the fluid
  /// integral| when a transfer was declared drained, beyond one picosecond's
  /// worth at its rate (the rounding of drain times), as a fraction of its
  /// size. Bounded by the drain tolerance (flow_network.hpp).
  double max_residual_fraction = 0.0;
};

class NetworkModel {
 public:
  virtual ~NetworkModel();
  NetworkModel(const NetworkModel&) = delete;
  NetworkModel& operator=(const NetworkModel&) = delete;

  /// Starts moving `bytes` from `src` to `dst` now; `on_delivered` runs (inside
  /// a simulator event) when the last byte has arrived. Throws InputError for a
  /// GPU outside the topology or negative bytes. The model must outlive the
  /// simulator run that delivers its transfers.
  virtual TransferId start_transfer(GpuId src, GpuId dst, Bytes bytes, UniqueFunction<void()> on_delivered) = 0;

  /// Starts a group of independent transfers that completes as a whole (the
  /// one phase of a direct all-to-all(v)): transfer i moves bytes[i] from
  /// src[i] to dst[i]; `on_all_delivered` runs, inside a simulator event, once
  /// the last has arrived. Checks every transfer first (InputError, nothing
  /// started). This default starts each with start_transfer(); the flow model
  /// moves the group as one coflow unless network.alltoall_sharing is
  /// per_transfer. An empty group completes in a zero-delay event.
  virtual void start_group(std::span<const GpuId> src, std::span<const GpuId> dst,
                           std::span<const std::int64_t> bytes, UniqueFunction<void()> on_all_delivered);

  [[nodiscard]] virtual NetworkStats stats() const = 0;
  /// Counters of every link (indexed by LinkId), busy time counted up to now.
  [[nodiscard]] virtual std::vector<LinkUsage> link_usage() const = 0;
  /// Emits `link_summary` once per link that carried traffic (at the end of a run).
  void emit_link_summary() const;

  /// Looks up, ahead of time, the routes of the pairs (src[i], dst[i]) not
  /// seen yet, in destination-major order (the topology's routing tables are
  /// per destination, so this order keeps them in cache): a large collective
  /// calls it once with all its transfers. Optional; results do not change.
  void prepare_paths(std::span<const GpuId> src, std::span<const GpuId> dst);

  /// Time of a transfer alone on the network: alpha + route latency +
  /// transfer_duration(bytes, bottleneck effective bandwidth).
  [[nodiscard]] Duration uncontended_time(GpuId src, GpuId dst, Bytes bytes) const;
  /// Effective capacity of a link as this model uses it (line rate x efficiency).
  [[nodiscard]] Bandwidth link_capacity(LinkId link) const;

  [[nodiscard]] NetworkModelKind kind() const { return params_.model; }
  [[nodiscard]] const NetworkParams& params() const { return params_; }
  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] Simulator& simulator() const { return sim_; }

  /// A transfer was started (end == start).
  Signal<TransferRecord> transfer_started;
  /// A transfer was delivered.
  Signal<TransferRecord> transfer_delivered;
  /// Per-link totals, from emit_link_summary().
  Signal<LinkUsage> link_summary;

 protected:
  NetworkModel(Simulator& sim, const Topology& topology, NetworkParams params);

  /// One route as the models use it: links in a flat store, latency, bottleneck.
  struct PathInfo {
    std::int32_t offset = 0;
    std::int32_t length = 0;
    Duration latency;
    double bottleneck = 0.0;  // bytes/s, min over links of the effective capacity
  };
  /// Index of the route src -> dst in paths_ (interned on first use). Checks
  /// both GPUs (InputError). src == dst gives an empty route.
  std::int32_t path_index(GpuId src, GpuId dst);
  [[nodiscard]] const PathInfo& path(std::int32_t index) const { return paths_[static_cast<std::size_t>(index)]; }
  [[nodiscard]] std::span<const LinkId> path_links(std::int32_t index) const;
  /// Called when a new path is interned (the flow model copies it).
  virtual void on_new_path(std::int32_t /*index*/) {}
  void check_transfer(GpuId src, GpuId dst, Bytes bytes) const;
  /// check_transfer for each transfer of a group, after checking the spans agree.
  void check_group(std::span<const GpuId> src, std::span<const GpuId> dst, std::span<const std::int64_t> bytes) const;
  [[nodiscard]] const std::vector<double>& capacities() const { return capacity_; }

  Simulator& sim_;
  const Topology& topology_;
  NetworkParams params_;

 private:
  std::vector<double> capacity_;  // per link, bytes/s
  std::vector<PathInfo> paths_;
  std::vector<LinkId> path_store_;
  std::vector<std::int32_t> pair_table_;  // src * gpus + dst -> path index, -1 unknown (gpus <= kFlatPairLimit)
  std::unordered_map<std::uint64_t, std::int32_t> pair_map_;  // larger clusters
  std::int32_t gpus_ = 0;
};

/// Builds the model named by params.model.
std::unique_ptr<NetworkModel> make_network(const NetworkParams& params, Simulator& sim, const Topology& topology);
/// Same, from the `network.*` options of a scenario.
std::unique_ptr<NetworkModel> make_network(const Config& config, Simulator& sim, const Topology& topology);

}  // namespace moesim
