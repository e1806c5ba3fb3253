// Flow-level direct all-to-all, 1 MiB per pair, on rail-optimized DGX H100
// clusters (8 GPUs per node; 8, 32, 128 nodes = 64, 256, 1,024 GPUs). Prints
// wall time, transfers, rate recomputations, peak memory (VmHWM) and the
// simulated time against the closed form.
//
// Closed form: every GPU sends M to each of the n-1 others. The n-8 peers on
// other nodes go through its NIC (line rate x NIC efficiency, the bottleneck:
// the PCIe link is faster and the spine is non-blocking), the 7 on its node
// over NVLink, so the NIC-bound flows finish last, all at the same instant:
//   T = alpha + (n - 8) M / B_nic + latency of the longest (cross-rail) route.
// This holds with balanced routing (topology.routing = balanced, the default):
// no spine link carries more flows than a NIC link. With static per-pair ECMP
// hashing, pairs collide on spine links, which then carry more flows than a
// NIC and finish later: the simulated time exceeds the closed form (by the
// collision excess, physically meaningful, not a solver error).
// calibration.md quotes the same all-to-all as (n-1) M / 50 GB/s = 21.45 ms
// for n = 1,024 (line rate, no efficiency, every peer through the NIC).
//
// Each size runs twice: network.alltoall_sharing = per_transfer (every
// transfer its own max-min flow: about a million flows at 1,024 GPUs, the
// solver's scale test) and coflow (the default: the collective is one entity;
// the same closed form, since every NIC link carries the same bytes). Peak RSS
// is the process's high-water mark so far, so it only grows down the table.
//
// Usage: bench_network_alltoall [GPUS ...]   (default: 64 256 1024)
// Build in Release (cmake -DCMAKE_BUILD_TYPE=Release) for meaningful timings.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "sim/simulator.hpp"
#include "topology/collectives.hpp"
#include "topology/network.hpp"
#include "topology/presets.hpp"

using namespace moesim;

namespace {

// Peak resident set size of this process so far, in MiB (Linux /proc).
// CPU time (user + system) of this process so far, in seconds: on a shared
// machine the honest measure of the work, next to the wall time.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB
  }
  return -1.0;
}

void run(int gpus, RoutingPolicy routing, AllToAllSharing sharing) {
  const int per_node = 8;
  const int nodes = gpus / per_node;
  Topology topo = make_topology_preset("dgx-h100", nodes);
  topo.set_routing_policy(routing);
  NetworkParams params = default_network_params(topo, NetworkModelKind::kFlow);
  params.alltoall_sharing = sharing;
  const Bytes per_pair = Bytes::mib(1);

  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  Simulator sim;
  auto net = make_network(params, sim, topo);
  CollectiveEngine engine(sim, *net);
  CollectiveRequest req;
  req.op = CollectiveOp::kAllToAll;
  req.algorithm = CollectiveAlgorithm::kDirect;
  for (GpuId g = 0; g < gpus; ++g) req.group.push_back(g);
  req.bytes = per_pair * gpus;  // nccl-tests size: each rank's whole send buffer
  Duration time;
  engine.start(std::move(req), [&](const CollectiveResult& r) { time = r.time; });
  sim.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;

  // Closed form (see the top of this file), with the model's own capacities.
  double nic = 0.0;
  Duration longest;
  for (std::size_t l = 0; l < topo.link_count(); ++l) {
    if (topo.link(static_cast<LinkId>(l)).link_class == LinkClass::kNic) {
      nic = net->link_capacity(static_cast<LinkId>(l)).bytes_per_second();
    }
  }
  for (GpuId d = 1; d < gpus; ++d) longest = std::max(longest, topo.route(0, d).latency);
  const double closed = params.alpha.seconds() + (gpus - per_node) * per_pair.as_double() / nic + longest.seconds();
  // Lower bound whatever the routing: the most loaded link must carry all its
  // bytes, T >= alpha + max over links (bytes routed over it / capacity) (+ latency).
  std::vector<double> load(topo.link_count(), 0.0);
  std::vector<LinkId> route;
  for (GpuId s = 0; s < gpus; ++s) {
    for (GpuId d = 0; d < gpus; ++d) {
      if (s == d) continue;
      route.clear();
      topo.append_route(s, d, route);
      for (LinkId l : route) load[static_cast<std::size_t>(l)] += per_pair.as_double();
    }
  }
  double bound = 0.0;
  for (std::size_t l = 0; l < load.size(); ++l) {
    bound = std::max(bound, load[l] / net->link_capacity(static_cast<LinkId>(l)).bytes_per_second());
  }
  bound += params.alpha.seconds();
  const NetworkStats st = net->stats();
  std::printf("%6d GPUs %-8s %-12s %9llu transfers  %6.3f s wall %6.3f s CPU  %6.1f ns/transfer (CPU)  %4llu recomputations  "
              "%10llu flows re-solved  %9llu events  peak RSS %7.1f MiB\n",
              gpus, std::string(to_string(routing)).c_str(), std::string(to_string(sharing)).c_str(), static_cast<unsigned long long>(st.transfers_delivered), wall,
              cpu, cpu * 1e9 / static_cast<double>(st.transfers_delivered),
              static_cast<unsigned long long>(st.rate_recomputations),
              static_cast<unsigned long long>(st.flows_resolved),
              static_cast<unsigned long long>(sim.events_executed()), peak_rss_mib());
  std::printf("        simulated %.6f ms, closed form %.6f ms (error %+.4f %%); busiest-link bound %.6f ms "
              "(+ latency); (n-1) x 1 MiB / 50 GB/s = %.3f ms\n",
              time.milliseconds(), closed * 1e3, (time.seconds() - closed) / closed * 100.0, bound * 1e3,
              (gpus - 1) * per_pair.as_double() / 50e9 * 1e3);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {64, 256, 1024};
  for (int g : sizes) {
    if (g < 8 || g % 8 != 0) {
      std::fprintf(stderr, "bench_network_alltoall: GPU counts must be multiples of 8, got %d\n", g);
      return 2;
    }
  }
  std::printf("flow-level direct all-to-all, 1 MiB per pair, dgx-h100 rail-optimized fat-tree\n"
              "routing 'balanced' (the scenario default, topology.routing) and 'ecmp' (static per-pair hash);\n"
              "sharing 'per_transfer' (every transfer its own max-min flow: the solver at scale) and 'coflow'\n"
              "(the network.alltoall_sharing default: the collective as one entity)\n");
  for (AllToAllSharing sharing : {AllToAllSharing::kPerTransfer, AllToAllSharing::kCoflow}) {
    for (RoutingPolicy routing : {RoutingPolicy::kBalanced, RoutingPolicy::kEcmpHash}) {
      for (int g : sizes) run(g, routing, sharing);
    }
  }
  return 0;
}
