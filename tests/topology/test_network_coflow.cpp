// Coflows in the flow-level solver (FlowSolver::start_coflow): a group of
// transfers moving as one entity whose parts progress in proportion to their
// sizes. Closed forms written out beside each check; a randomized comparison
// against a from-scratch weighted max-min reference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "topology/flow_network.hpp"
#include "max_min_reference.hpp"

using namespace moesim;
using namespace moesim::literals;
using moesim::test::reference_weighted_max_min;

namespace {

constexpr double kGBps = 1e9;

std::span<const LinkId> one(const LinkId& l) { return {&l, 1}; }

}  // namespace

TEST_CASE("a coflow alone takes its most loaded link's bytes over that link's capacity", "[network][flow][coflow]") {
  // Links: 0 and 1 at 10 GB/s, 2 at 40 GB/s. Parts (path: bytes):
  //   {0,2}: 30 MB, {1,2}: 10 MB, {0}: 10 MB, {2}: 40 MB, {} (same GPU): 5 MB, {1}: 0 B.
  // Bytes per link: B_0 = 40 MB, B_1 = 10 MB, B_2 = 80 MB.
  // B_l / C_l: 4 ms, 1 ms, 2 ms -> the coflow drains at alpha + 4 ms and is
  // delivered after the largest path latency (the {0,2} path: 3 us).
  Simulator sim;
  const Duration alpha = 2_us;
  FlowSolver solver(sim, {10 * kGBps, 10 * kGBps, 40 * kGBps}, alpha);
  const std::vector<LinkId> l02 = {0, 2};
  const std::vector<LinkId> l12 = {1, 2};
  const LinkId l0 = 0;
  const LinkId l1 = 1;
  const LinkId l2 = 2;
  const std::vector<FlowSolver::PathId> paths = {solver.add_path(l02, 3_us), solver.add_path(l12, 1_us),
                                                 solver.add_path(one(l0), 1_us), solver.add_path(one(l2), 1_us),
                                                 solver.add_path({}, Duration::zero()), solver.add_path(one(l1), 1_us)};
  const std::vector<std::int64_t> bytes = {30'000'000, 10'000'000, 10'000'000, 40'000'000, 5'000'000, 0};
  const std::vector<GpuId> src = {0, 1, 0, 2, 3, 1};
  const std::vector<GpuId> dst = {2, 2, 3, 0, 3, 0};
  std::int64_t delivered_at = -1;
  std::vector<TransferRecord> started;
  std::vector<TransferRecord> delivered;
  std::vector<std::size_t> delivered_hops;  // a record's route is valid only during its emission
  Signal<TransferRecord> on_start;
  Signal<TransferRecord> on_deliver;
  on_start.connect([&](const TransferRecord& r) { started.push_back(r); });
  on_deliver.connect([&](const TransferRecord& r) {
    delivered.push_back(r);
    delivered_hops.push_back(r.links.size());
  });
  solver.set_signals(&on_start, &on_deliver);
  solver.start_coflow(paths, bytes, src, dst, [&] { delivered_at = sim.now().count_ps(); });
  sim.run();
  const Duration expected = alpha + 4_ms + 3_us;
  REQUIRE(delivered_at == expected.count_ps());
  // Counters: every part counted as a transfer, each link its own bytes.
  REQUIRE(solver.stats().transfers_started == 6);
  REQUIRE(solver.stats().transfers_delivered == 6);
  REQUIRE(solver.stats().bytes_delivered == Bytes(95'000'000));
  const std::vector<LinkUsage> usage = solver.link_usage();
  REQUIRE(usage[0].bytes == Bytes(40'000'000));
  REQUIRE(usage[1].bytes == Bytes(10'000'000));
  REQUIRE(usage[2].bytes == Bytes(80'000'000));
  REQUIRE(usage[0].transfers == 2);
  REQUIRE(usage[2].transfers == 3);
  // The signals report each part with its own route.
  REQUIRE(started.size() == 6);
  REQUIRE(delivered.size() == 6);
  REQUIRE(delivered[0].src == 0);
  REQUIRE(delivered[0].dst == 2);
  REQUIRE(delivered_hops == std::vector<std::size_t>{2, 2, 1, 1, 0, 1});
  REQUIRE(delivered[3].bytes == Bytes(40'000'000));
  REQUIRE(delivered[3].end.count_ps() == expected.count_ps());
}

TEST_CASE("a coflow claims on a link what its transfers there claim together", "[network][flow][coflow]") {
  // One link of capacity C. A coflow of three parts of b bytes on it, and one
  // plain transfer of S > b bytes. Coflow weight on the link = B / mean = 3b / b
  // = 3: 3x + x = C, so x = C/4: the coflow gets 3C/4, the transfer C/4, the
  // same as 3 + 1 separate transfers. The coflow drains at 4b / C; then the
  // transfer has moved b and takes the whole link: S finishes at (S + 3b) / C.
  // Per-transfer sharing of the same four transfers gives the same times.
  const double c = 20 * kGBps;
  const std::int64_t b = 8'000'000;
  const std::int64_t s = 30'000'000;
  const double coflow_s = 4.0 * static_cast<double>(b) / c;
  const double flow_s = static_cast<double>(s + 3 * b) / c;
  Simulator sim;
  FlowSolver solver(sim, {c}, Duration::zero());
  const LinkId l0 = 0;
  const auto path = solver.add_path(one(l0), Duration::zero());
  const std::vector<FlowSolver::PathId> paths(3, path);
  const std::vector<std::int64_t> bytes(3, b);
  const std::vector<GpuId> gpus = {0, 1, 2};
  double coflow_done = -1.0;
  double flow_done = -1.0;
  const TransferId coflow = solver.start_coflow(paths, bytes, gpus, gpus, [&] { coflow_done = sim.now().seconds(); });
  const TransferId flow = solver.start(path, Bytes(s), [&] { flow_done = sim.now().seconds(); });
  sim.run_until(Time::at(1_ns));
  REQUIRE(solver.rate(coflow) == Approx(c / 4).epsilon(1e-12));
  REQUIRE(solver.rate(flow) == Approx(c / 4).epsilon(1e-12));
  sim.run();
  REQUIRE(coflow_done == Approx(coflow_s).epsilon(1e-9));
  REQUIRE(flow_done == Approx(flow_s).epsilon(1e-9));

  // The same four transfers each on its own.
  Simulator sim2;
  FlowSolver solver2(sim2, {c}, Duration::zero());
  const auto path2 = solver2.add_path(one(l0), Duration::zero());
  double last_part = -1.0;
  double flow2_done = -1.0;
  for (int i = 0; i < 3; ++i) solver2.start(path2, Bytes(b), [&] { last_part = sim2.now().seconds(); });
  solver2.start(path2, Bytes(s), [&] { flow2_done = sim2.now().seconds(); });
  sim2.run();
  REQUIRE(last_part == Approx(coflow_done).epsilon(1e-9));
  REQUIRE(flow2_done == Approx(flow_done).epsilon(1e-9));
}

TEST_CASE("coflow and transfer rates equal a from-scratch weighted max-min at every instant",
          "[network][flow][coflow][maxmin]") {
  // Random coflows (2-6 parts on random routes over 8 links) and plain
  // transfers, started at random times, so that entities start and drain one
  // after the other and every re-solve path (component, level, local) runs
  // with weights. At 50 sampled instants every active entity's rate must
  // equal the weighted progressive filling computed from scratch.
  for (std::uint64_t seed : {1ULL, 2ULL, 3ULL, 4ULL}) {
    RandomStream rng = RandomStreams(seed).stream("test.flow.coflow");
    Simulator sim;
    std::vector<double> caps;
    for (int l = 0; l < 8; ++l) caps.push_back(rng.uniform(5.0, 60.0) * kGBps);
    FlowSolver solver(sim, caps, Duration::zero());
    std::vector<std::vector<LinkId>> links_of;
    std::vector<std::vector<double>> weights_of;
    std::vector<TransferId> ids;
    const auto random_route = [&] {
      std::vector<LinkId> route;
      for (LinkId l = 0; l < 8; ++l) {
        if (rng.below(3) == 0) route.push_back(l);
      }
      if (route.empty()) route.push_back(static_cast<LinkId>(rng.below(8)));
      return route;
    };
    for (int i = 0; i < 50; ++i) {
      const auto when = Time::at(Duration::ns(static_cast<std::int64_t>(rng.below(1'000'000))));
      ids.push_back(0);
      const std::size_t idx = ids.size() - 1;
      if (rng.below(2) == 0) {
        const std::vector<LinkId> route = random_route();
        links_of.push_back(route);
        weights_of.emplace_back(route.size(), 1.0);
        const auto path = solver.add_path(route, Duration::zero());
        const auto bytes = static_cast<std::int64_t>(1'000'000 + rng.below(30'000'000));
        sim.schedule_at(when, [&solver, &ids, idx, path, bytes] { ids[idx] = solver.start(path, Bytes(bytes), nullptr); });
      } else {
        const int parts = 2 + static_cast<int>(rng.below(5));
        std::vector<FlowSolver::PathId> paths;
        std::vector<std::int64_t> bytes;
        std::vector<double> per_link(8, 0.0);
        double total = 0.0;
        for (int p = 0; p < parts; ++p) {
          const std::vector<LinkId> route = random_route();
          paths.push_back(solver.add_path(route, Duration::zero()));
          bytes.push_back(static_cast<std::int64_t>(1'000'000 + rng.below(20'000'000)));
          for (LinkId l : route) per_link[static_cast<std::size_t>(l)] += static_cast<double>(bytes.back());
          total += static_cast<double>(bytes.back());
        }
        // Weight on link l = B_l / (mean part bytes) = B_l x parts / total.
        std::vector<LinkId> route;
        std::vector<double> weights;
        for (LinkId l = 0; l < 8; ++l) {
          if (per_link[static_cast<std::size_t>(l)] == 0.0) continue;
          route.push_back(l);
          weights.push_back(per_link[static_cast<std::size_t>(l)] * parts / total);
        }
        links_of.push_back(route);
        weights_of.push_back(weights);
        sim.schedule_at(when, [&solver, &ids, idx, paths, bytes] {
          const std::vector<GpuId> none(paths.size(), -1);
          ids[idx] = solver.start_coflow(paths, bytes, none, none, nullptr);
        });
      }
    }
    std::uint64_t checked = 0;
    for (int sample = 1; sample <= 50; ++sample) {
      sim.run_until(Time::at(Duration::ns(40'000LL * sample)));
      std::vector<std::vector<LinkId>> active_links;
      std::vector<std::vector<double>> active_weights;
      std::vector<double> got;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const double r = ids[i] != 0 ? solver.rate(ids[i]) : 0.0;
        if (r > 0.0) {
          active_links.push_back(links_of[i]);
          active_weights.push_back(weights_of[i]);
          got.push_back(r);
        }
      }
      REQUIRE(active_links.size() == solver.active_flows());
      const std::vector<double> want = reference_weighted_max_min(caps, active_links, active_weights);
      for (std::size_t f = 0; f < got.size(); ++f) {
        REQUIRE(got[f] == Approx(want[f]).epsilon(1e-9));
        ++checked;
      }
    }
    REQUIRE(checked > 150);  // the samples did see concurrent entities
    sim.run();
    REQUIRE(solver.active_flows() == 0);
    REQUIRE(solver.stats().max_residual_fraction < 1e-9);
  }
}

TEST_CASE("bad coflow input is rejected", "[network][flow][coflow][input]") {
  Simulator sim;
  FlowSolver solver(sim, {10 * kGBps}, Duration::zero());
  const LinkId l0 = 0;
  const auto path = solver.add_path(one(l0), Duration::zero());
  const std::vector<FlowSolver::PathId> paths = {path, path};
  const std::vector<FlowSolver::PathId> bad_path = {path, 7};
  const std::vector<std::int64_t> bytes = {1, 2};
  const std::vector<std::int64_t> negative = {1, -2};
  const std::vector<std::int64_t> short_bytes = {1};
  const std::vector<GpuId> gpus = {0, 1};
  REQUIRE_THROWS_AS(solver.start_coflow(paths, short_bytes, gpus, gpus, nullptr), std::invalid_argument);
  REQUIRE_THROWS_AS(solver.start_coflow(bad_path, bytes, gpus, gpus, nullptr), std::invalid_argument);
  REQUIRE_THROWS_AS(solver.start_coflow(paths, negative, gpus, gpus, nullptr), std::invalid_argument);
  REQUIRE(solver.stats().transfers_started == 0);
}
