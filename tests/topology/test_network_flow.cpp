// The flow-level solver on plain link-capacity arrays: max-min textbook cases,
// release of shares, batching, incremental re-solving, conservation of bytes.
// Every expected value is a closed form written out beside its check.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "sim/random.hpp"
#include "sim/simulator.hpp"
#include "topology/flow_network.hpp"
#include "max_min_reference.hpp"

using namespace moesim;
using namespace moesim::literals;

namespace {

// A run that records when each transfer was delivered.
struct Recorder {
  std::vector<std::int64_t> delivered_ps;
  UniqueFunction<void()> at(Simulator& sim, std::size_t i) {
    if (delivered_ps.size() <= i) delivered_ps.resize(i + 1, -1);
    return [this, &sim, i] { delivered_ps[i] = sim.now().count_ps(); };
  }
};

constexpr double kGBps = 1e9;

}  // namespace

TEST_CASE("k flows on one bottleneck get 1/k of it each", "[network][flow][maxmin]") {
  for (int k : {1, 2, 3, 5, 16}) {
    Simulator sim;
    const double cap = 100.0 * kGBps;
    FlowSolver solver(sim, {cap}, Duration::zero());
    const LinkId link = 0;
    const auto path = solver.add_path(std::span<const LinkId>(&link, 1), Duration::zero());
    std::vector<TransferId> ids;
    for (int i = 0; i < k; ++i) ids.push_back(solver.start(path, Bytes::gib(1), nullptr));
    sim.run_until(Time::at(1_ns));
    for (TransferId id : ids) {
      // max-min: C / k for each of k flows on one link of capacity C.
      REQUIRE(solver.rate(id) == Approx(cap / k).epsilon(1e-12));
    }
    sim.run();
    REQUIRE(solver.stats().transfers_delivered == static_cast<std::uint64_t>(k));
  }
}

TEST_CASE("parking lot: the long flow gets the share of its tightest link", "[network][flow][maxmin]") {
  SECTION("equal capacities: every flow gets C/2") {
    // Links 0..3 of capacity C in a chain; the long flow crosses all of them,
    // one short flow crosses each link. Each link carries 2 flows: C/2 each.
    Simulator sim;
    const double c = 10.0 * kGBps;
    FlowSolver solver(sim, {c, c, c, c}, Duration::zero());
    const std::vector<LinkId> chain = {0, 1, 2, 3};
    const auto long_path = solver.add_path(chain, Duration::zero());
    const TransferId long_id = solver.start(long_path, Bytes::gib(1), nullptr);
    std::vector<TransferId> shorts;
    for (LinkId l = 0; l < 4; ++l) {
      shorts.push_back(solver.start(solver.add_path(std::span<const LinkId>(&chain[static_cast<std::size_t>(l)], 1),
                                                    Duration::zero()),
                                    Bytes::gib(1), nullptr));
    }
    sim.run_until(Time::at(1_ns));
    REQUIRE(solver.rate(long_id) == Approx(c / 2));
    for (TransferId id : shorts) REQUIRE(solver.rate(id) == Approx(c / 2));
  }
  SECTION("unequal capacities: the spare capacity goes to the short flow") {
    // Link 0: 1 GB/s, link 1: 2 GB/s; long flow on both, f0 on link 0, f1 on link 1.
    // Link 0 is the bottleneck: long = f0 = 1/2 = 0.5 GB/s; link 1 leaves
    // 2 - 0.5 = 1.5 GB/s to f1.
    Simulator sim;
    FlowSolver solver(sim, {1.0 * kGBps, 2.0 * kGBps}, Duration::zero());
    const std::vector<LinkId> both = {0, 1};
    const TransferId lng = solver.start(solver.add_path(both, Duration::zero()), Bytes::gib(1), nullptr);
    const TransferId f0 =
        solver.start(solver.add_path(std::span<const LinkId>(&both[0], 1), Duration::zero()), Bytes::gib(1), nullptr);
    const TransferId f1 =
        solver.start(solver.add_path(std::span<const LinkId>(&both[1], 1), Duration::zero()), Bytes::gib(1), nullptr);
    sim.run_until(Time::at(1_ns));
    REQUIRE(solver.rate(lng) == Approx(0.5 * kGBps));
    REQUIRE(solver.rate(f0) == Approx(0.5 * kGBps));
    REQUIRE(solver.rate(f1) == Approx(1.5 * kGBps));
  }
}

TEST_CASE("a flow that ends frees its share to the others at that instant", "[network][flow][maxmin]") {
  // One link of C = 1 GB/s; A = 1e6 bytes, B = 3e6 bytes, started together.
  // Both at C/2 until A drains at t1 = 1e6 / 0.5e9 = 2 ms. B has then moved
  // 1e6 and gets all of C: 2e6 / 1e9 = 2 ms more, so it ends at 4 ms.
  Simulator sim;
  FlowSolver solver(sim, {1.0 * kGBps}, Duration::zero());
  const LinkId link = 0;
  const auto path = solver.add_path(std::span<const LinkId>(&link, 1), Duration::zero());
  Recorder rec;
  const TransferId a = solver.start(path, Bytes(1'000'000), rec.at(sim, 0));
  const TransferId b = solver.start(path, Bytes(3'000'000), rec.at(sim, 1));
  sim.run_until(Time::at(1_ms));
  REQUIRE(solver.rate(a) == Approx(0.5 * kGBps));
  REQUIRE(solver.rate(b) == Approx(0.5 * kGBps));
  sim.run_until(Time::at(2_ms));  // A drains exactly at 2 ms; B's rate is recomputed in the same instant
  REQUIRE(solver.rate(a) == 0.0);
  REQUIRE(solver.rate(b) == Approx(1.0 * kGBps));
  sim.run();
  REQUIRE(rec.delivered_ps[0] == Duration::ms(2).count_ps());
  REQUIRE(rec.delivered_ps[1] == Duration::ms(4).count_ps());
}

TEST_CASE("alpha and path latency frame the bandwidth phase", "[network][flow]") {
  // Delivery = start + alpha + bytes / C + latency = 0 + 3 us + 1e6 / 1e9 s + 700 ns.
  Simulator sim;
  FlowSolver solver(sim, {1.0 * kGBps, 1.0 * kGBps}, 3_us);
  const std::vector<LinkId> route = {0, 1};
  const auto path = solver.add_path(route, 700_ns);
  Recorder rec;
  solver.start(path, Bytes(1'000'000), rec.at(sim, 0));
  // Zero bytes and an empty path (a GPU to itself) have no bandwidth phase.
  solver.start(path, Bytes(0), rec.at(sim, 1));
  const auto self = solver.add_path({}, Duration::zero());
  solver.start(self, Bytes(5'000), rec.at(sim, 2));
  sim.run();
  REQUIRE(rec.delivered_ps[0] == (3_us + 1_ms + 700_ns).count_ps());
  REQUIRE(rec.delivered_ps[1] == (3_us + 700_ns).count_ps());
  REQUIRE(rec.delivered_ps[2] == (3_us).count_ps());
}

TEST_CASE("simultaneous changes are batched into one recomputation", "[network][flow][batching]") {
  // 100 equal flows start at the same instant on one link: one recomputation
  // when they enter, and (all draining at the same instant) one more when
  // they leave.
  Simulator sim;
  FlowSolver solver(sim, {50.0 * kGBps}, 2_us);
  const LinkId link = 0;
  const auto path = solver.add_path(std::span<const LinkId>(&link, 1), Duration::zero());
  for (int i = 0; i < 100; ++i) solver.start(path, Bytes::mib(1), nullptr);
  sim.run();
  REQUIRE(solver.stats().rate_recomputations == 2);
  REQUIRE(solver.stats().transfers_delivered == 100);
  // All at C/100: 100 x 2^20 bytes / 50e9 B/s = 2.097152 ms (+ alpha 2 us).
  REQUIRE(sim.now().count_ps() == (2_us).count_ps() + 2'097'152'000);
}

TEST_CASE("only the component of a change is re-solved", "[network][flow][incremental]") {
  // Two independent links with 10 long flows each. A short flow joining link 0
  // re-solves link 0's component only (10 + 1 flows), not link 1's.
  Simulator sim;
  FlowSolver solver(sim, {1.0 * kGBps, 1.0 * kGBps}, Duration::zero());
  const std::vector<LinkId> links = {0, 1};
  const auto p0 = solver.add_path(std::span<const LinkId>(&links[0], 1), Duration::zero());
  const auto p1 = solver.add_path(std::span<const LinkId>(&links[1], 1), Duration::zero());
  for (int i = 0; i < 10; ++i) {
    solver.start(p0, Bytes::gib(1), nullptr);
    solver.start(p1, Bytes::gib(1), nullptr);
  }
  sim.run_until(Time::at(1_us));
  const std::uint64_t before = solver.stats().flows_resolved;
  REQUIRE(before == 20);  // the first batch: both components, 20 flows
  sim.schedule_at(Time::at(2_us), [&] { solver.start(p0, Bytes(1000), nullptr); });
  sim.run_until(Time::at(3_us));
  REQUIRE(solver.stats().flows_resolved - before == 11);
}

TEST_CASE("bytes delivered equal bytes sent, per transfer and per link", "[network][flow][conservation]") {
  // A random mix of 400 transfers of random sizes on random paths over 12
  // links of random capacities, started at random instants. Conservation:
  // every transfer is delivered; per link, the bytes counted equal the sum of
  // the sizes of the transfers routed over it; the fluid integral of each
  // flow's rate matches its size (beyond the picosecond rounding of drain
  // times, within the 2^-30 = 9.3e-10 drain tolerance, so < 2e-9 of it).
  RandomStream rng = RandomStreams(7).stream("test.flow.conservation");
  Simulator sim;
  std::vector<double> caps;
  for (int l = 0; l < 12; ++l) caps.push_back(rng.uniform(1.0, 100.0) * kGBps);
  FlowSolver solver(sim, caps, 1_us);
  std::vector<std::int64_t> expected_link_bytes(caps.size(), 0);
  std::int64_t total = 0;
  std::uint64_t delivered = 0;
  for (int i = 0; i < 400; ++i) {
    std::vector<LinkId> route;
    for (LinkId l = 0; l < 12; ++l) {
      if (rng.below(4) == 0) route.push_back(l);
    }
    if (route.empty()) route.push_back(static_cast<LinkId>(rng.below(12)));
    const auto bytes = static_cast<std::int64_t>(1 + rng.below(50'000'000));
    total += bytes;
    for (LinkId l : route) expected_link_bytes[static_cast<std::size_t>(l)] += bytes;
    const auto path = solver.add_path(route, Duration::ns(static_cast<std::int64_t>(rng.below(2000))));
    const auto when = Time::at(Duration::ns(static_cast<std::int64_t>(rng.below(5'000'000))));
    sim.schedule_at(when, [&solver, &delivered, path, bytes] {
      solver.start(path, Bytes(bytes), [&delivered] { ++delivered; });
    });
  }
  sim.run();
  const NetworkStats& st = solver.stats();
  REQUIRE(delivered == 400);
  REQUIRE(st.transfers_delivered == 400);
  REQUIRE(st.bytes_started.count() == total);
  REQUIRE(st.bytes_delivered.count() == total);
  REQUIRE(st.max_residual_fraction < 2e-9);
  const std::vector<LinkUsage> usage = solver.link_usage();
  for (std::size_t l = 0; l < caps.size(); ++l) {
    REQUIRE(usage[l].bytes.count() == expected_link_bytes[l]);
    // A link cannot carry more than capacity x busy time.
    REQUIRE(usage[l].bytes.as_double() <= caps[l] * usage[l].busy.seconds() * (1.0 + 1e-9) + 1.0);
  }
  REQUIRE(solver.active_flows() == 0);
}

TEST_CASE("flows that end together in exact arithmetic end in one batch", "[network][flow][batching]") {
  // 64 flows of the same size on a ring of 8 links, each crossing 3 links,
  // capacities chosen so that shares are not exact binary fractions. In exact
  // arithmetic all 64 flows have the same rate (each link carries 24 flows:
  // C/24) and end together: one recomputation in, one out.
  Simulator sim;
  const double c = 48.5e9;
  FlowSolver solver(sim, std::vector<double>(8, c), 1_us);
  std::vector<FlowSolver::PathId> paths;
  for (LinkId s = 0; s < 8; ++s) {
    const std::vector<LinkId> route = {s, static_cast<LinkId>((s + 1) % 8), static_cast<LinkId>((s + 2) % 8)};
    paths.push_back(solver.add_path(route, Duration::zero()));
  }
  for (int i = 0; i < 64; ++i) solver.start(paths[static_cast<std::size_t>(i % 8)], Bytes(1'048'583), nullptr);
  sim.run();
  REQUIRE(solver.stats().rate_recomputations == 2);
  // 24 flows x 1048583 B / 48.5e9 B/s = 518.8863... us, + 1 us alpha; rounding up to the ps.
  const double expected_s = 1e-6 + 24.0 * 1'048'583.0 / c;
  REQUIRE(sim.now().seconds() == Approx(expected_s).epsilon(1e-9));
}

TEST_CASE("bad solver input is rejected", "[network][flow][input]") {
  Simulator sim;
  REQUIRE_THROWS_AS(FlowSolver(sim, {1e9, 0.0}, Duration::zero()), std::invalid_argument);
  REQUIRE_THROWS_AS(FlowSolver(sim, {1e9}, Duration::ps(-1)), std::invalid_argument);
  FlowSolver solver(sim, {1e9}, Duration::zero());
  const std::vector<LinkId> bad = {3};
  REQUIRE_THROWS_AS(solver.add_path(bad, Duration::zero()), std::invalid_argument);
  const LinkId ok = 0;
  const auto path = solver.add_path(std::span<const LinkId>(&ok, 1), Duration::zero());
  REQUIRE_THROWS_AS(solver.start(path, Bytes(-5), nullptr), std::invalid_argument);
  REQUIRE_THROWS_AS(solver.start(path + 1, Bytes(5), nullptr), std::invalid_argument);
}

using moesim::test::reference_max_min;

TEST_CASE("incremental rates equal a from-scratch max-min solution at every instant", "[network][flow][maxmin]") {
  // Random flows (random sizes, paths over 10 links of random capacities,
  // random start times) so that flows start and drain one after the other and
  // the solver re-solves partially (drains only) and by component (starts).
  // At 60 sampled instants, every active flow's rate must equal the naive
  // reference computed from scratch on the set of active flows.
  for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
    RandomStream rng = RandomStreams(seed).stream("test.flow.reference");
    Simulator sim;
    std::vector<double> caps;
    for (int l = 0; l < 10; ++l) caps.push_back(rng.uniform(5.0, 60.0) * kGBps);
    FlowSolver solver(sim, caps, Duration::zero());
    std::vector<std::vector<LinkId>> route_of;
    std::vector<TransferId> ids;
    for (int i = 0; i < 60; ++i) {
      std::vector<LinkId> route;
      for (LinkId l = 0; l < 10; ++l) {
        if (rng.below(3) == 0) route.push_back(l);
      }
      if (route.empty()) route.push_back(static_cast<LinkId>(rng.below(10)));
      const auto path = solver.add_path(route, Duration::zero());
      const auto bytes = static_cast<std::int64_t>(1'000'000 + rng.below(30'000'000));
      const auto when = Time::at(Duration::ns(static_cast<std::int64_t>(rng.below(1'000'000))));
      route_of.push_back(route);
      ids.push_back(0);
      const std::size_t idx = ids.size() - 1;
      sim.schedule_at(when, [&solver, &ids, idx, path, bytes] { ids[idx] = solver.start(path, Bytes(bytes), nullptr); });
    }
    std::uint64_t checked = 0;
    for (int sample = 1; sample <= 60; ++sample) {
      sim.run_until(Time::at(Duration::ns(30'000LL * sample)));
      std::vector<std::vector<LinkId>> active_paths;
      std::vector<double> got;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const double r = ids[i] != 0 ? solver.rate(ids[i]) : 0.0;
        if (r > 0.0) {
          active_paths.push_back(route_of[i]);
          got.push_back(r);
        }
      }
      REQUIRE(active_paths.size() == solver.active_flows());
      const std::vector<double> want = reference_max_min(caps, active_paths);
      for (std::size_t f = 0; f < got.size(); ++f) {
        REQUIRE(got[f] == Approx(want[f]).epsilon(1e-9));
        ++checked;
      }
    }
    REQUIRE(checked > 200);  // the samples did see concurrent flows
    sim.run();
    REQUIRE(solver.stats().transfers_delivered == 60);
    // Drains were handled by partial re-solves: fewer flows re-solved than a
    // full re-solve of every active flow at every change would need.
    INFO("recomputations " << solver.stats().rate_recomputations << ", flows re-solved "
                           << solver.stats().flows_resolved);
  }
}

TEST_CASE("drains in an all-to-all with many equal shares re-solve locally and exactly",
          "[network][flow][maxmin]") {
  // 8 sources x 8 destinations: flow (i, j) crosses uplink i and downlink j
  // (equal capacities, so every link starts at the same fair share: ties
  // everywhere) and, for half of the pairs, one of two slower "spine" links.
  // Sizes are random, so the flows drain one by one. At every drain the rates
  // (sampled every 5 us) must equal the from-scratch reference; and the drains must be handled by
  // local re-solves, far fewer flows than re-solving all active flows each time.
  RandomStream rng = RandomStreams(11).stream("test.flow.alltoall");
  Simulator sim;
  std::vector<double> caps(16, 50.0 * kGBps);
  caps.push_back(150.0 * kGBps);  // spine 16
  caps.push_back(120.0 * kGBps);  // spine 17
  FlowSolver solver(sim, caps, Duration::zero());
  std::vector<std::vector<LinkId>> route_of;
  std::vector<TransferId> ids;
  for (LinkId i = 0; i < 8; ++i) {
    for (LinkId j = 0; j < 8; ++j) {
      std::vector<LinkId> route = {i, static_cast<LinkId>(8 + j)};
      if ((i + j) % 2 == 1) route.push_back(static_cast<LinkId>(16 + (i % 2)));
      route_of.push_back(route);
      ids.push_back(solver.start(solver.add_path(route, Duration::zero()),
                                 Bytes(static_cast<std::int64_t>(rng.uniform(0.5, 1.5) * 1048576.0)), nullptr));
    }
  }
  std::uint64_t samples = 0;
  while (solver.active_flows() > 0 || samples == 0) {
    // Every 5 us (the drains are about 20 us apart), compare.
    sim.run_until(sim.now() + 5_us);
    std::vector<std::vector<LinkId>> active_paths;
    std::vector<double> got;
    for (std::size_t f = 0; f < ids.size(); ++f) {
      const double r = solver.rate(ids[f]);
      if (r > 0.0) {
        active_paths.push_back(route_of[f]);
        got.push_back(r);
      }
    }
    const std::vector<double> want = reference_max_min(caps, active_paths);
    for (std::size_t f = 0; f < got.size(); ++f) REQUIRE(got[f] == Approx(want[f]).epsilon(1e-9));
    ++samples;
    if (samples > 10'000) break;
  }
  sim.run();
  const NetworkStats& st = solver.stats();
  REQUIRE(st.transfers_delivered == 64);
  // Re-solving every active flow at every drain would re-solve about
  // 64 + 63 + ... + 1 = 2080 flows.
  INFO("recomputations " << st.rate_recomputations << ", flows re-solved " << st.flows_resolved);
  REQUIRE(st.flows_resolved < 2080 / 2);
}

TEST_CASE("a drain tolerance lets nearly simultaneous drains share one instant", "[network][flow][batching]") {
  // Two independent 1 GB/s links; flows of 1,000,000 and 1,004,000 bytes end at
  // 1.000 ms and 1.004 ms (0.4 % apart). Exact (default 1e-9): two drain
  // instants. With a 1 % tolerance the second is drained with the first, at
  // 1.000 ms (0.4 % early), still delivering all its bytes.
  for (double tol : {kDefaultDrainTolerance, 1e-2}) {
    Simulator sim;
    FlowSolver solver(sim, {1.0 * kGBps, 1.0 * kGBps}, Duration::zero(), tol);
    const std::vector<LinkId> links = {0, 1};
    Recorder rec;
    solver.start(solver.add_path(std::span<const LinkId>(&links[0], 1), Duration::zero()), Bytes(1'000'000),
                 rec.at(sim, 0));
    solver.start(solver.add_path(std::span<const LinkId>(&links[1], 1), Duration::zero()), Bytes(1'004'000),
                 rec.at(sim, 1));
    sim.run();
    REQUIRE(rec.delivered_ps[0] == (1_ms).count_ps());
    REQUIRE(rec.delivered_ps[1] == (tol < 1e-3 ? 1'004'000'000 : (1_ms).count_ps()));
    REQUIRE(solver.stats().bytes_delivered.count() == 2'004'000);
  }
  Simulator sim;
  REQUIRE_THROWS_AS(FlowSolver(sim, {1e9}, Duration::zero(), 0.5), std::invalid_argument);
}
