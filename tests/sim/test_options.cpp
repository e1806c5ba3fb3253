// The option registry, INI scenario files and command-line overrides.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "sim/options.hpp"

using namespace moesim;

namespace {
OptionRegistry make_registry() {
  OptionRegistry r;
  r.add({.name = "strategy.tp", .type = OptionType::kInt, .unit = "", .default_value = "1",
         .help = "tensor parallel", .min = 1, .max = 1024, .choices = {}});
  r.add({.name = "gpu.memory", .type = OptionType::kBytes, .unit = "bytes", .default_value = "64GiB",
         .help = "capacity", .min = 1, .max = {}, .choices = {}});
  r.add({.name = "network.model", .type = OptionType::kChoice, .unit = "", .default_value = "flow",
         .help = "fidelity", .min = {}, .max = {}, .choices = {"analytical", "flow"}});
  r.add({.name = "topology.nic_bandwidth", .type = OptionType::kBandwidth, .unit = "bytes/s",
         .default_value = "", .help = "NIC", .min = {}, .max = {}, .choices = {}});
  return r;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("INI values and defaults resolve; the command line wins", "[options]") {
  const OptionRegistry reg = make_registry();
  Config c(reg);
  c.load_ini_text("# a scenario\n[strategy]\ntp = 4   # why: 4 GPUs per node\n\n[gpu]\nmemory=80GB\n", "s.ini");
  REQUIRE(c.get_int("strategy.tp") == 4);
  REQUIRE(c.source("strategy.tp") == "s.ini:3");
  REQUIRE(c.get_bytes("gpu.memory") == Bytes::gb(80));
  REQUIRE(c.get_string("network.model") == "flow");
  REQUIRE(c.source("network.model") == "default");
  REQUIRE_FALSE(c.has("topology.nic_bandwidth"));
  c.set("strategy.tp", "8", "command line");
  REQUIRE(c.get_int("strategy.tp") == 8);
  REQUIRE(c.source("strategy.tp") == "command line");
}

TEST_CASE("the resolved scenario renders as INI that loads back to the same values", "[options]") {
  const OptionRegistry reg = make_registry();
  Config c(reg);
  c.set("strategy.tp", "4", "command line");
  const std::string ini = c.to_ini();
  // Sorted by name; defaults included; unset optional options left out.
  CHECK(ini == "[gpu]\nmemory = 64GiB\n\n[network]\nmodel = flow\n\n[strategy]\ntp = 4\n\n");
  Config back(reg);
  back.load_ini_text(ini, "roundtrip.ini");
  CHECK(back.resolved() == c.resolved());
}

TEST_CASE("bad input names the file, line and what is allowed", "[options]") {
  const OptionRegistry reg = make_registry();
  Config c(reg);
  CHECK_THAT(error_of([&] { c.load_ini_text("[strategy]\ntp 4\n", "bad.ini"); }),
             Catch::Contains("bad.ini:2") && Catch::Contains("expected key = value"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[strategy\ntp = 4\n", "bad.ini"); }),
             Catch::Contains("bad.ini:1") && Catch::Contains("section"));
  CHECK_THAT(error_of([&] { c.load_ini_text("tp = 4\n", "bad.ini"); }),
             Catch::Contains("bad.ini:1") && Catch::Contains("before any [section]"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[strategy]\ntpp = 4\n", "bad.ini"); }),
             Catch::Contains("bad.ini:2") && Catch::Contains("unknown option 'strategy.tpp'") &&
                 Catch::Contains("did you mean 'strategy.tp'"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[network]\ntp = 4\n", "bad.ini"); }),
             Catch::Contains("did you mean 'strategy.tp'"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[strategy]\ntp = four\n", "bad.ini"); }),
             Catch::Contains("bad.ini:2") && Catch::Contains("strategy.tp") && Catch::Contains("integer"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[strategy]\ntp = 0\n", "bad.ini"); }),
             Catch::Contains("below the minimum 1"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[network]\nmodel = packet\n", "bad.ini"); }),
             Catch::Contains("not one of: analytical, flow"));
  CHECK_THAT(error_of([&] { c.load_ini_text("[gpu]\nmemory = 64 GiX\n", "bad.ini"); }),
             Catch::Contains("unknown unit"));
  CHECK_THAT(error_of([&] { c.load_ini("/nonexistent/scenario.ini"); }),
             Catch::Contains("cannot open scenario file '/nonexistent/scenario.ini'"));
  CHECK_THAT(error_of([&] { (void)c.get_bandwidth("topology.nic_bandwidth"); }),
             Catch::Contains("has no value"));
}

TEST_CASE("the registry rejects programming errors", "[options]") {
  OptionRegistry r = make_registry();
  REQUIRE_THROWS_AS(r.add({.name = "strategy.tp", .type = OptionType::kInt, .unit = "", .default_value = "1",
                           .help = "", .min = {}, .max = {}, .choices = {}}),
                    std::logic_error);
  REQUIRE_THROWS_AS(r.add({.name = "x.y", .type = OptionType::kInt, .unit = "", .default_value = "z",
                           .help = "", .min = {}, .max = {}, .choices = {}}),
                    std::logic_error);
  REQUIRE(edit_distance("kitten", "sitting") == 3);
  REQUIRE(r.closest("completely.different.thing").empty());
}
