// Event engine: ordering, cancellation, run_until, determinism.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sim/binary_heap_queue.hpp"
#include "sim/ladder_queue.hpp"
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

// ---------------------------------------------------------------------------
// The event queue (a ladder queue, sim/ladder_queue.hpp) against reference
// orderings. None of these tests measures time; they check exact order.

namespace {

constexpr std::int64_t kMaxPs = std::numeric_limits<std::int64_t>::max();

// An event time at or after `now`, from a mix that exercises the queue's
// corner cases: zero delays, ties with earlier times, tiny and huge delays,
// and times up to the largest representable one.
std::int64_t draw_time(RandomStream& rng, std::int64_t now, const std::vector<std::int64_t>& recent) {
  const std::int64_t room = kMaxPs - now;
  const auto capped = [&](std::int64_t d) { return now + std::min(d, room); };
  switch (rng.below(12)) {
    case 0:
    case 1:
      return now;  // delay 0
    case 2:
    case 3:
      return capped(static_cast<std::int64_t>(rng.below(4)));
    case 4:
    case 5: {
      // The time of an earlier event (often still pending, so a tie with it).
      const std::int64_t t = recent.empty() ? now : recent[rng.below(recent.size())];
      return t >= now ? t : now;
    }
    case 6:
    case 7:
      return capped(static_cast<std::int64_t>(rng.exponential(1e6)));
    case 8:
      return capped(static_cast<std::int64_t>(rng.below(1'000'000'000)));
    case 9:
      return capped(static_cast<std::int64_t>(rng.below(1'000'000'000'000'000)));
    case 10: {
      // The largest time, or one or two ps before it.
      const auto back = static_cast<std::uint64_t>(std::min<std::int64_t>(room, 2));
      return kMaxPs - static_cast<std::int64_t>(rng.below(back + 1));
    }
    default:
      return capped(static_cast<std::int64_t>(rng.below(1000)) * 1000);
  }
}

// The engine under test, behind the interface the workload below drives.
class SimEngine {
 public:
  explicit SimEngine(std::function<void(int)> on_event) : on_event_(std::move(on_event)) {}
  void schedule(std::int64_t t, int id, bool relative) {
    if (handles_.size() <= static_cast<std::size_t>(id)) handles_.resize(static_cast<std::size_t>(id) + 1);
    auto handler = [this, id] { on_event_(id); };
    handles_[static_cast<std::size_t>(id)] = relative ? sim_.schedule_in(Duration::ps(t - now()), handler)
                                                      : sim_.schedule_at(Time::at(Duration::ps(t)), handler);
  }
  bool cancel(int id) { return sim_.cancel(handles_[static_cast<std::size_t>(id)]); }
  bool is_pending(int id) const { return sim_.is_pending(handles_[static_cast<std::size_t>(id)]); }
  std::uint64_t run_until(std::int64_t t) { return sim_.run_until(Time::at(Duration::ps(t))); }
  std::uint64_t run() { return sim_.run(); }
  void stop() { sim_.stop(); }
  std::int64_t now() const { return sim_.now().count_ps(); }
  std::size_t pending() const { return sim_.pending(); }

 private:
  Simulator sim_;
  std::function<void(int)> on_event_;
  std::vector<EventHandle> handles_;
};

// The reference: an ordered set of (time, insertion sequence, id).
class ReferenceEngine {
 public:
  explicit ReferenceEngine(std::function<void(int)> on_event) : on_event_(std::move(on_event)) {}
  void schedule(std::int64_t t, int id, bool /*relative*/) {
    if (keys_.size() <= static_cast<std::size_t>(id)) keys_.resize(static_cast<std::size_t>(id) + 1);
    keys_[static_cast<std::size_t>(id)] = {t, next_seq_, id};
    queue_.insert({t, next_seq_, id});
    ++next_seq_;
  }
  bool cancel(int id) { return queue_.erase(keys_[static_cast<std::size_t>(id)]) > 0; }
  bool is_pending(int id) const { return queue_.count(keys_[static_cast<std::size_t>(id)]) > 0; }
  std::uint64_t run_until(std::int64_t t) {
    stopped_ = false;
    std::uint64_t ran = 0;
    while (!queue_.empty() && !stopped_ && std::get<0>(*queue_.begin()) <= t) ran += run_one();
    if (!stopped_) now_ = t;
    return ran;
  }
  std::uint64_t run() {
    stopped_ = false;
    std::uint64_t ran = 0;
    while (!queue_.empty() && !stopped_) ran += run_one();
    return ran;
  }
  void stop() { stopped_ = true; }
  std::int64_t now() const { return now_; }
  std::size_t pending() const { return queue_.size(); }

 private:
  using Key = std::tuple<std::int64_t, std::uint64_t, int>;
  std::uint64_t run_one() {
    const Key k = *queue_.begin();
    queue_.erase(queue_.begin());
    now_ = std::get<0>(k);
    on_event_(std::get<2>(k));
    return 1;
  }
  std::function<void(int)> on_event_;
  std::set<Key> queue_;
  std::vector<Key> keys_;
  std::uint64_t next_seq_ = 1;
  std::int64_t now_ = 0;
  bool stopped_ = false;
};

// A workload that grows and shrinks the queue in waves, schedules from
// handlers (delay 0 included), cancels, probes is_pending, stops runs, and
// runs in run_until slices. Returns everything it observed; two engines that
// order events identically return identical traces (the random choices depend
// only on what was observed before).
template <typename Engine>
std::vector<std::int64_t> differential_trace(std::uint64_t seed, int total_events) {
  RandomStream rng = RandomStreams(seed).stream("test/engine-differential");
  std::vector<std::int64_t> trace;
  std::vector<std::int64_t> recent;
  int next_id = 0;
  std::size_t target = 1;
  Engine* engine = nullptr;
  const auto schedule_one = [&] {
    const std::int64_t t = draw_time(rng, engine->now(), recent);
    if (recent.size() < 64) {
      recent.push_back(t);
    } else {
      recent[rng.below(recent.size())] = t;
    }
    engine->schedule(t, next_id++, rng.below(2) == 0);
  };
  Engine e([&](int id) {
    trace.push_back(engine->now());
    trace.push_back(id);
    if (rng.below(64) == 0) target = static_cast<std::size_t>(rng.below(6000)) + 1;  // a new wave
    if (next_id < total_events) {
      const std::uint64_t children = engine->pending() < target ? 1 + rng.below(3) : rng.below(2);
      for (std::uint64_t c = 0; c < children; ++c) schedule_one();
    }
    const auto any_id = [&] { return static_cast<int>(rng.below(static_cast<std::uint64_t>(next_id))); };
    if (rng.below(5) == 0) trace.push_back(engine->cancel(any_id()) ? -1 : -2);
    if (rng.below(7) == 0) trace.push_back(engine->is_pending(any_id()) ? -3 : -4);
    if (rng.below(300) == 0) engine->stop();
  });
  engine = &e;
  for (int i = 0; i < 200; ++i) schedule_one();
  while (e.pending() > 0) {
    // Slices of very different lengths, with boundaries that often coincide
    // with event times (run_until is inclusive); handlers stop some early.
    std::int64_t until = e.now();
    switch (rng.below(6)) {
      case 0: until = recent[rng.below(recent.size())]; break;
      case 1: until += std::min(static_cast<std::int64_t>(rng.below(1'000'000)), kMaxPs - until); break;
      case 2: until += std::min(static_cast<std::int64_t>(rng.below(1'000'000'000)), kMaxPs - until); break;
      case 3: until = kMaxPs; break;
      case 4: trace.push_back(static_cast<std::int64_t>(e.run())); break;
      default: break;
    }
    until = std::max(until, e.now());
    trace.push_back(static_cast<std::int64_t>(e.run_until(until)));
    trace.push_back(e.now());
    trace.push_back(static_cast<std::int64_t>(e.pending()));
  }
  return trace;
}

}  // namespace

TEST_CASE("randomized schedules run in exactly the (time, insertion sequence) order of a reference",
          "[engine][queue]") {
  for (const std::uint64_t seed : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3}}) {
    INFO("seed " << seed);
    const auto expected = differential_trace<ReferenceEngine>(seed, 60'000);
    const auto actual = differential_trace<SimEngine>(seed, 60'000);
    REQUIRE(expected.size() > 100'000);
    REQUIRE(actual.size() == expected.size());
    // First difference, if any, to make a failure readable.
    const auto diff = std::mismatch(actual.begin(), actual.end(), expected.begin());
    INFO("first difference at trace position " << (diff.first - actual.begin()));
    REQUIRE(actual == expected);
  }
}

TEST_CASE("the ladder queue pops keys in exact order for adversarial time patterns", "[engine][queue]") {
  // Directly on the queue: many more keys per second than through handlers.
  // The binary heap (the benchmark's baseline) runs alongside: same order.
  using Key = LadderQueue::Key;
  for (int pattern = 0; pattern < 8; ++pattern) {
    INFO("pattern " << pattern);
    RandomStream rng = RandomStreams(static_cast<std::uint64_t>(pattern)).stream("test/ladder");
    LadderQueue queue;
    BinaryHeapQueue heap;
    std::set<Key> reference;
    std::uint64_t now = 0;
    std::uint64_t seq = 1;
    const auto draw = [&]() -> std::uint64_t {
      const auto max = static_cast<std::uint64_t>(kMaxPs);
      const std::uint64_t r = rng();
      switch (pattern) {
        case 0: return now;                                   // everything at one time
        case 1: return now + r % 3;                           // a handful of times, heavy ties
        case 2: return now + (r % 2 == 0 ? r % 4 : 1'000'000'000'000'000 + r % 4);  // 1 ps vs 1e15 ps
        case 3: return r % 8 == 0 ? max - r % 2 : now + r % 1000;  // up to INT64_MAX
        case 4: {                                             // geometric spread
          const std::uint64_t d = (std::uint64_t{1} << (r % 62)) + (r >> 58);
          return max - now > d ? now + d : max;
        }
        case 5: return now + static_cast<std::uint64_t>(rng.exponential(1e6));
        case 6: return r % 2 == 0 ? now : now + r % 100'000'000;
        default: return now + r % 1'000'000;
      }
    };
    std::size_t target = 1;
    for (int step = 0; step < 150'000; ++step) {
      if (step % 4000 == 0) target = 1 + static_cast<std::size_t>(rng.below(40'000));
      const bool push = reference.empty() || (reference.size() < target ? rng.below(4) != 0 : rng.below(4) == 0);
      if (push) {
        const Key k = (static_cast<Key>(draw()) << 64) | seq++;
        queue.push(k);
        heap.push(k);
        reference.insert(k);
      } else {
        if (rng.below(8) == 0) REQUIRE(queue.top() == *reference.begin());
        const Key k = queue.pop();
        REQUIRE(k == *reference.begin());
        REQUIRE(heap.pop() == k);
        reference.erase(reference.begin());
        now = LadderQueue::key_time(k);
      }
      REQUIRE(queue.size() == reference.size());
    }
    REQUIRE(heap.size() == reference.size());
    while (!reference.empty()) {
      REQUIRE(queue.pop() == *reference.begin());
      REQUIRE(heap.pop() == *reference.begin());
      reference.erase(reference.begin());
    }
    REQUIRE(queue.empty());
    REQUIRE(heap.empty());
  }
}

TEST_CASE("a large batch of events at one time runs in scheduling order, then what it schedules", "[engine][queue]") {
  // A bucket whose keys all have one time cannot be split; it must go to the
  // sorted part of the queue whole, in order, without endless splitting.
  Simulator sim;
  constexpr int kBatch = 50'000;
  std::vector<int> order;
  std::vector<EventHandle> handles;
  const Time t = Time::at(5_us);
  for (int i = 0; i < kBatch; ++i) {
    handles.push_back(sim.schedule_at(t, [&, i] {
      order.push_back(i);
      if (i < 1000) sim.schedule_in(Duration::zero(), [&, i] { order.push_back(kBatch + i); });
      if (i % 10 == 0) sim.schedule_in(1_ps, [&, i] { order.push_back(2 * kBatch + i); });
    }));
  }
  for (int i = 3; i < kBatch; i += 7) REQUIRE(sim.cancel(handles[static_cast<std::size_t>(i)]));
  sim.run();
  std::vector<int> expected;
  for (int i = 0; i < kBatch; ++i) {
    if (i < 3 || (i - 3) % 7 != 0) expected.push_back(i);
  }
  for (int i = 0; i < 1000; ++i) {
    if (i < 3 || (i - 3) % 7 != 0) expected.push_back(kBatch + i);
  }
  for (int i = 0; i < kBatch; i += 10) {
    if (i < 3 || (i - 3) % 7 != 0) expected.push_back(2 * kBatch + i);
  }
  REQUIRE(order == expected);
  REQUIRE(sim.now() == t + 1_ps);
}

TEST_CASE("events due before a large block of equal-time events slot in ahead of it", "[engine][queue]") {
  // 20,000 events at 10 ns and 20,000 at 20 ns; the first event, at 1 ns,
  // schedules 3,000 more at times in between, in random order.
  Simulator sim;
  std::vector<std::pair<std::int64_t, int>> ran;
  std::vector<std::pair<std::int64_t, int>> expected;  // (time, scheduling order)
  int next = 0;
  const auto add = [&](Time t) {
    const int id = next++;
    expected.emplace_back(t.count_ps(), id);
    sim.schedule_at(t, [&, id] { ran.emplace_back(sim.now().count_ps(), id); });
  };
  RandomStream rng = RandomStreams(11).stream("test/block");
  sim.schedule_at(Time::at(1_ns), [&] {
    for (int i = 0; i < 3000; ++i) add(Time::at(Duration::ps(2000 + static_cast<std::int64_t>(rng.below(16'000)))));
  });
  for (int i = 0; i < 20'000; ++i) {
    add(Time::at(10_ns));
    add(Time::at(20_ns));
  }
  sim.run();
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  REQUIRE(ran == expected);
}

TEST_CASE("times spread from 1 ps to the largest representable time keep their order", "[engine][queue]") {
  Simulator sim;
  std::vector<std::int64_t> times;
  std::vector<std::int64_t> ran;
  RandomStream rng = RandomStreams(5).stream("test/spread");
  for (int i = 0; i < 20'000; ++i) {
    std::int64_t t = 0;
    switch (rng.below(5)) {
      case 0: t = 1 + static_cast<std::int64_t>(rng.below(3)); break;
      case 1: t = 1'000'000'000'000'000 + static_cast<std::int64_t>(rng.below(3)); break;
      case 2: t = kMaxPs - static_cast<std::int64_t>(rng.below(3)); break;
      case 3: t = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(kMaxPs))); break;
      default: t = std::int64_t{1} << rng.below(63); break;
    }
    times.push_back(t);
    sim.schedule_at(Time::at(Duration::ps(t)), [&, t] {
      ran.push_back(t);
      // From each handler, one more event at the very end of time.
      if (t % 97 == 0) sim.schedule_at(Time::max(), [&] { ran.push_back(kMaxPs); });
    });
  }
  for (const std::int64_t t : times) {
    if (t % 97 == 0) times.push_back(kMaxPs);
  }
  REQUIRE(sim.run_until(Time::max()) == times.size());
  std::sort(times.begin(), times.end());
  REQUIRE(ran == times);
  REQUIRE(sim.now() == Time::max());
  REQUIRE(sim.pending() == 0);
}

TEST_CASE("mass cancellation leaves exactly the surviving events, in order", "[engine][queue]") {
  Simulator sim;
  RandomStream rng = RandomStreams(9).stream("test/cancel");
  std::vector<EventHandle> handles;
  std::vector<std::pair<std::int64_t, int>> survivors;
  std::vector<std::pair<std::int64_t, int>> ran;
  for (int i = 0; i < 100'000; ++i) {
    const auto t = static_cast<std::int64_t>(rng.below(1'000'000));
    handles.push_back(
        sim.schedule_at(Time::at(Duration::ps(t)), [&, i] { ran.emplace_back(sim.now().count_ps(), i); }));
    survivors.emplace_back(t, i);
  }
  std::vector<bool> cancelled(handles.size(), false);
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (rng.below(10) != 0) {
      REQUIRE(sim.cancel(handles[i]));
      cancelled[i] = true;
    }
  }
  std::erase_if(survivors, [&](const auto& s) { return cancelled[static_cast<std::size_t>(s.second)]; });
  REQUIRE(sim.pending() == survivors.size());
  std::stable_sort(survivors.begin(), survivors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Half the time span, then the rest; cancelled entries at the boundary are skipped.
  const std::uint64_t first = sim.run_until(Time::at(Duration::ps(500'000)));
  REQUIRE(sim.now() == Time::at(Duration::ps(500'000)));
  REQUIRE(first + sim.run() == survivors.size());
  REQUIRE(ran == survivors);
  REQUIRE(sim.events_executed() == survivors.size());
}

TEST_CASE("a small queue that empties and refills keeps exact order", "[engine][queue]") {
  // 1 to 10 pending events: the queue stays in its sorted part.
  for (int pending = 1; pending <= 10; ++pending) {
    Simulator sim;
    RandomStream rng = RandomStreams(static_cast<std::uint64_t>(pending)).stream("test/small");
    std::vector<std::pair<std::int64_t, int>> ran;
    std::vector<std::pair<std::int64_t, int>> expected;
    int next = 0;
    std::function<void()> hold = [&] {
      if (next >= 20'000) return;
      const int id = next++;
      const Time t = sim.now() + Duration::ps(static_cast<std::int64_t>(rng.below(3)) * 1000);
      expected.emplace_back(t.count_ps(), id);
      sim.schedule_at(t, [&, id] {
        ran.emplace_back(sim.now().count_ps(), id);
        hold();
      });
    };
    for (int i = 0; i < pending; ++i) hold();
    sim.run();
    std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    REQUIRE(ran == expected);
  }
}
