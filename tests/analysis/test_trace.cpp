// Chrome trace writer: the JSON parses back with the Trace Event Format
// fields, times are exact, events are sorted, and complete events on every
// thread nest (Perfetto's requirement).

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/chrome_trace.hpp"
#include "sim/options.hpp"
#include "sim/random.hpp"
#include "sim/units.hpp"
#include "temp_dir.hpp"

using namespace moesim;
using namespace moesim::analysis;
using namespace moesim::literals;
using moesim::test::read_bytes;
using moesim::test::TempDir;

namespace {

const nlohmann::json* find_event(const nlohmann::json& events, const std::string& name, const std::string& ph) {
  for (const auto& e : events) {
    if (e.at("name") == name && e.at("ph") == ph) return &e;
  }
  return nullptr;
}

/// Independent check of Perfetto's rule: on each (pid, tid), complete events
/// either nest or are disjoint. Times in integer ns as Perfetto reads them
/// (llround(ts_us * 1000)). Returns the number of violations.
int nesting_violations(const nlohmann::json& events) {
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::pair<std::int64_t, std::int64_t>>> by_thread;
  for (const auto& e : events) {
    if (e.at("ph") != "X") continue;
    const auto ts = std::llround(e.at("ts").get<double>() * 1000.0);
    const auto dur = std::llround(e.at("dur").get<double>() * 1000.0);
    by_thread[{e.at("pid").get<std::int64_t>(), e.at("tid").get<std::int64_t>()}].push_back({ts, ts + dur});
  }
  int violations = 0;
  for (auto& [thread, spans] : by_thread) {
    std::stable_sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    std::vector<std::int64_t> open_ends;
    for (const auto& [start, end] : spans) {
      while (!open_ends.empty() && open_ends.back() <= start) open_ends.pop_back();
      if (!open_ends.empty() && end > open_ends.back()) ++violations;
      open_ends.push_back(end);
    }
  }
  return violations;
}

}  // namespace

TEST_CASE("trace times: picoseconds to exact decimal microseconds", "[results][trace]") {
  CHECK(round_ps_to_ns(0) == 0);
  CHECK(round_ps_to_ns(499) == 0);
  CHECK(round_ps_to_ns(500) == 1);  // halves round up
  CHECK(round_ps_to_ns(1'234'567) == 1235);
  CHECK(round_ps_to_ns(-1) == 0);
  CHECK(round_ps_to_ns(-501) == -1);
  CHECK(format_ns_as_us(0) == "0");
  CHECK(format_ns_as_us(1) == "0.001");
  CHECK(format_ns_as_us(1010) == "1.01");
  CHECK(format_ns_as_us(1235) == "1.235");
  CHECK(format_ns_as_us(2000) == "2");
  CHECK(format_ns_as_us(-1500) == "-1.5");
  CHECK(format_ns_as_us(3'600'000'000'000) == "3600000000");  // one hour: 3.6e9 us, no exponent
}

TEST_CASE("trace: JSON object format with metadata, complete, counter and instant events", "[results][trace]") {
  ChromeTrace trace;
  trace.set_process_name(gpu_pid(0), "GPU 0");
  trace.set_process_name(gpu_pid(1), "GPU 1");
  trace.set_process_name(kLinksPid, "links");
  trace.set_process_sort_index(kLinksPid, 1000);
  const TraceTrack compute0{gpu_pid(0), 0};
  const TraceTrack comm0{gpu_pid(0), 1};
  const TraceTrack compute1{gpu_pid(1), 0};
  trace.set_thread_name(compute0, "compute");
  trace.set_thread_name(comm0, "comm");
  trace.set_thread_sort_index(comm0, 1);
  trace.set_metadata("moesim_version", "0.1.0");
  trace.set_metadata("seed", 42);

  // Added out of time order on purpose.
  trace.add_complete(compute1, "ffn", "compute", Time::at(3_ms), 250_us, {{"layer", 3}});
  trace.add_complete(compute0, "attn", "compute", Time::at(2_us), 1500_ns);
  trace.add_complete(compute0, "layer0", "layer", Time::zero(), 10_us);
  // 1,234,567 ps = 1234.567 ns -> 1235 ns; end 3,234,967 ps -> 3235 ns; so
  // ts 1.235 us and dur 2 us.
  trace.add_complete(comm0, "a2a", "all_to_all", Time::at(Duration::ps(1'234'567)), Duration::ps(2'000'400));
  trace.add_counter(kLinksPid, "gpu0->sw0", Time::at(5_us), {{"utilisation", 0.75}, {"GBps", 337.5}});
  trace.add_instant(compute0, "arrival", "request", Time::at(1_us), {{"id", 7}});
  // 8..12 us partially overlaps layer0 (0..10 us) on the same thread.
  trace.add_complete(compute0, "spill", "compute", Time::at(8_us), 4_us);
  CHECK(trace.size() == 7);

  const std::string text = trace.to_json_text();
  CHECK(text == trace.to_json_text());  // deterministic
  const nlohmann::json doc = nlohmann::json::parse(text);
  CHECK(doc.at("displayTimeUnit") == "ns");
  CHECK(doc.at("otherData").at("moesim_version") == "0.1.0");
  CHECK(doc.at("otherData").at("seed") == 42);
  const nlohmann::json& events = doc.at("traceEvents");
  REQUIRE(events.is_array());

  // Metadata first, then the events in time order.
  bool seen_event = false;
  double last_ts = -1.0;
  int metadata = 0;
  for (const auto& e : events) {
    REQUIRE(e.contains("name"));
    REQUIRE(e.contains("ph"));
    REQUIRE(e.contains("pid"));
    CHECK(e.at("pid").is_number_integer());
    if (e.at("ph") == "M") {
      CHECK_FALSE(seen_event);
      ++metadata;
      continue;
    }
    seen_event = true;
    REQUIRE(e.contains("ts"));
    CHECK(e.at("ts").get<double>() >= last_ts);
    last_ts = e.at("ts").get<double>();
    if (e.at("ph") == "X") {
      CHECK(e.contains("dur"));
      CHECK(e.contains("cat"));
      CHECK(e.contains("tid"));
    }
  }
  // 3 process names + 1 process sort index + 2 thread names + 1 thread sort
  // index + 1 overflow thread name.
  CHECK(metadata == 8);

  const auto* a2a = find_event(events, "a2a", "X");
  REQUIRE(a2a != nullptr);
  CHECK(a2a->at("ts").get<double>() == 1.235);
  CHECK(a2a->at("dur").get<double>() == 2.0);
  CHECK(a2a->at("cat") == "all_to_all");
  CHECK(a2a->at("pid") == 1);
  CHECK(a2a->at("tid") == 1);
  CHECK_FALSE(a2a->contains("args"));

  const auto* ffn = find_event(events, "ffn", "X");
  REQUIRE(ffn != nullptr);
  CHECK(ffn->at("ts").get<double>() == 3000.0);  // 3 ms
  CHECK(ffn->at("dur").get<double>() == 250.0);
  CHECK(ffn->at("pid") == 2);
  CHECK(ffn->at("args").at("layer") == 3);

  const auto* attn = find_event(events, "attn", "X");
  REQUIRE(attn != nullptr);
  CHECK(attn->at("ts").get<double>() == 2.0);
  CHECK(attn->at("dur").get<double>() == 1.5);
  CHECK(attn->at("tid") == 0);  // nests inside layer0: same thread

  const auto* counter = find_event(events, "gpu0->sw0", "C");
  REQUIRE(counter != nullptr);
  CHECK(counter->at("pid") == kLinksPid);
  CHECK(counter->at("ts").get<double>() == 5.0);
  CHECK(counter->at("args").at("utilisation").get<double>() == 0.75);
  CHECK(counter->at("args").at("GBps").get<double>() == 337.5);

  const auto* instant = find_event(events, "arrival", "i");
  REQUIRE(instant != nullptr);
  CHECK(instant->at("s") == "t");
  CHECK(instant->at("args").at("id") == 7);

  // The partial overlap went to an overflow thread of GPU 0, named after its
  // stream; tids 0 and 1 are taken, so it is tid 2.
  const auto* spill = find_event(events, "spill", "X");
  REQUIRE(spill != nullptr);
  CHECK(spill->at("pid") == 1);
  CHECK(spill->at("tid") == 2);
  bool named = false;
  for (const auto& e : events) {
    if (e.at("ph") == "M" && e.at("name") == "thread_name" && e.at("pid") == 1 && e.at("tid") == 2) {
      named = e.at("args").at("name") == "compute (overlap 1)";
    }
  }
  CHECK(named);
  CHECK(nesting_violations(events) == 0);
}

TEST_CASE("trace: many overlapping events still nest on every thread", "[results][trace]") {
  ChromeTrace trace;
  RandomStream rng = RandomStreams(2024).stream("trace-test");
  constexpr int kEvents = 600;
  for (int i = 0; i < kEvents; ++i) {
    const TraceTrack track{gpu_pid(static_cast<std::int64_t>(rng.below(3))), static_cast<std::int64_t>(rng.below(2))};
    // Sub-nanosecond starts and ends exercise the rounding too.
    const Time start = Time::at(Duration::ps(static_cast<std::int64_t>(rng.below(50'000'000))));
    const Duration dur = Duration::ps(static_cast<std::int64_t>(rng.below(5'000'000)));
    trace.add_complete(track, "op" + std::to_string(i), "compute", start, dur);
  }
  const nlohmann::json doc = nlohmann::json::parse(trace.to_json_text());
  int complete = 0;
  for (const auto& e : doc.at("traceEvents")) complete += e.at("ph") == "X" ? 1 : 0;
  CHECK(complete == kEvents);  // every event kept, once
  CHECK(nesting_violations(doc.at("traceEvents")) == 0);
}

TEST_CASE("trace: properly nested events stay on one thread after rounding", "[results][trace]") {
  // Parent 0.4 ps .. 1000.4 ns; child 0.6 ns .. 1000.4 ns; grandchild ends at
  // the same picosecond as both. Rounding each end (not each duration) keeps
  // them nested, so no overflow thread appears.
  ChromeTrace trace;
  const TraceTrack t{1, 0};
  trace.add_complete(t, "parent", "c", Time::at(Duration::ps(400)), Duration::ps(1'000'000));
  trace.add_complete(t, "child", "c", Time::at(Duration::ps(600)), Duration::ps(999'800));
  trace.add_complete(t, "grandchild", "c", Time::at(Duration::ps(999'900)), Duration::ps(500));
  trace.add_complete(t, "zero", "c", Time::at(Duration::ps(1'000'400)), Duration::zero());
  const nlohmann::json doc = nlohmann::json::parse(trace.to_json_text());
  for (const auto& e : doc.at("traceEvents")) CHECK(e.at("tid") == 0);
  CHECK(nesting_violations(doc.at("traceEvents")) == 0);
}

TEST_CASE("trace: bad events are refused, odd names still give valid JSON", "[results][trace]") {
  ChromeTrace trace;
  CHECK_THROWS_AS(trace.add_complete({1, 0}, "x", "c", Time::at(5_us), Duration::zero() - 1_ns), std::invalid_argument);
  CHECK_THROWS_AS(trace.add_complete({1, 0}, "x", "c", Time::zero(), 1_us, nlohmann::json::array({1})),
                  std::invalid_argument);
  CHECK_THROWS_AS(trace.add_counter(1, "c", Time::zero(), {{"v", std::nan("")}}), std::invalid_argument);
  CHECK(trace.size() == 0);
  trace.add_complete({1, 0}, "quote\" backslash\\ newline\n bad utf8 \xFF\xFE", "c", Time::zero(), 1_us);
  const nlohmann::json doc = nlohmann::json::parse(trace.to_json_text());
  const std::string name = doc.at("traceEvents").at(0).at("name");
  CHECK(name.rfind("quote\" backslash\\ newline\n bad utf8 ", 0) == 0);  // invalid bytes replaced
}

TEST_CASE("trace: written atomically to a file", "[results][trace]") {
  TempDir dir;
  ChromeTrace trace;
  trace.set_process_name(1, "GPU 0");
  trace.add_complete({1, 0}, "op", "compute", Time::zero(), 1_us);
  trace.write(dir / "timeline.json");
  CHECK(dir.entries() == std::vector<std::string>{"timeline.json"});
  const nlohmann::json doc = nlohmann::json::parse(read_bytes(dir / "timeline.json"));
  CHECK(doc.at("traceEvents").size() == 2);
  CHECK_THROWS_AS(trace.write(dir / "missing" / "t.json"), InputError);
}
