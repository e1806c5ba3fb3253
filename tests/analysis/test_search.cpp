// Strategy search (apps/strategy_search.hpp): on a small case the search must
// find the plan that a brute force over the same plan space (every plan
// simulated by analysis::run_batch, enumerated here independently) finds, and
// its result must not depend on the number of threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>

#include "analysis/hdf5_reader.hpp"
#include "analysis/run_report.hpp"
#include "temp_dir.hpp"
#include "apps/commands.hpp"
#include "apps/strategy_search.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/workload_options.hpp"

namespace {

using moesim::Config;

// A small MoE (4 layers, 8 experts, hidden 512) on one 4-GPU node, batch mode.
constexpr const char* kSmall = R"(
[model]
preset = mixtral-8x7b
layers = 4
hidden = 512
heads = 8
kv_heads = 8
experts = 8
top_k = 2
expert_ffn = 1024
vocab = 1000
[topology]
preset = default
nodes = 1
[strategy]
tp = 1
pp = 1
ep = 4
dp = 4
convention = folded
[workload]
kind = batch
batch = 16
prompt_tokens = 128
[routing]
distribution = uniform
)";

Config small_config() {
  Config c(moesim::cli::scenario_registry());
  c.load_ini_text(kSmall, "test_search");
  return c;
}

struct Brute {
  std::set<std::string> best;  // every plan reaching the best throughput (ties)
  double best_tokens_per_s = 0.0;
  std::size_t valid = 0;
};

// Every plan of the documented space (both conventions; tp | heads and
// hidden; pp | layers; etp | tp; ep | experts; DP fills the 4 GPUs;
// micro-batches {1} for pp = 1, else {pp, 2pp, 4pp} up to the sequences of a
// replica), each validated and, when valid, run at full fidelity.
Brute brute_force(const Config& base) {
  const moesim::ModelSpec model = moesim::model_from_config(base);
  const moesim::GpuSpec gpu = moesim::gpu_from_config(base);
  const std::int64_t gpus = 4;
  const std::int64_t batch = base.get_int("workload.batch");
  Brute b;
  for (const char* conv : {"folded", "orthogonal"}) {
    for (std::int64_t tp : {1, 2, 4}) {
      for (std::int64_t pp : {1, 2, 4}) {
        if (tp * pp > gpus || model.layers % pp != 0) continue;
        for (std::int64_t etp = 1; etp <= tp; etp *= 2) {
          for (std::int64_t ep : {1, 2, 4, 8}) {
            std::int64_t dp = 0;
            if (std::string(conv) == "folded") {
              dp = gpus / (tp * pp);
              if ((tp * dp) % (ep * etp) != 0) continue;
            } else {
              if ((gpus / (tp * pp)) % ep != 0) continue;
              dp = gpus / (tp * pp * ep);
            }
            const std::int64_t replicas = std::string(conv) == "folded" ? dp : ep * dp;
            const std::int64_t per_replica = (batch + replicas - 1) / replicas;
            std::vector<std::int64_t> mbs = {pp == 1 ? 1 : pp};
            if (pp > 1) {
              for (std::int64_t k : {2, 4}) {
                if (pp * k <= per_replica) mbs.push_back(pp * k);
              }
            }
            for (std::int64_t mb : mbs) {
              Config c = base;
              c.set("strategy.tp", std::to_string(tp), "brute");
              c.set("strategy.pp", std::to_string(pp), "brute");
              c.set("strategy.ep", std::to_string(ep), "brute");
              c.set("strategy.etp", std::to_string(etp), "brute");
              c.set("strategy.dp", std::to_string(dp), "brute");
              c.set("strategy.microbatches", std::to_string(mb), "brute");
              c.set("strategy.convention", conv, "brute");
              const moesim::Strategy s = moesim::strategy_from_config(c, gpus);
              const moesim::WorkloadShape shape{batch, c.get_int("workload.prompt_tokens"),
                                                c.get_int("workload.prompt_tokens") + 1};
              if (!moesim::validate(model, s, gpus, gpu, shape, moesim::memory_options_from_config(c)).ok()) continue;
              ++b.valid;
              const moesim::analysis::RunSummary r = moesim::analysis::run_batch(c);
              if (r.tokens_per_s > b.best_tokens_per_s) {
                b.best_tokens_per_s = r.tokens_per_s;
                b.best.clear();
              }
              if (r.tokens_per_s == b.best_tokens_per_s) b.best.insert(s.describe());
            }
          }
        }
      }
    }
  }
  return b;
}

}  // namespace

TEST_CASE("strategy search finds the brute-force best plan of a small case", "[search]") {
  const Config base = small_config();
  const Brute brute = brute_force(base);
  REQUIRE(brute.valid > 10);

  moesim::SearchOptions opt;
  opt.final_plans = 1000;  // every plan at full fidelity: the ranking is exact
  opt.threads = 2;
  const moesim::SearchResult r = moesim::run_strategy_search(base, opt);
  CHECK(r.valid == brute.valid);
  const moesim::SearchRow* best = r.best();
  REQUIRE(best != nullptr);
  CHECK(best->final_simulated);
  CHECK(brute.best.count(best->description) == 1);
  CHECK(best->tokens_per_s == brute.best_tokens_per_s);  // the same simulation, bit for bit
  // Every valid row is ranked, best first, and the best is on the Pareto front.
  CHECK(best->pareto);
  std::int64_t expect = 1;
  for (const auto& row : r.rows) {
    if (row.valid) CHECK(row.rank == expect++);
  }
  REQUIRE(r.scenario_plan.has_value());
  CHECK(r.rows[*r.scenario_plan].is_scenario_plan);
  CHECK(r.rows[*r.scenario_plan].description == moesim::strategy_from_config(base, 4).describe());

  // The screening pass alone (one engine, analytical network, balanced
  // routing) ranks the plans by estimates; the same result with 1 thread.
  moesim::SearchOptions s1;
  s1.final_plans = 0;
  s1.threads = 1;
  moesim::SearchOptions s2 = s1;
  s2.threads = 2;
  const moesim::SearchResult a = moesim::run_strategy_search(base, s1);
  const moesim::SearchResult b = moesim::run_strategy_search(base, s2);
  REQUIRE(a.rows.size() == b.rows.size());
  for (std::size_t i = 0; i < a.rows.size(); ++i) {
    CHECK(a.rows[i].description == b.rows[i].description);
    CHECK(a.rows[i].tokens_per_s == b.rows[i].tokens_per_s);
    CHECK(a.rows[i].rank == b.rows[i].rank);
  }
  // Layer extrapolation (1 and 2 layers per stage, affine in between) against
  // timing every layer: the small model has 4 layers, so PP 1 plans are
  // extrapolated (4 > 2 layers per stage). Same plans, same estimates within
  // 0.1 % (picosecond rounding and the pipeline's start-up aside).
  moesim::SearchOptions full = s1;
  full.extrapolate_layers = false;
  const moesim::SearchResult c = moesim::run_strategy_search(base, full);
  REQUIRE(c.rows.size() == a.rows.size());
  std::size_t compared = 0;
  for (const auto& ra : a.rows) {
    for (const auto& rc : c.rows) {
      if (rc.description != ra.description || !ra.valid) continue;
      CHECK(ra.screen_tokens_per_s == Approx(rc.screen_tokens_per_s).epsilon(1e-3));
      ++compared;
    }
  }
  CHECK(compared == brute.valid);

  // The HDF5 /search table: one row per valid plan, ranked, with the columns
  // of the JSON rows.
  moesim::test::TempDir dir;
  const auto h5 = dir.path() / "search.h5";
  moesim::write_search_results(h5, r, base, "test_search");
  const moesim::analysis::Hdf5Reader reader(h5);
  const auto cols = reader.read_table("/search");
  const auto col = [&](const std::string& name) -> const moesim::analysis::Column& {
    for (const auto& c2 : cols) {
      if (c2.name == name) return c2;
    }
    FAIL("no column " << name);
    throw std::logic_error("unreachable");
  };
  const auto& ranks = std::get<std::vector<std::int64_t>>(col("rank").values);
  REQUIRE(ranks.size() == brute.valid);
  CHECK(ranks.front() == 1);
  const auto& plans = std::get<std::vector<std::string>>(col("plan").values);
  CHECK(brute.best.count(plans.front()) == 1);
  const auto& tput = std::get<std::vector<double>>(col("tokens_per_s").values);
  CHECK(tput.front() == brute.best_tokens_per_s);

  // The JSON document has the ranked table and the front.
  const auto j = moesim::search_result_json(r);
  CHECK(brute.best.count(j["best"]["plan"].get<std::string>()) == 1);
  CHECK(j["candidates"].get<std::size_t>() >= brute.valid);
  CHECK_FALSE(j["pareto"].empty());
}
