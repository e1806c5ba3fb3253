// `moesim run` in serving mode and `moesim sweep`, through the real binary.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "tests/cli/cli_runner.hpp"

using moesim::testing::run_moesim;
using nlohmann::json;

namespace {
// A small cluster (8 GPUs, 2 engines of 2 replicas) keeps each run short.
const std::string kSmall = " --topology.nodes=2 --strategy.ep=4 --workload.output_tokens=32 ";
}  // namespace

TEST_CASE("moesim run: serving is the default mode and its JSON has the DESIGN.md keys", "[serving][cli]") {
  const auto r = run_moesim("run --json --workload.requests=60" + kSmall);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["mode"] == "serving");
  for (const char* k : {"seed", "gpus", "events", "wall_s", "requests_per_s", "goodput", "input_tokens_per_s"}) {
    INFO(k);
    CHECK(j.contains(k));
  }
  for (const char* k : {"tp", "pp", "dp", "ep", "etp", "microbatches", "convention"}) CHECK(j["strategy"].contains(k));
  for (const char* k : {"tokens_per_s", "output_tokens_per_s", "sequences_per_s"}) {
    CHECK(j["throughput"][k].is_number());
    CHECK(j["throughput"][k].get<double>() > 0.0);
  }
  for (const char* s : {"ttft_s", "tpot_s"}) {
    for (const char* k : {"mean", "p50", "p90", "p99"}) CHECK(j[s][k].is_number());
    CHECK(j[s]["p50"].get<double>() <= j[s]["p99"].get<double>());
  }
  for (const char* k : {"max", "capacity", "breakdown"}) CHECK(j["memory_per_gpu_bytes"].contains(k));
  CHECK(j["memory_per_gpu_bytes"]["breakdown"]["kv_cache"].get<double>() > 0.0);
  CHECK(j["requests"] == 60);
}

TEST_CASE("moesim run: the report shows throughput and TTFT first; batch mode still works", "[serving][cli]") {
  const auto r = run_moesim("run --workload.requests=40" + kSmall);
  REQUIRE(r.exit_code == 0);
  const auto throughput = r.out.find("Throughput");
  const auto ttft = r.out.find("TTFT");
  CHECK(throughput != std::string::npos);
  CHECK(ttft != std::string::npos);
  CHECK(throughput < 400);  // on the first screen
  const auto b = run_moesim("run --json --workload.kind=batch --workload.batch=4" + kSmall);
  REQUIRE(b.exit_code == 0);
  CHECK(json::parse(b.out)["mode"] == "batch");
}

TEST_CASE("moesim sweep over rates: rows, table and the highest rate meeting the SLO", "[serving][cli][sweep]") {
  const auto r = run_moesim("sweep --json --vary workload.rate=5,2000 --workload.requests=80 --slo.ttft=200ms" + kSmall);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  REQUIRE(j["rows"].size() == 2);
  CHECK(j["rows"][0]["workload.rate"] == 5);
  CHECK(j["rows"][1]["workload.rate"] == 2000);
  for (const auto& row : j["rows"]) {
    CHECK(row["ok"] == true);
    CHECK(row["ttft_s"]["p99"].is_number());
    CHECK(row["tpot_s"]["p50"].is_number());
    CHECK(row["goodput"].is_number());
  }
  // 5 requests/s is far below capacity; 2000/s queues for seconds.
  CHECK(j["rows"][0]["meets_slo"] == true);
  CHECK(j["rows"][1]["meets_slo"] == false);
  CHECK(j["max_rate_meeting_slo"][0]["rate"] == 5.0);

  const auto t = run_moesim("sweep --vary workload.rate=5,2000 --workload.requests=80 --slo.ttft=200ms" + kSmall);
  REQUIRE(t.exit_code == 0);
  CHECK_THAT(t.out, Catch::Contains("TTFT p50"));
  CHECK_THAT(t.out, Catch::Contains("goodput"));
  CHECK_THAT(t.out, Catch::Contains("Highest workload.rate meeting the SLO in steady state: 5 requests/s"));
}

TEST_CASE("moesim sweep: several --vary make a cartesian product; any key can vary", "[serving][cli][sweep]") {
  const auto r = run_moesim(
      "sweep --json --vary workload.rate=5,10 --vary scheduler.router=round_robin,least_outstanding_tokens "
      "--workload.requests=30" + kSmall);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  REQUIRE(j["rows"].size() == 4);
  CHECK(j["rows"][1]["workload.rate"] == 5);  // the first --vary varies slowest
  CHECK(j["rows"][1]["scheduler.router"] == "least_outstanding_tokens");
  CHECK(j["rows"][2]["workload.rate"] == 10);
}

TEST_CASE("moesim sweep: bad keys and values are exit 2 with a message", "[serving][cli][sweep]") {
  auto r = run_moesim("sweep --vary workload.rat=1,2");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown scenario key 'workload.rat'"));
  CHECK_THAT(r.err, Catch::Contains("workload.rate"));
  r = run_moesim("sweep --vary workload.rate=1,fast");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("workload.rate=fast"));
  r = run_moesim("sweep --vary workload.rate");
  CHECK(r.exit_code == 2);
  r = run_moesim("sweep");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--vary"));
  r = run_moesim("sweep --search plans");
  CHECK(r.exit_code == 2);
}

TEST_CASE("moesim run: a bad row in a request trace is exit 2 naming the line", "[serving][cli][trace]") {
  const std::string path = "/tmp/moesim_cli_trace_" + std::to_string(::getpid()) + ".csv";
  {
    std::ofstream f(path);
    f << "arrival_s,prompt_tokens,output_tokens\n0.0,100,10\n0.5,abc,10\n";
  }
  const auto r = run_moesim("run --workload.arrival=trace --workload.trace=" + path + kSmall);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(path + ":3"));
  {
    std::ofstream f(path);
    f << "0.0,100,10\n0.5,200,10\n1.0,50,5\n";
  }
  const auto ok = run_moesim("run --json --workload.arrival=trace --workload.trace=" + path + kSmall);
  REQUIRE(ok.exit_code == 0);
  CHECK(json::parse(ok.out)["requests"] == 3);
  std::remove(path.c_str());
}
