// Parallel strategy: world sizes under both conventions, validation (every
// violation at once), rank mapping and groups, strategy options.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "sim/options.hpp"
#include "workloads/strategy.hpp"
#include "workloads/workload_options.hpp"

using namespace moesim;

namespace {

// The model of seeds 003/004: 16 layers, 64 experts, hidden 1024, 16 heads.
ModelSpec seed_model() {
  ModelSpec m = model_preset("mixtral-8x7b");
  m.layers = 16;
  m.experts = 64;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.expert_ffn = 4096;
  return m;
}

Strategy make(std::int64_t tp, std::int64_t pp, std::int64_t ep, std::int64_t dp, Convention c,
              std::int64_t etp = 1) {
  Strategy s;
  s.tp = tp;
  s.pp = pp;
  s.ep = ep;
  s.dp = dp;
  s.etp = etp;
  s.convention = c;
  return s;
}

bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

}  // namespace

TEST_CASE("World size under both conventions (seed documents)", "[workloads][strategy]") {
  // Seed 001, corrected plan: TP 2, EP 4, PP 2, DP 2, claimed 8 GPUs.
  //   orthogonal: 2 x 2 x 4 x 2 = 32; folded: 2 x 2 x 2 = 8.
  const Strategy s001 = make(2, 2, 4, 2, Convention::kFolded);
  CHECK(s001.world_size(Convention::kOrthogonal) == 32);
  CHECK(s001.world_size(Convention::kFolded) == 8);
  CHECK(s001.expert_dp() == 1);  // EDP = TP x DP / (ETP x EP) = 4 / 4
  // Seed 004, original plan: TP 8, PP 4, EP 16, DP 4, claimed 512:
  //   orthogonal 8 x 4 x 16 x 4 = 2048; folded 8 x 4 x 4 = 128.
  const Strategy s004 = make(8, 4, 16, 4, Convention::kOrthogonal);
  CHECK(s004.world_size() == 2048);
  CHECK(s004.world_size(Convention::kFolded) == 128);

  const ValidationResult r = validate(seed_model(), s004, 512);
  REQUIRE_FALSE(r.ok());
  CHECK(any_contains(r.violations, "2048"));
  CHECK(any_contains(r.violations, "512"));
  CHECK(any_contains(r.violations, "128"));  // the other convention's count is reported too
  // Seed 001's corrected plan fits 16 GPUs folded (note: 8 idle) ...
  const ValidationResult ok = validate(seed_model(), s001, 16);
  CHECK(ok.ok());
  CHECK(any_contains(ok.notes, "8 of the cluster's 16"));
  CHECK(any_contains(ok.notes, "32"));
  // ... but not orthogonal.
  Strategy orth = s001;
  orth.convention = Convention::kOrthogonal;
  const ValidationResult bad = validate(seed_model(), orth, 16);
  CHECK_FALSE(bad.ok());
  CHECK(any_contains(bad.violations, "= 32"));
}

TEST_CASE("Validation reports every violated constraint at once", "[workloads][strategy]") {
  ModelSpec m = seed_model();  // 16 heads, 16 KV heads, hidden 1024, 64 experts, ffn 4096, 16 layers
  m.kv_heads = 8;
  Strategy s = make(3, 5, 5, 1, Convention::kFolded, 3);
  // Expected violations:
  //  1 world 3 x 5 x 1 = 15 > 8 GPUs
  //  2 folded: ETP x EP = 15 does not divide TP x DP = 3
  //  3 heads 16 % 3          4 hidden 1024 % 3
  //  5 KV heads 8 vs TP 3    6 experts 64 % 5
  //  7 expert ffn 4096 % 3   8 layers 16 % 5
  const ValidationResult r = validate(m, s, 8);
  INFO(r.to_string());
  CHECK(r.violations.size() == 8);
  CHECK(any_contains(r.violations, "heads (16)"));
  CHECK(any_contains(r.violations, "hidden size (1024)"));
  CHECK(any_contains(r.violations, "KV heads (8)"));
  CHECK(any_contains(r.violations, "experts per layer (64)"));
  CHECK(any_contains(r.violations, "ETP (3)"));
  CHECK(any_contains(r.violations, "layers (16)"));
  CHECK(any_contains(r.violations, "world size"));
  CHECK_THROWS_AS(r.throw_if_invalid(), InputError);
  CHECK_THROWS_AS(RankMapping(m, s), InputError);

  Strategy zero = make(0, 1, 1, 1, Convention::kFolded);
  CHECK(any_contains(validate(m, zero, 8).violations, "strategy.tp"));
}

TEST_CASE("KV-head replication and uneven stages", "[workloads][strategy]") {
  ModelSpec m = seed_model();
  m.kv_heads = 4;  // 16 heads, 4 KV heads
  // TP 8 > 4 KV heads and 8 % 4 == 0: replication, a note.
  const ValidationResult rep = validate(m, make(8, 1, 8, 1, Convention::kFolded), 8);
  CHECK(rep.ok());
  CHECK(any_contains(rep.notes, "replicated on 2 TP ranks"));
  // TP 16 with 4 KV heads also replicates; TP 8 with 12 heads & 12 KV heads fails.
  ModelSpec m12 = m;
  m12.heads = 24;
  m12.kv_heads = 12;
  m12.hidden = 1536;
  CHECK(any_contains(validate(m12, make(8, 1, 8, 1, Convention::kFolded), 8).violations, "KV heads (12)"));

  ModelSpec ds = model_preset("deepseek-v3");  // 61 layers
  Strategy s = make(8, 4, 8, 1, Convention::kFolded);
  CHECK(any_contains(validate(ds, s, 32).violations, "layers (61)"));
  s.layers_per_stage = {15, 16, 15, 15};
  CHECK(validate(ds, s, 32).ok());
  const RankMapping map(ds, s);
  CHECK(map.layer_range(1) == std::make_pair<std::int64_t, std::int64_t>(15, 31));
  CHECK(map.layers_of_stage(3) == 15);
  CHECK(map.moe_layers_of_stage(0) == 12);  // layers 0..14, of which 0..2 dense
  CHECK(map.moe_layers_of_stage(1) == 16);
  CHECK(map.stage_of_layer(30) == 1);
  CHECK(map.stage_of_layer(31) == 2);
  s.layers_per_stage = {15, 16, 15, 14};
  CHECK(any_contains(validate(ds, s, 32).violations, "sums to 60"));
  s.layers_per_stage = {15, 16, 30};
  CHECK(any_contains(validate(ds, s, 32).violations, "3 entries"));
}

TEST_CASE("Folded rank mapping by hand", "[workloads][strategy][mapping]") {
  // Mixtral (8 experts), TP 2, DP 4, EP 4, PP 2, folded, order tp-ep-dp-pp:
  // world 2 x 2 x 4 = 16, 8 ranks per stage, EDP = 2 x 4 / 4 = 2.
  const ModelSpec m = model_preset("mixtral-8x7b");
  Strategy s = make(2, 2, 4, 4, Convention::kFolded);
  const RankMapping map(m, s);
  CHECK(map.world_size() == 16);
  CHECK(map.expert_dp() == 2);
  // Rank 5: stage 5 / 8 = 0, local 5; attention: tp 5 % 2 = 1, dp 5 / 2 = 2;
  // experts: etp 0, ep 5 % 4 = 1, edp 5 / 4 = 1.
  const RankCoord c = map.coord(5);
  CHECK(c.pp == 0);
  CHECK(c.tp == 1);
  CHECK(c.dp == 2);
  CHECK(c.attn_dp == 2);
  CHECK(c.ep == 1);
  CHECK(c.edp == 1);
  CHECK(map.tp_group_of(5) == std::vector<GpuId>{4, 5});
  CHECK(map.ep_group_of(5) == std::vector<GpuId>{4, 5, 6, 7});
  CHECK(map.dp_group_of(5) == std::vector<GpuId>{1, 3, 5, 7});
  CHECK(map.edp_group_of(5) == std::vector<GpuId>{1, 5});
  CHECK(map.pp_peers_of(5) == std::vector<GpuId>{5, 13});
  CHECK(map.gpus_of_stage(1, 3) == std::vector<GpuId>{14, 15});
  CHECK(map.experts_per_gpu() == 2);
  CHECK(map.experts_of_ep_rank(1) == std::make_pair<std::int64_t, std::int64_t>(2, 4));
  CHECK(map.ep_rank_of_expert(7) == 3);
  CHECK(map.expert_owner() == std::vector<std::int32_t>{0, 0, 1, 1, 2, 2, 3, 3});
  CHECK(map.layers_of_stage(0) == 16);
  CHECK_THROWS(map.coord(16));
}

TEST_CASE("Orthogonal rank mapping by hand", "[workloads][strategy][mapping]") {
  // TP 2, EP 2, DP 2, PP 1, orthogonal, order tp-ep-dp-pp: g = tp + 2 (ep + 2 dp).
  const ModelSpec m = model_preset("mixtral-8x7b");
  const RankMapping map(m, make(2, 1, 2, 2, Convention::kOrthogonal));
  CHECK(map.world_size() == 8);
  CHECK(map.attention_dp() == 4);  // EP x DP
  CHECK(map.expert_dp() == 4);     // DP x TP / ETP
  // Rank 5 = tp 1, ep 0, dp 1: attention replica ep + 2 dp = 2; EP peer at ep 1: 1 + 2 (1 + 2) = 7.
  const RankCoord c = map.coord(5);
  CHECK(c.tp == 1);
  CHECK(c.ep == 0);
  CHECK(c.dp == 1);
  CHECK(c.attn_dp == 2);
  CHECK(map.ep_group_of(5) == std::vector<GpuId>{5, 7});
  CHECK(map.tp_group_of(5) == std::vector<GpuId>{4, 5});
  CHECK(map.dp_group_of(5) == std::vector<GpuId>{1, 3, 5, 7});
  // ETP = TP = 2: the experts of EP rank e are split over the TP pair.
  const RankMapping map2(m, make(2, 1, 2, 2, Convention::kOrthogonal, 2));
  CHECK(map2.etp_group_of(5) == std::vector<GpuId>{4, 5});
  CHECK(map2.ep_group_of(5) == std::vector<GpuId>{5, 7});
  CHECK(map2.expert_dp() == 2);
}

TEST_CASE("Groups partition every stage, for many strategies and both conventions", "[workloads][strategy][mapping]") {
  const ModelSpec m = model_preset("qwen3-30b-a3b");  // 48 layers, 32 heads, 4 KV heads, 128 experts
  struct Case {
    std::int64_t tp, pp, ep, dp, etp;
    Convention conv;
    const char* order;
  };
  const Case cases[] = {
      {2, 2, 8, 4, 1, Convention::kFolded, "tp-ep-dp-pp"},   {4, 3, 4, 2, 2, Convention::kFolded, "tp-ep-dp-pp"},
      {1, 4, 4, 4, 1, Convention::kFolded, "pp-tp-ep-dp"},   {2, 2, 2, 2, 1, Convention::kFolded, "tp-dp-ep-pp"},
      {2, 2, 4, 2, 1, Convention::kOrthogonal, "tp-ep-dp-pp"}, {4, 2, 2, 1, 2, Convention::kOrthogonal, "tp-ep-dp-pp"},
      {2, 4, 2, 2, 2, Convention::kOrthogonal, "pp-dp-ep-tp"}, {1, 1, 16, 2, 1, Convention::kOrthogonal, "ep-tp-dp-pp"},
  };
  for (const Case& k : cases) {
    Strategy s = make(k.tp, k.pp, k.ep, k.dp, k.conv, k.etp);
    s.order = parse_rank_order(k.order, "test");
    INFO(s.describe());
    REQUIRE(validate(m, s, s.world_size()).ok());
    const RankMapping map(m, s);
    CHECK(map.world_size() == s.world_size());
    std::set<GpuId> all;
    for (std::int64_t st = 0; st < s.pp; ++st) {
      const auto stage = map.gpus_of_stage(st);
      CHECK(static_cast<std::int64_t>(stage.size()) == map.ranks_per_stage());
      all.insert(stage.begin(), stage.end());
      // TP groups and EP groups each cover the stage exactly once.
      std::multiset<GpuId> tp_cover;
      for (const auto& g : map.tp_groups_of_stage(st)) {
        CHECK(static_cast<std::int64_t>(g.size()) == s.tp);
        tp_cover.insert(g.begin(), g.end());
      }
      CHECK(std::vector<GpuId>(tp_cover.begin(), tp_cover.end()) == stage);
      std::multiset<GpuId> ep_cover;
      for (const auto& g : map.ep_groups_of_stage(st)) {
        CHECK(static_cast<std::int64_t>(g.size()) == s.ep);
        ep_cover.insert(g.begin(), g.end());
      }
      CHECK(std::vector<GpuId>(ep_cover.begin(), ep_cover.end()) == stage);
    }
    CHECK(static_cast<std::int64_t>(all.size()) == s.world_size());
    for (GpuId g = 0; g < map.world_size(); ++g) {
      const RankCoord c = map.coord(g);
      const auto tp = map.tp_group_of(g);
      const auto ep = map.ep_group_of(g);
      const auto pp = map.pp_peers_of(g);
      CHECK(tp[static_cast<std::size_t>(c.tp)] == g);
      CHECK(ep[static_cast<std::size_t>(c.ep)] == g);
      CHECK(pp[static_cast<std::size_t>(c.pp)] == g);
      CHECK(map.etp_group_of(g)[static_cast<std::size_t>(c.etp)] == g);
      CHECK(map.edp_group_of(g)[static_cast<std::size_t>(c.edp)] == g);
      CHECK(map.dp_group_of(g)[static_cast<std::size_t>(c.attn_dp)] == g);
      for (GpuId peer : ep) CHECK(map.stage_of(peer) == c.pp);
    }
  }
}

TEST_CASE("Rank order: parsing, TP innermost by default, inconsistent folded orders", "[workloads][strategy]") {
  CHECK(to_string(parse_rank_order("tp-dp-pp", "x")) == "tp-ep-dp-pp");
  CHECK(to_string(parse_rank_order("PP-TP-EP-DP", "x")) == "pp-tp-ep-dp");
  CHECK_THROWS_AS(parse_rank_order("tp-tp-dp-pp", "x"), InputError);
  CHECK_THROWS_WITH(parse_rank_order("tp-cp-dp-pp", "strategy.rank_order"), Catch::Contains("strategy.rank_order"));
  CHECK_THROWS_AS(parse_rank_order("tp-pp", "x"), InputError);
  // pp innermost: stage of rank g is g % pp.
  const ModelSpec m = model_preset("mixtral-8x7b");
  Strategy s = make(2, 2, 2, 2, Convention::kFolded);
  s.order = parse_rank_order("pp-tp-ep-dp", "x");
  const RankMapping map(m, s);
  for (GpuId g = 0; g < 8; ++g) CHECK(map.stage_of(g) == g % 2);
  // tp-pp-dp-ep: attention puts pp at stride TP = 2, experts at stride ETP = 1.
  s.order = parse_rank_order("tp-pp-dp-ep", "x");
  const ValidationResult r = validate(m, s, 8);
  CHECK(any_contains(r.violations, "inconsistent"));
}

TEST_CASE("Strategy options: defaults, auto DP, errors name the key", "[workloads][strategy][options]") {
  OptionRegistry reg;
  register_workload_model_options(reg);
  Config c(reg);
  // Default: TP 2, EP 8, DP auto = 64 / (2 x 1) = 32, micro-batches = PP = 1.
  const Strategy d = strategy_from_config(c, 64);
  CHECK(d.tp == 2);
  CHECK(d.ep == 8);
  CHECK(d.dp == 32);
  CHECK(d.microbatches == 1);
  CHECK(d.convention == Convention::kFolded);
  CHECK(validate(model_from_config(c), d, 64).ok());
  CHECK_THROWS_WITH(strategy_from_config(c, 63), Catch::Contains("strategy.dp"));

  c.set("strategy.convention", "orthogonal", "cli");
  c.set("strategy.pp", "2", "cli");
  const Strategy o = strategy_from_config(c, 64);
  CHECK(o.dp == 2);  // 64 / (2 x 2 x 8)
  CHECK(o.microbatches == 2);

  Config e(reg);
  e.set("strategy.layers_per_stage", "15,16,x", "scenario.ini:4");
  CHECK_THROWS_WITH(strategy_from_config(e, 64), Catch::Contains("strategy.layers_per_stage") &&
                                                     Catch::Contains("scenario.ini:4"));
  Config f(reg);
  f.set("strategy.layers_per_stage", "8,8,8,8", "cli");
  f.set("strategy.dp", "8", "cli");
  const Strategy fs = strategy_from_config(f, 64);
  CHECK(fs.pp == 4);  // taken from the split when strategy.pp is not set
  CHECK(fs.layers_per_stage == std::vector<std::int64_t>{8, 8, 8, 8});
  CHECK_THROWS_WITH(c.set("strategy.convention", "both", "cli"), Catch::Contains("orthogonal"));
  CHECK_THROWS_WITH(c.set("strategy.tp", "-1", "cli"), Catch::Contains("strategy.tp"));
}
