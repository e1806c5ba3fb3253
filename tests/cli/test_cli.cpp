// CLI smoke tests through the real binary: help, version, bad input.
#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using moesim::testing::run_moesim;
using moesim::testing::source_dir;

TEST_CASE("moesim --help lists every subcommand", "[cli]") {
  const auto r = run_moesim("--help");
  REQUIRE(r.exit_code == 0);
  for (const char* c : {"run", "verify", "sweep", "collective", "topology", "presets"}) {
    CHECK_THAT(r.out, Catch::Contains(std::string("  ") + c));
  }
  REQUIRE(run_moesim("").exit_code == 0);
}

TEST_CASE("every subcommand has --help", "[cli]") {
  for (const char* c : {"run", "verify", "sweep", "collective", "topology", "presets"}) {
    const auto r = run_moesim(std::string(c) + " --help");
    INFO(c << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Usage: moesim " + std::string(c)));
  }
}

TEST_CASE("moesim --version prints the version and git commit", "[cli]") {
  const auto r = run_moesim("--version");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("moesim 0.") && Catch::Contains("(git "));
}

TEST_CASE("an unknown command or option exits 2 with a suggestion", "[cli]") {
  auto r = run_moesim("rnu");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown command 'rnu'") && Catch::Contains("did you mean 'run'"));

  r = run_moesim("run --strategy.tpp=4");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown option '--strategy.tpp'") && Catch::Contains("--strategy.tp"));

  r = run_moesim("run --jsno");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown option") && Catch::Contains("did you mean '--json'"));
}

TEST_CASE("a missing scenario file exits 2 and names the file", "[cli]") {
  for (const char* c : {"run", "verify"}) {
    const auto r = run_moesim(std::string(c) + " /nonexistent/plan.ini");
    INFO(c);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("cannot open scenario file '/nonexistent/plan.ini'"));
  }
}

TEST_CASE("a malformed INI line exits 2 with file and line", "[cli]") {
  const std::string dir = source_dir() + "/tests/cli/data/";
  auto r = run_moesim("run " + dir + "malformed.ini");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("malformed.ini:4") && Catch::Contains("expected key = value"));

  r = run_moesim("run " + dir + "unknown_key.ini");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown_key.ini:3") && Catch::Contains("did you mean 'run.seed'"));

  r = run_moesim("run " + dir + "bad_value.ini");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("bad_value.ini:2") && Catch::Contains("run.seed"));
}

TEST_CASE("a wrong type or out-of-range value on the command line exits 2", "[cli]") {
  auto r = run_moesim("run --run.seed=abc");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("run.seed") && Catch::Contains("integer"));
  r = run_moesim("run --run.seed=-5");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("below the minimum 0"));
  r = run_moesim("run --workload.kind=interactive");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("not one of: batch, serving"));
}

TEST_CASE("moesim presets --options lists every option with its help", "[cli]") {
  const auto r = run_moesim("presets --options run");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("--run.seed") && Catch::Contains("integer"));
  CHECK(run_moesim("presets --options nosuchsection").exit_code == 2);
}
