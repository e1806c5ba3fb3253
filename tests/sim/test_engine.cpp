// Event engine: ordering, cancellation, run_until, determinism.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "sim/random.hpp"
#include "sim/simulator.hpp"

using namespace moesim;
using namespace moesim::literals;

TEST_CASE("equal-time events run in the order they were scheduled", "[engine]") {
  Simulator sim;
  std::vector<int> order;
  // Scheduled out of time order; the three at t=5us must keep insertion order.
  sim.schedule_at(Time::at(5_us), [&] { order.push_back(1); });
  sim.schedule_at(Time::at(1_us), [&] { order.push_back(0); });
  sim.schedule_at(Time::at(5_us), [&] { order.push_back(2); });
  sim.schedule_at(Time::at(5_us), [&] { order.push_back(3); });
  sim.schedule_at(Time::at(9_us), [&] { order.push_back(4); });
  REQUIRE(sim.run() == 5);
  REQUIRE(order == std::vector<int>{0, 1, 2, 3, 4});
  REQUIRE(sim.now() == Time::at(9_us));
}

TEST_CASE("an event scheduled at now() from a handler runs after the events already queued for now()",
          "[engine]") {
  Simulator sim;
  std::vector<std::string> order;
  sim.schedule_at(Time::at(1_ns), [&] {
    order.push_back("a");
    sim.schedule_in(Duration::zero(), [&] { order.push_back("c"); });
  });
  sim.schedule_at(Time::at(1_ns), [&] { order.push_back("b"); });
  sim.run();
  REQUIRE(order == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("cancellation", "[engine]") {
  Simulator sim;
  int ran = 0;
  EventHandle h1 = sim.schedule_at(Time::at(1_us), [&] { ran += 1; });
  EventHandle h2 = sim.schedule_at(Time::at(2_us), [&] { ran += 10; });

  SECTION("a pending event is cancelled once") {
    REQUIRE(sim.is_pending(h1));
    REQUIRE(sim.cancel(h1));
    REQUIRE_FALSE(sim.is_pending(h1));
    REQUIRE_FALSE(sim.cancel(h1));  // second cancel is a no-op
    REQUIRE(sim.pending() == 1);
    sim.run();
    REQUIRE(ran == 10);
  }
  SECTION("cancelling an already-run event does nothing and cannot hit a newer event") {
    sim.run_until(Time::at(1_us));
    REQUIRE(ran == 1);
    // h1's storage slot is now free and is reused by the next event.
    EventHandle h3 = sim.schedule_at(Time::at(3_us), [&] { ran += 100; });
    REQUIRE_FALSE(sim.cancel(h1));
    REQUIRE(sim.is_pending(h3));
    sim.run();
    REQUIRE(ran == 111);
    REQUIRE_FALSE(sim.cancel(h2));
  }
  SECTION("an empty handle cancels nothing") {
    REQUIRE_FALSE(sim.cancel(EventHandle{}));
    sim.run();
    REQUIRE(ran == 11);
  }
}

TEST_CASE("run_until includes events exactly at the boundary and advances now()", "[engine]") {
  Simulator sim;
  std::vector<int> seen;
  sim.schedule_at(Time::at(10_us), [&] { seen.push_back(10); });
  sim.schedule_at(Time::at(10_us) + 1_ps, [&] { seen.push_back(11); });
  REQUIRE(sim.run_until(Time::at(10_us)) == 1);
  REQUIRE(seen == std::vector<int>{10});
  REQUIRE(sim.now() == Time::at(10_us));
  // Nothing left before 20 us except the event at 10 us + 1 ps.
  REQUIRE(sim.run_until(Time::at(20_us)) == 1);
  REQUIRE(sim.now() == Time::at(20_us));
  REQUIRE_THROWS_AS(sim.run_until(Time::at(5_us)), SimulationError);
}

TEST_CASE("scheduling in the past is an error", "[engine]") {
  Simulator sim;
  sim.schedule_at(Time::at(5_us), [] {});
  sim.run();
  REQUIRE_THROWS_AS(sim.schedule_at(Time::at(4_us), [] {}), SimulationError);
  REQUIRE_THROWS_AS(sim.schedule_in(Duration::ps(-1), [] {}), SimulationError);
  REQUIRE_NOTHROW(sim.schedule_at(Time::at(5_us), [] {}));
}

TEST_CASE("stop() ends the run after the current event", "[engine]") {
  Simulator sim;
  int ran = 0;
  for (int i = 1; i <= 5; ++i) {
    sim.schedule_at(Time::at(Duration::us(i)), [&, i] {
      ++ran;
      if (i == 2) sim.stop();
    });
  }
  REQUIRE(sim.run() == 2);
  REQUIRE(ran == 2);
  REQUIRE(sim.now() == Time::at(2_us));
  REQUIRE(sim.run() == 3);  // a later run resumes
}

TEST_CASE("handlers are move-only and small captures need no heap", "[engine]") {
  static_assert(EventHandler::fits_inline<decltype([p = static_cast<void*>(nullptr), x = 0.0] { (void)p; (void)x; })>());
  Simulator sim;
  auto owned = std::make_unique<int>(42);
  int seen = 0;
  sim.schedule_in(1_ns, [o = std::move(owned), &seen] { seen = *o; });
  sim.run();
  REQUIRE(seen == 42);
}

TEST_CASE("observers see every executed event", "[engine][signal]") {
  Simulator sim;
  std::vector<std::int64_t> times;
  sim.event_executed.connect([&](const Time& t) { times.push_back(t.count_ps()); });
  sim.schedule_at(Time::at(3_ns), [] {});
  sim.schedule_at(Time::at(1_ns), [] {});
  sim.run();
  REQUIRE(times == std::vector<std::int64_t>{1000, 3000});
}

namespace {
// A randomized schedule: each handled event schedules up to two more at
// random delays, and sometimes cancels a random pending one. Returns the
// trace of (time, id) of executed events.
std::vector<std::pair<std::int64_t, int>> random_schedule(std::uint64_t seed) {
  Simulator sim;
  RandomStream rng = RandomStreams(seed).stream("test/schedule");
  std::vector<std::pair<std::int64_t, int>> trace;
  std::vector<EventHandle> handles;
  int next_id = 0;
  std::function<void(int)> handler = [&](int id) {
    trace.emplace_back(sim.now().count_ps(), id);
    if (next_id >= 5000) return;
    const auto children = static_cast<int>(rng.below(3));
    for (int c = 0; c < children; ++c) {
      const int child = next_id++;
      // Coarse delays so that equal times (ties) are frequent.
      const auto delay = Duration::ns(static_cast<std::int64_t>(rng.below(4)));
      handles.push_back(sim.schedule_in(delay, [&handler, child] { handler(child); }));
    }
    if (!handles.empty() && rng.below(4) == 0) sim.cancel(handles[rng.below(handles.size())]);
  };
  for (int i = 0; i < 8; ++i) {
    const int id = next_id++;
    handles.push_back(sim.schedule_at(Time::zero(), [&handler, id] { handler(id); }));
  }
  sim.run();
  return trace;
}
}  // namespace

TEST_CASE("a randomized schedule run twice gives the same trace", "[engine][determinism]") {
  const auto a = random_schedule(7);
  const auto b = random_schedule(7);
  REQUIRE(a.size() > 100);
  REQUIRE(a == b);
  // Times never go backwards.
  for (std::size_t i = 1; i < a.size(); ++i) REQUIRE(a[i].first >= a[i - 1].first);
  // A different seed gives a different schedule.
  REQUIRE(random_schedule(8) != a);
}
