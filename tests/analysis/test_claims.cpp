// Claims verification (analysis/claims.hpp, `moesim verify`): verdicts on the
// seed scenarios against hand calculations, tolerance and direction
// semantics, the sensitivity analysis, input errors and the exit codes.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include "../cli/cli_runner.hpp"
#include "analysis/claims.hpp"
#include "apps/commands.hpp"
#include "temp_dir.hpp"

namespace {

using moesim::ClaimResult;
using moesim::ClaimVerdict;
using moesim::Config;
using moesim::PerformanceMetrics;
using moesim::VerifyReport;

std::string seed_path(const std::string& name) {
  return moesim::testing::source_dir() + "/experiments/seeds/" + name;
}

Config seed_config(const std::string& name) {
  Config c(moesim::cli::scenario_registry());
  c.load_ini(seed_path(name));
  return c;
}

const ClaimResult& claim(const VerifyReport& r, const std::string& name) {
  for (const ClaimResult& c : r.claims) {
    if (c.name == name) return c;
  }
  FAIL("no claim " << name);
  throw std::logic_error("unreachable");
}

// Arithmetic and memory claims need no simulation: no PerformanceFn.
VerifyReport verify_arithmetic(const Config& c) {
  moesim::VerifyOptions o;
  o.sensitivity = false;
  return moesim::verify_claims(c, {}, {}, o);
}

}  // namespace

TEST_CASE("seed 001 corrected: 8 GPUs claimed, 8 folded, 32 orthogonal", "[claims][seeds]") {
  Config c = seed_config("001_f9ce6b8b52b33a9d_corrected.ini");
  const VerifyReport r = verify_arithmetic(c);
  const ClaimResult& g = claim(r, "gpus");
  // Hand calculation, TP 2, PP 2, EP 4, DP 2:
  //   folded     world = TP x PP x DP      = 2 x 2 x 2     = 8
  //   orthogonal world = TP x PP x EP x DP = 2 x 2 x 4 x 2 = 32
  CHECK(g.claimed == 8.0);
  CHECK(g.readings.at("folded") == 8.0);
  CHECK(g.readings.at("orthogonal") == 32.0);
  // The scenario reads the document's module count as folded: the claim holds.
  CHECK(g.verdict == ClaimVerdict::kHolds);
  CHECK_THAT(g.explanation, Catch::Contains("= 32 under orthogonal") && Catch::Contains("= 8 under folded"));

  // Under the orthogonal convention the same claim fails, 32 against 8.
  c.set("strategy.convention", "orthogonal", "test");
  const VerifyReport ro = verify_arithmetic(c);
  const ClaimResult& go = claim(ro, "gpus");
  CHECK(go.value == 32.0);
  CHECK(go.verdict == ClaimVerdict::kFails);
  CHECK_THAT(go.explanation, Catch::Contains("it would hold under folded"));
  // 32 GPUs do not fit the 16-GPU cluster: the plan is invalid, the
  // arithmetic verdicts are still given.
  CHECK_FALSE(ro.plan_valid);

  // 64 experts / EP 4 = 16 per GPU; 16 layers / PP 2 = 8 per stage; the
  // mapping's 2 GPUs per stage is 8 / 2 = 4 folded.
  CHECK(claim(r, "experts_per_gpu").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "layers_per_stage").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "gpus_per_stage").value == 4.0);
  CHECK(claim(r, "gpus_per_stage").verdict == ClaimVerdict::kFails);
}

TEST_CASE("seed 001 original: 16 claimed, the review's 64, neither convention agrees", "[claims][seeds]") {
  const VerifyReport r = verify_arithmetic(seed_config("001_f9ce6b8b52b33a9d_original.ini"));
  // TP 4, PP 4, EP 16, DP 2: folded 4 x 4 x 2 = 32 (and EP 16 does not divide
  // TP x DP = 8), orthogonal 4 x 4 x 16 x 2 = 512.
  const ClaimResult& g = claim(r, "gpus");
  CHECK(g.readings.at("folded") == 32.0);
  CHECK(g.readings.at("orthogonal") == 512.0);
  CHECK(g.verdict == ClaimVerdict::kFails);
  CHECK_THAT(g.explanation, Catch::Contains("does not divide TP x DP = 8"));
  const ClaimResult& review = claim(r, "gpus_review");
  CHECK(review.claimed == 64.0);
  CHECK(review.verdict == ClaimVerdict::kFails);
  CHECK_FALSE(r.plan_valid);
}

TEST_CASE("seed 004 original: 2048 GPUs against the 512 claimed; performance unchecked", "[claims][seeds]") {
  // A performance function that must not be called: the plan is invalid.
  bool called = false;
  const moesim::PerformanceFn perf = [&](const Config&, const std::string&) {
    called = true;
    return PerformanceMetrics{};
  };
  moesim::VerifyOptions o;
  o.sensitivity = false;
  const VerifyReport r = moesim::verify_claims(seed_config("004_8b1ccf3b32422c8d_original.ini"), perf, {}, o);
  const ClaimResult& g = claim(r, "gpus");
  // 8 x 4 x 16 x 4 = 2048 (orthogonal, the scenario's), 8 x 4 x 4 = 128 folded.
  CHECK(g.claimed == 512.0);
  CHECK(g.value == 2048.0);
  CHECK(g.readings.at("folded") == 128.0);
  CHECK(g.verdict == ClaimVerdict::kFails);
  CHECK(g.difference_text == "+1536 (x4)");
  CHECK(claim(r, "gpus_review").verdict == ClaimVerdict::kHolds);  // the correction's 2048
  // 64 / 16 = 4 experts, 1024 / 8 = 128 hidden, 16 / 8 = 2 heads per rank.
  CHECK(claim(r, "experts_per_gpu").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "hidden_per_tp_rank").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "heads_per_tp_rank").verdict == ClaimVerdict::kHolds);
  CHECK_FALSE(r.plan_valid);
  CHECK_FALSE(called);
  const ClaimResult& tput = claim(r, "throughput_sequences_per_s");
  CHECK(tput.verdict == ClaimVerdict::kUnchecked);
  CHECK_THAT(tput.explanation, Catch::StartsWith("unchecked: the plan is invalid: world size"));
  CHECK(r.any_fails());
}

TEST_CASE("seed 004 corrected: 4 x 4 x 8 x 4 = 512 holds orthogonal, 64 folded", "[claims][seeds]") {
  const VerifyReport r = verify_arithmetic(seed_config("004_8b1ccf3b32422c8d_corrected.ini"));
  const ClaimResult& g = claim(r, "gpus");
  CHECK(g.value == 512.0);
  CHECK(g.readings.at("folded") == 64.0);
  CHECK(g.verdict == ClaimVerdict::kHolds);
  CHECK(r.plan_valid);
  // Training-mode weights per GPU (stage 0 of 4: layers 0-3), hand calculation:
  //   experts  4 layers x 64/8 experts x 3 x 1024 x 9472 = 931,135,488
  //   attention 4 x (4 x 1024 x 1024 / TP 4 + 2 x 1024 norms) = 4,202,496
  //   routers  4 x 1024 x 64 = 262,144 (replicated)
  //   embedding 32000 / 4 x 1024 = 8,192,000
  //   params = 943,792,128 -> weights 1,887,584,256 B at 2 B each
  const ClaimResult& w = claim(r, "memory_weights");
  CHECK(w.value == Approx(1887584256.0));
  CHECK(w.verdict == ClaimVerdict::kFails);  // claimed 117.2 MB
  // Adam with fp32 master weights: 12 B per parameter.
  CHECK(claim(r, "memory_optimizer_states").value == Approx(943792128.0 * 12.0));
}

TEST_CASE("seed 000 memory claims against a hand calculation", "[claims][seeds]") {
  const VerifyReport r = verify_arithmetic(seed_config("000_09a2f80e503a8890_corrected.ini"));
  // TP 1, PP 1, EP 8 (folded over DP 32): every GPU holds all 16 layers, the
  // attention and embeddings replicated, 16 / 8 = 2 experts per layer.
  // Expert weights: 16 layers x 2 experts x 3 x 4096 x 2880 x 2 B
  //               = 16 x 2 x 35,389,440 x 2 = 2,264,924,160 B (2.26 GB)
  const ClaimResult& e = claim(r, "memory_expert_weights");
  CHECK(e.value == Approx(2264924160.0));
  CHECK(e.claimed == Approx(0.62e9));
  CHECK(e.verdict == ClaimVerdict::kFails);
  // Non-expert weights per layer: q 4096 x 4096 + k, v 2 x 4096 x 1024 +
  // o 4096 x 4096 = 41,943,040; norms 2 x 4096 = 8,192; router 4096 x 16 =
  // 65,536 -> 42,016,768 x 16 layers = 672,268,288; embedding and LM head
  // 2 x 32000 x 4096 = 262,144,000 + final norm 4096.
  // Total 934,416,384 params x 2 B = 1,868,832,768 B.
  const ClaimResult& ne = claim(r, "memory_non_expert_weights");
  CHECK(ne.value == Approx(1868832768.0));
  CHECK(ne.verdict == ClaimVerdict::kFails);  // claimed 0.62 GB
  // The whole model: 16 x 16 x 3 x 4096 x 2880 = 9,059,696,640 expert params
  // + 934,416,384 others = 9,994,113,024, within 5 % of the "10B" claimed.
  const ClaimResult& tp = claim(r, "total_params");
  CHECK(tp.value == 9994113024.0);
  CHECK(tp.verdict == ClaimVerdict::kHolds);
  // An inference deployment holds no optimizer states; the claimed 10 GB
  // fails, and the explanation gives the training figure: 12 B x (934,416,384
  // + 16 x 2 x 3 x 4096 x 2880 = 1,132,462,080) params = 24.8 GB.
  const ClaimResult& opt = claim(r, "memory_optimizer_states");
  CHECK(opt.value == 0.0);
  CHECK(opt.verdict == ClaimVerdict::kFails);
  CHECK_THAT(opt.explanation, Catch::Contains("24.8 GB"));
  // The claimed memory items sum to the claimed total: 0.62 + 6 + 10 + 2 +
  // 0.62 = 19.24 GB, 30 % of 64 GB; moesim's total is its own breakdown.
  CHECK(claim(r, "memory_per_gpu").claimed == Approx(19.24e9));
  // "Expert groups": 8 (as EP shards) holds; the proof's 4 holds too, as the
  // 32 / 8 = 4 all-to-all groups; 4 GPUs hold each shard (32 / 8).
  CHECK(claim(r, "expert_groups").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "expert_groups_review").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "gpus_per_expert_group").value == 4.0);
  CHECK(claim(r, "experts_per_gpu").verdict == ClaimVerdict::kHolds);         // 16 / 8 = 2
  CHECK(claim(r, "experts_per_gpu_review").verdict == ClaimVerdict::kFails);  // the proof's 4
  CHECK(claim(r, "expert_instances").value == 256.0);                         // 16 x 16
}

TEST_CASE("performance claims: directions, tolerance, targets", "[claims]") {
  Config c = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  // A stand-in simulator with known figures (the verdict logic is under test).
  const moesim::PerformanceFn perf = [](const Config&, const std::string&) {
    PerformanceMetrics p;
    p.mode = "batch";
    p.latency_s = 0.100;
    p.sequences_per_s = 1280.0;
    p.tokens_per_s = 5.0e6;
    p.ttft_s = 0.1;
    p.gpu_utilization = 0.40;
    p.expert_load_cv = 0.02;
    return p;
  };
  c.set("claims.throughput_sequences_per_s", "1300", "test");  // 1280 >= 1300 - 5 % (1235): holds
  c.set("claims.latency_s", "0.090", "test");                   // 0.100 > 0.090 + 5 % (0.0945): fails
  c.set("claims.latency_s_tolerance", "0.011", "test");         // absolute: 0.100 <= 0.101: holds
  c.set("claims.gpu_utilization_percent", "95%", "test");       // 40 < 95 - 4.75: fails
  c.set("claims.throughput_tokens_per_ms", "4000", "test");     // 5000 tokens/ms >= 4000: holds
  c.set("claims.throughput_tokens_per_ms_target", "6000", "test");  // 5000 < 5700: fails
  c.set("claims.expert_load_variance_percent", "1", "test");   // CV 2 % > 1.05 %: fails
  c.set("claims.tpot_s", "0.05", "test");                       // batch mode: not measured
  moesim::VerifyOptions o;
  o.sensitivity = false;
  const VerifyReport r = moesim::verify_claims(c, perf, {}, o);
  CHECK(claim(r, "throughput_sequences_per_s").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "latency_s").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "gpu_utilization_percent").verdict == ClaimVerdict::kFails);
  CHECK(claim(r, "gpu_utilization_percent").value == Approx(40.0));
  CHECK(claim(r, "throughput_tokens_per_ms").value == Approx(5000.0));
  CHECK(claim(r, "throughput_tokens_per_ms").verdict == ClaimVerdict::kHolds);
  CHECK(claim(r, "throughput_tokens_per_ms_target").verdict == ClaimVerdict::kFails);
  CHECK(claim(r, "expert_load_variance_percent").verdict == ClaimVerdict::kFails);
  CHECK(claim(r, "tpot_s").verdict == ClaimVerdict::kUnchecked);
  c.set("claims.latency_s_tolerance", "5%", "test");
  CHECK(claim(moesim::verify_claims(c, perf, {}, o), "latency_s").verdict == ClaimVerdict::kFails);
}

TEST_CASE("sensitivity: which assumed input flips a performance verdict", "[claims]") {
  Config c = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  // Stand-in simulator: latency proportional to the prompt length,
  // 1e-4 s per token (the analysis only compares verdicts).
  const moesim::PerformanceFn perf = [](const Config& cfg, const std::string&) {
    PerformanceMetrics p;
    p.mode = "batch";
    p.latency_s = 1e-4 * static_cast<double>(cfg.get_int("workload.prompt_tokens"));
    return p;
  };
  c.set("claims.latency_s", "0.5", "test");  // 4096 tokens: 0.41 s holds; x2 = 0.82 s fails
  c.set("claims.throughput_sequences_per_s", "1", "test");  // not measured by this stand-in: unchecked
  moesim::VerifyOptions o;
  const VerifyReport r = moesim::verify_claims(c, perf, {}, o);
  const ClaimResult& lat = claim(r, "latency_s");
  REQUIRE(lat.verdict == ClaimVerdict::kHolds);
  const moesim::SensitivityResult* prompt = nullptr;
  for (const auto& s : lat.sensitivity) {
    if (s.key == "workload.prompt_tokens") prompt = &s;
  }
  REQUIRE(prompt != nullptr);
  CHECK(prompt->tried == std::vector<std::string>{"2048", "8192"});
  CHECK(prompt->flips);
  CHECK_THAT(prompt->flips_at, Catch::StartsWith("8192"));
  // The GPU preset and the routing do not change this stand-in: no flip.
  for (const auto& s : lat.sensitivity) {
    if (s.key != "workload.prompt_tokens") CHECK_FALSE(s.flips);
  }
  // workload.batch is stated by the document (not assumed): never varied.
  for (const auto& s : lat.sensitivity) CHECK(s.key != "workload.batch");
}

TEST_CASE("claims input errors name the key", "[claims]") {
  Config c = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  c.set("claims.memory_per_gpu_percent", "lots", "test");
  CHECK_THROWS_WITH(moesim::claims_from_config(c), Catch::Contains("claims.memory_per_gpu_percent"));
  Config d = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  d.set("claims.latency_s_tolerance", "abc", "test");
  CHECK_THROWS_WITH(moesim::claims_from_config(d), Catch::Contains("claims.latency_s_tolerance"));
  Config e = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  e.set("assumptions.assumed", "model.layerz", "test");
  CHECK_THROWS_WITH(moesim::assumptions_from_config(e), Catch::Contains("model.layerz") && Catch::Contains("model.layers"));
  Config f = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  f.set("assumptions.assumed", "model.layers", "test");  // also in assumptions.document
  CHECK_THROWS_WITH(moesim::assumptions_from_config(f), Catch::Contains("listed twice"));
}

TEST_CASE("assumptions table: document vs assumed, unlisted keys counted as assumed", "[claims]") {
  Config c = seed_config("004_8b1ccf3b32422c8d_corrected.ini");
  c.set("memory.reserve", "1GiB", "test");  // set, but in neither list
  const auto a = moesim::assumptions_from_config(c);
  auto find = [&](const std::string& key) -> const moesim::AssumptionRecord* {
    for (const auto& r : a) {
      if (r.key == key) return &r;
    }
    return nullptr;
  };
  REQUIRE(find("strategy.tp") != nullptr);
  CHECK(find("strategy.tp")->source == "document");
  CHECK(find("strategy.tp")->value == "4");
  REQUIRE(find("workload.prompt_tokens") != nullptr);
  CHECK(find("workload.prompt_tokens")->source == "assumed");
  REQUIRE(find("memory.reserve") != nullptr);
  CHECK(find("memory.reserve")->source == "assumed");
  CHECK_FALSE(find("memory.reserve")->listed);
  // JSON per DESIGN.md.
  const auto j = moesim::verify_report_json(verify_arithmetic(c));
  REQUIRE(j["claims"].is_array());
  for (const auto& cl : j["claims"]) {
    for (const char* k : {"name", "claimed", "value", "unit", "verdict", "explanation"}) CHECK(cl.contains(k));
  }
  for (const auto& as : j["assumptions"]) {
    CHECK((as["source"] == "document" || as["source"] == "assumed"));
  }
}

TEST_CASE("moesim verify exit codes: 1 failing claim, 0 all hold, 2 bad input", "[claims][cli]") {
  using moesim::testing::run_moesim;
  const std::string s004 = seed_path("004_8b1ccf3b32422c8d_original.ini");
  // An invalid plan (no simulation) with failing arithmetic claims.
  const auto fails = run_moesim("verify " + s004 + " --no-sensitivity");
  CHECK(fails.exit_code == 1);
  CHECK_THAT(fails.out, Catch::Contains("2048") && Catch::Contains("FAILS"));
  // Only claims that hold: keep the seed's plan, replace its claims.
  moesim::test::TempDir dir;
  const std::string holds = (dir.path() / "holds.ini").string();
  {
    std::string text = moesim::testing::read_file(seed_path("001_f9ce6b8b52b33a9d_corrected.ini"));
    text = text.substr(0, text.find("\n[claims]"));
    std::ofstream out(holds);
    out << text << "\n[claims]\ngpus = 8\nexperts_per_gpu = 16\nlayers_per_stage = 8\n";
  }
  const auto ok = run_moesim("verify " + holds + " --json");
  CHECK(ok.exit_code == 0);
  const auto j = nlohmann::json::parse(ok.out);
  CHECK(j["summary"]["holds"] == 3);
  CHECK(j["summary"]["fails"] == 0);
  // Bad input: an unknown claim key, a malformed value, a missing file, no file.
  const std::string bad = (dir.path() / "bad.ini").string();
  {
    std::ofstream out(bad);
    out << "[claims]\ngpuz = 8\n";
  }
  CHECK(run_moesim("verify " + bad).exit_code == 2);
  CHECK(run_moesim("verify " + holds + " --claims.gpus=eight").exit_code == 2);
  CHECK(run_moesim("verify " + (dir.path() / "missing.ini").string()).exit_code == 2);
  const auto none = run_moesim("verify");
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("needs a scenario file"));
  // The command line overrides a claim: 32 GPUs under folded fails.
  CHECK(run_moesim("verify " + holds + " --claims.gpus=32").exit_code == 1);
}
