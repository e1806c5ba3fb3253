// The classic hold model (Vaucher & Duval 1975; used to compare event-list
// implementations): the queue is filled to N pending events; then each
// handled event schedules exactly one more at now + a random delay, so the
// queue stays at N. Prints events/s for N = 1M with exponential delays (the
// target: >= 20M events/s on one core), smaller and larger N for comparison,
// and two other delay distributions of the same mean at 1M (a priority queue
// tuned to one distribution can fall apart on another).
//
// Then the queues alone, in one run so their ratio is meaningful: the same
// hold model on bare 128-bit keys (no handlers) through the engine's ladder
// queue and through the textbook binary heap (sim/binary_heap_queue.hpp),
// which pops exactly the same order.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_clock.hpp"
#include "sim/binary_heap_queue.hpp"
#include "sim/ladder_queue.hpp"
#include "sim/random.hpp"
#include "sim/simulator.hpp"

namespace {

enum class Delay { kExponential, kUniform, kBimodal };

const char* delay_name(Delay d) {
  switch (d) {
    case Delay::kExponential: return "exponential";
    case Delay::kUniform: return "uniform";
    case Delay::kBimodal: return "bimodal";
  }
  return "?";
}

// A delay in picoseconds with a mean of 1 us.
std::int64_t draw_delay(moesim::RandomStream& rng, Delay d) {
  switch (d) {
    case Delay::kExponential:
      return static_cast<std::int64_t>(rng.exponential(1e6));
    case Delay::kUniform:  // on [0, 2 us]
      return static_cast<std::int64_t>(rng.uniform(0.0, 2e6));
    case Delay::kBimodal:  // 90 % on [0, 0.2 us], 10 % on [8.2 us, 10 us]
      return static_cast<std::int64_t>(rng.below(10) != 0 ? rng.uniform(0.0, 0.2e6) : rng.uniform(8.2e6, 10e6));
  }
  return 0;
}

struct HoldResult {
  double events_per_s;      // per CPU second of this thread (one core)
  std::uint64_t events;
  double wall_s;
  double cpu_s;
};

using moesim::bench::thread_cpu_seconds;

HoldResult run_hold(std::size_t pending, std::uint64_t handled_events, Delay distribution, std::uint64_t seed) {
  using namespace moesim;
  Simulator sim;
  RandomStream rng = RandomStreams(seed).stream("bench/hold");
  // Delays drawn into a table up front so the benchmark measures the event
  // list, not the random number generator.
  std::vector<std::int64_t> delays(1 << 16);
  for (auto& d : delays) d = draw_delay(rng, distribution) + 1;
  std::size_t next_delay = 0;
  std::uint64_t remaining = handled_events;

  struct Hold {
    Simulator* sim;
    std::vector<std::int64_t>* delays;
    std::size_t* next;
    std::uint64_t* remaining;
    void operator()() const {
      if (*remaining == 0) {
        sim->stop();
        return;
      }
      --*remaining;
      const std::int64_t d = (*delays)[(*next)++ & ((1 << 16) - 1)];
      sim->schedule_in(Duration::ps(d), Hold{*this});
    }
  };
  const Hold hold{&sim, &delays, &next_delay, &remaining};
  // Initial event times from the same distribution as the increments, as in
  // the classic hold model, so the queue starts near its steady state.
  for (std::size_t i = 0; i < pending; ++i) {
    sim.schedule_at(Time::at(Duration::ps(draw_delay(rng, distribution) + 1)), Hold{hold});
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu_seconds();
  const std::uint64_t ran = sim.run();
  const double cpu = thread_cpu_seconds() - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {static_cast<double>(ran) / cpu, ran, wall, cpu};
}

// The hold model on a bare queue: N keys, then `ops` times pop the smallest
// and push it back at its time + an exponential delay (mean 1 us). Returns
// pops per CPU second.
template <typename Queue>
double queue_hold(std::size_t pending, std::uint64_t ops) {
  using Key = typename Queue::Key;
  moesim::RandomStream rng = moesim::RandomStreams(1).stream("bench/queue");
  std::vector<std::uint64_t> delays(1 << 16);
  for (auto& d : delays) d = static_cast<std::uint64_t>(rng.exponential(1e6));
  Queue q;
  std::uint64_t seq = 1;
  for (std::size_t i = 0; i < pending; ++i) q.push((static_cast<Key>(delays[i & 0xffff] + i % 7) << 64) | seq++);
  std::uint64_t checksum = 0;
  const double c0 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < ops; ++i) {
    const Key k = q.pop();
    const auto t = static_cast<std::uint64_t>(k >> 64);
    checksum += t;
    q.push((static_cast<Key>(t + delays[i & 0xffff]) << 64) | seq++);
  }
  const double cpu = thread_cpu_seconds() - c0;
  if (checksum == 0) std::printf(" ");  // keep the loop observable
  return static_cast<double>(ops) / cpu;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20'000'000ULL;
  std::printf("hold model: each handled event schedules one more at now + a random delay with a mean of 1 us\n");
  std::printf("(exponential; uniform on [0, 2 us]; bimodal: 90 %% on [0, 0.2 us], 10 %% on [8.2, 10 us])\n");
  std::printf("events_per_s counts this thread's CPU time (one core), so other load on the machine\n"
              "inflates wall_s but not the rate.\n");
  std::printf("%12s %12s %14s %10s %10s %16s\n", "delay", "pending", "events", "wall_s", "cpu_s", "events_per_s");
  struct Row {
    Delay delay;
    std::size_t pending;
  };
  const Row rows[] = {
      {Delay::kExponential, 10},        {Delay::kExponential, 1'000},     {Delay::kExponential, 100'000},
      {Delay::kExponential, 1'000'000}, {Delay::kUniform, 1'000'000},     {Delay::kBimodal, 1'000'000},
      {Delay::kExponential, 10'000'000},
  };
  for (const Row& row : rows) {
    const HoldResult r = run_hold(row.pending, events, row.delay, 1);
    std::printf("%12s %12zu %14llu %10.3f %10.3f %16.3e\n", delay_name(row.delay), row.pending,
                static_cast<unsigned long long>(r.events), r.wall_s, r.cpu_s, r.events_per_s);
  }
  std::printf("target: >= 2.0e+07 events/s at 1,000,000 pending (exponential)\n\n");
  std::printf("the queues alone (hold model on bare keys, exponential delays), pops per CPU second:\n");
  std::printf("%12s %18s %18s %8s\n", "pending", "binary heap", "ladder queue", "ratio");
  for (const std::size_t pending : {std::size_t{1'000}, std::size_t{100'000}, std::size_t{1'000'000}}) {
    const double heap = queue_hold<moesim::BinaryHeapQueue>(pending, events);
    const double ladder = queue_hold<moesim::LadderQueue>(pending, events);
    std::printf("%12zu %18.3e %18.3e %8.2f\n", pending, heap, ladder, ladder / heap);
  }
  return 0;
}
