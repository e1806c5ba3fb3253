// The continuous-batching scheduler of one replica (workloads/scheduler.hpp),
// driven by hand: every expectation below is traced by hand in the comments.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sim/options.hpp"
#include "sim/random.hpp"
#include "workloads/scheduler.hpp"

using namespace moesim;

namespace {

struct Harness {
  std::vector<RequestState> requests;
  ReplicaScheduler sched;
  Time now{};
  int iteration = 0;

  explicit Harness(SchedulerConfig c) : sched(0, c) {}
  RequestState& req(std::int32_t i) { return requests[static_cast<std::size_t>(i)]; }

  std::int32_t add(std::int64_t prompt, std::int64_t output) {
    RequestState r;
    r.prompt_tokens = prompt;
    r.output_tokens = output;
    r.arrival = now;
    requests.push_back(r);
    const auto idx = static_cast<std::int32_t>(requests.size() - 1);
    sched.enqueue(idx, requests);
    return idx;
  }
  // One iteration of 1 ms: schedule, then complete.
  ReplicaIteration step() {
    ReplicaIteration it = sched.schedule(requests, now);
    now += Duration::ms(1);
    ++iteration;
    sched.complete(it, requests, now);
    return it;
  }
};

struct Chunk {
  std::int32_t request;
  std::int64_t new_tokens;
  std::int64_t cached;
  bool samples;
};

std::vector<Chunk> chunks(const ReplicaIteration& it) {
  std::vector<Chunk> v;
  for (const auto& c : it.chunks) v.push_back({c.request, c.new_tokens, c.cached_tokens, c.samples});
  return v;
}

bool operator==(const Chunk& a, const Chunk& b) {
  return a.request == b.request && a.new_tokens == b.new_tokens && a.cached == b.cached && a.samples == b.samples;
}
std::ostream& operator<<(std::ostream& o, const Chunk& c) {
  return o << "{r" << c.request << " +" << c.new_tokens << " @" << c.cached << (c.samples ? " sample}" : "}");
}

SchedulerConfig config(std::int64_t budget, bool chunked, std::int64_t blocks, std::int64_t block_tokens = 16,
                       std::int64_t max_seqs = 256) {
  SchedulerConfig c;
  c.max_batched_tokens = budget;
  c.chunked_prefill = chunked;
  c.kv_blocks = blocks;
  c.kv_block_tokens = block_tokens;
  c.max_seqs = max_seqs;
  return c;
}

}  // namespace

TEST_CASE("continuous batching with chunked prefill, traced by hand", "[serving][scheduler]") {
  // Budget 8 tokens. A: prompt 5, 3 outputs. B: prompt 20, 2 outputs.
  Harness h(config(8, true, 1000));
  const auto a = h.add(5, 3);
  const auto b = h.add(20, 2);
  // 1: A's whole prompt (5, samples its first token), B's first chunk of 3.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 5, 0, true}, {b, 3, 0, false}});
  CHECK(h.req(a).first_token == Time::at(Duration::ms(1)));
  // 2: A decodes (1 token over 5 cached); B gets the remaining 7 of the budget.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 5, true}, {b, 7, 3, false}});
  // 3: A's third token finishes it; B continues (7 more: 17 of 20).
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 6, true}, {b, 7, 10, false}});
  CHECK(h.req(a).phase == RequestState::Phase::kFinished);
  CHECK(h.req(a).finished == Time::at(Duration::ms(3)));
  // 4: B's last 3 prompt tokens sample its first output token.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 3, 17, true}});
  CHECK(h.req(b).first_token == Time::at(Duration::ms(4)));
  // 5: one decode step: second and last output.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 1, 20, true}});
  CHECK(h.req(b).phase == RequestState::Phase::kFinished);
  CHECK_FALSE(h.sched.has_work());
  CHECK(h.sched.used_blocks() == 0);
  CHECK(h.sched.outstanding_tokens() == 0);
  // Queue time: both were first scheduled in iteration 1, at t = 0.
  CHECK(h.req(b).first_scheduled == Time::zero());
}

TEST_CASE("without chunked prefill a prompt is admitted whole, first come first served", "[serving][scheduler]") {
  Harness h(config(8, false, 1000));
  const auto a = h.add(5, 2);
  const auto b = h.add(6, 1);
  const auto c = h.add(1, 1);
  // 1: A (5) fits; B (6) does not fit in the 3 left and blocks C behind it.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 5, 0, true}});
  // 2: A's decode (1) + B (6) + C (1) = 8.
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 5, true}, {b, 6, 0, true}, {c, 1, 0, true}});
  CHECK_FALSE(h.sched.has_work());
}

TEST_CASE("max_seqs bounds the running requests", "[serving][scheduler]") {
  Harness h(config(100, true, 1000, 16, 2));
  h.add(4, 3);
  h.add(4, 3);
  const auto c = h.add(4, 3);
  CHECK(h.step().chunks.size() == 2);
  CHECK(h.sched.running() == 2);
  CHECK(h.sched.waiting() == 1);
  h.step();
  h.step();  // the first two finish here (3 outputs: prefill + 2 decodes)
  CHECK(chunks(h.step()) == std::vector<Chunk>{{c, 4, 0, true}});
}

TEST_CASE("admission waits for free KV blocks", "[serving][scheduler][kv]") {
  // 2 blocks of 4 tokens. A: prompt 6, 3 outputs (peak 6 + 3 - 1 = 8 tokens:
  // both blocks). B: prompt 2, 1 output (1 block).
  Harness h(config(100, true, 2, 4));
  const auto a = h.add(6, 3);
  const auto b = h.add(2, 1);
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 6, 0, true}});  // A holds 2 blocks; B waits
  CHECK(h.sched.used_blocks() == 2);
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 6, true}});
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 7, true}});  // A finishes, frees both
  CHECK(h.sched.used_blocks() == 0);
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 2, 0, true}});
  CHECK(h.sched.peak_blocks() == 2);
  CHECK(h.sched.preemptions() == 0);
}

TEST_CASE("when a running request cannot grow, the newest is preempted and recomputed", "[serving][scheduler][kv]") {
  // 4 blocks of 4 tokens. A and B: prompt 4, 8 outputs (peak 11 tokens = 3 blocks).
  // Iterations 1-5: both run; after iteration 5 each holds 8 tokens (2 blocks, 4 in all).
  // Iteration 6: A needs its 9th token -> a 3rd block; none free -> B, the
  // newest, is preempted (its 2 blocks freed, 5 outputs kept, computed -> 0).
  // Iteration 7: B would need 3 blocks for its 9-token recompute; 1 free -> waits.
  // Iteration 8: A's 8th output finishes it.
  // Iteration 9: B recomputes prompt + 5 outputs = 9 tokens in one chunk and
  // samples its 6th output; 10, 11: decodes, B finishes.
  Harness h(config(100, true, 4, 4));
  const auto a = h.add(4, 8);
  const auto b = h.add(4, 8);
  for (int i = 0; i < 5; ++i) REQUIRE(h.step().chunks.size() == 2);
  CHECK(h.sched.used_blocks() == 4);
  const auto it6 = h.step();
  CHECK(chunks(it6) == std::vector<Chunk>{{a, 1, 8, true}});
  CHECK(it6.preempted == 1);
  CHECK(h.req(b).preemptions == 1);
  CHECK(h.req(b).computed == 0);
  CHECK(h.req(b).generated == 5);
  CHECK(h.req(b).phase == RequestState::Phase::kWaiting);
  CHECK(h.sched.used_blocks() == 3);
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 9, true}});
  CHECK(chunks(h.step()) == std::vector<Chunk>{{a, 1, 10, true}});
  CHECK(h.req(a).phase == RequestState::Phase::kFinished);
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 9, 0, true}});
  CHECK(h.req(b).first_token == Time::at(Duration::ms(1)));  // the first token is not re-counted
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 1, 9, true}});
  CHECK(chunks(h.step()) == std::vector<Chunk>{{b, 1, 10, true}});
  CHECK(h.req(b).phase == RequestState::Phase::kFinished);
  CHECK(h.req(b).generated == 8);
  CHECK(h.sched.peak_blocks() == 4);
  CHECK(h.sched.preemptions() == 1);
}

TEST_CASE("random load on a small cache: never over capacity, preemptions happen, everything completes",
          "[serving][scheduler][kv]") {
  // 40 blocks of 16 tokens = 640 tokens; requests of up to 200 + 200 tokens
  // arrive faster than they finish, so the cache fills and preempts.
  for (bool chunked : {true, false}) {
    Harness h(config(chunked ? 256 : 512, chunked, 40, 16, 64));
    RandomStream rng = RandomStreams(5).stream("test/scheduler");
    int added = 0;
    for (int iter = 0; iter < 20000 && (added < 300 || h.sched.has_work()); ++iter) {
      if (added < 300 && rng.uniform() < 0.5) {
        h.add(1 + static_cast<std::int64_t>(rng.below(200)), 1 + static_cast<std::int64_t>(rng.below(200)));
        ++added;
      }
      if (!h.sched.has_work()) continue;
      const auto it = h.step();
      REQUIRE_FALSE(it.empty());  // work present -> something scheduled (no deadlock)
      REQUIRE(h.sched.used_blocks() <= 40);
      REQUIRE(it.tokens() <= (chunked ? 256 : 512));
    }
    INFO("chunked " << chunked);
    CHECK(added == 300);
    CHECK_FALSE(h.sched.has_work());
    CHECK(h.sched.peak_blocks() <= 40);
    CHECK(h.sched.peak_blocks() >= 38);  // it did fill up
    CHECK(h.sched.preemptions() > 0);
    for (const auto& r : h.requests) {
      REQUIRE(r.phase == RequestState::Phase::kFinished);
      REQUIRE(r.generated == r.output_tokens);
      REQUIRE(r.first_token <= r.finished);
    }
  }
}

TEST_CASE("scheduler limits are checked", "[serving][scheduler]") {
  CHECK_THROWS_AS(ReplicaScheduler(0, config(0, true, 10)), InputError);
  CHECK_THROWS_AS(ReplicaScheduler(0, config(10, true, 0)), InputError);
  CHECK_THROWS_AS(ReplicaScheduler(0, config(10, true, 10, 0)), InputError);
}
