#pragma once
// Chrome trace (Trace Event Format, JSON object form) for `moesim run --trace`:
// opens in Perfetto (ui.perfetto.dev) and chrome://tracing.
//
// Reference: "Trace Event Format" (Google, docs.google.com/document/d/
// 1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU): "ts"/"dur" are microseconds;
// "X" complete events, "C" counters, "i" instants, "M" metadata
// (process_name, thread_name, process_sort_index, thread_sort_index);
// "displayTimeUnit" only changes how the viewer prints times (Perfetto has
// read ts as microseconds whatever displayTimeUnit says since 2022,
// google/perfetto#274).
//
// Conventions for moesim traces (see docs/results-format.md):
// - one process per GPU, pid = gpu_pid(gpu) = GPU index + 1 (pid 0 is the idle
//   task in Perfetto's Linux model, so it is avoided); one thread per stream
//   (compute, comm, ...), named with set_thread_name;
// - links in process kLinksPid, one counter per link ("C" events, e.g. its
//   utilisation), or complete events per transfer.
//
// Exactness: simulated times are integer picoseconds; the trace holds them
// rounded to the nearest nanosecond, written as exact decimals of
// microseconds ("12.345"). Rounding each start and end (not the duration)
// keeps properly nested intervals nested after rounding.
//
// Perfetto and chrome://tracing require the complete events of one thread to
// nest (no partial overlap). The writer guarantees that: an event that would
// partially overlap one already on its thread goes to an overflow thread
// "<name> (overlap k)" of the same process, so a model that emits
// overlapping ops on one stream still yields a correct trace.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/units.hpp"

namespace moesim::analysis {

/// A timeline row in the viewer: process `pid`, thread `tid`.
struct TraceTrack {
  std::int64_t pid = 0;
  std::int64_t tid = 0;
  auto operator<=>(const TraceTrack&) const = default;
};

/// The process of the links' counters and transfers.
inline constexpr std::int64_t kLinksPid = 1'000'000;
/// The process of GPU `gpu` (0-based index).
constexpr std::int64_t gpu_pid(std::int64_t gpu) { return gpu + 1; }

class ChromeTrace {
 public:
  /// Names a process ("GPU 3", "links"); `sort_index` orders processes in the
  /// viewer (ascending).
  void set_process_name(std::int64_t pid, std::string name);
  void set_process_sort_index(std::int64_t pid, std::int64_t sort_index);
  /// Names a thread ("compute", "comm"); `sort_index` orders threads.
  void set_thread_name(TraceTrack track, std::string name);
  void set_thread_sort_index(TraceTrack track, std::int64_t sort_index);

  /// A complete ("X") event: an op that ran on `track` from `start` for
  /// `duration`. `args` (an object, or null for none) shows in the viewer's
  /// details panel. Throws std::invalid_argument for a negative duration or
  /// args that are not an object.
  void add_complete(TraceTrack track, std::string name, std::string category, Time start, Duration duration,
                    nlohmann::json args = nullptr);
  /// A counter ("C") sample: each (series, value) is one line of counter
  /// `name` in process `pid` from `at` until the next sample. Values must be
  /// finite (std::invalid_argument otherwise).
  void add_counter(std::int64_t pid, std::string name, Time at, std::vector<std::pair<std::string, double>> values);
  /// An instant ("i", thread scope) event, e.g. a request arrival.
  void add_instant(TraceTrack track, std::string name, std::string category, Time at,
                   nlohmann::json args = nullptr);
  /// A top-level "otherData" entry (provenance: version, seed, scenario).
  void set_metadata(const std::string& key, nlohmann::json value);

  /// Events added so far (metadata excluded).
  [[nodiscard]] std::size_t size() const { return events_.size(); }

  /// The whole trace: {"traceEvents":[...],"displayTimeUnit":"ns","otherData":{...}}.
  /// Metadata events first, then events sorted by (ts, pid, tid, longer
  /// first, insertion order). Deterministic: same events, same text.
  [[nodiscard]] std::string to_json_text() const;
  /// Writes to_json_text() atomically (AtomicFile). InputError for a bad path.
  void write(const std::filesystem::path& path) const;

 private:
  enum class Phase : std::uint8_t { kComplete, kCounter, kInstant };
  struct Event {
    Phase phase;
    TraceTrack track;
    std::int64_t ts_ns;
    std::int64_t end_ns;  // == ts_ns for counters and instants
    std::string name;
    std::string category;
    nlohmann::json args;
  };
  std::vector<Event> events_;
  std::map<std::int64_t, std::string> process_names_;
  std::map<std::int64_t, std::int64_t> process_sort_;
  std::map<TraceTrack, std::string> thread_names_;
  std::map<TraceTrack, std::int64_t> thread_sort_;
  nlohmann::json other_data_ = nlohmann::json::object();
};

/// Picoseconds to the nearest nanosecond (halves away from minus infinity),
/// exact in integers.
std::int64_t round_ps_to_ns(std::int64_t ps);
/// "12.345" for 12345 ns: the exact decimal number of microseconds.
std::string format_ns_as_us(std::int64_t ns);

}  // namespace moesim::analysis
