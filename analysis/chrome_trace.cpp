#include "analysis/chrome_trace.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>

#include "analysis/atomic_file.hpp"

namespace moesim::analysis {

std::int64_t round_ps_to_ns(std::int64_t ps) {
  std::int64_t q = ps / 1000;
  std::int64_t r = ps % 1000;
  if (r < 0) {  // floor division for negative times
    q -= 1;
    r += 1000;
  }
  return r >= 500 ? q + 1 : q;
}

std::string format_ns_as_us(std::int64_t ns) {
  std::string out;
  // Work on the magnitude as unsigned so INT64_MIN is fine too.
  std::uint64_t mag = ns < 0 ? static_cast<std::uint64_t>(-(ns + 1)) + 1U : static_cast<std::uint64_t>(ns);
  if (ns < 0) out += '-';
  out += std::to_string(mag / 1000U);
  std::uint64_t frac = mag % 1000U;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    out += '.';
    out += digits;
  }
  return out;
}

namespace {
std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void check_args(const nlohmann::json& args) {
  if (!args.is_null() && !args.is_object()) {
    throw std::invalid_argument("trace event args must be a JSON object (or null), got: " + dump(args));
  }
}
}  // namespace

void ChromeTrace::set_process_name(std::int64_t pid, std::string name) { process_names_[pid] = std::move(name); }
void ChromeTrace::set_process_sort_index(std::int64_t pid, std::int64_t sort_index) { process_sort_[pid] = sort_index; }
void ChromeTrace::set_thread_name(TraceTrack track, std::string name) { thread_names_[track] = std::move(name); }
void ChromeTrace::set_thread_sort_index(TraceTrack track, std::int64_t sort_index) {
  thread_sort_[track] = sort_index;
}

void ChromeTrace::add_complete(TraceTrack track, std::string name, std::string category, Time start,
                               Duration duration, nlohmann::json args) {
  if (duration < Duration::zero()) {
    throw std::invalid_argument("trace event '" + name + "' has a negative duration");
  }
  check_args(args);
  const Time end = start + duration;
  events_.push_back(Event{Phase::kComplete, track, round_ps_to_ns(start.count_ps()), round_ps_to_ns(end.count_ps()),
                          std::move(name), std::move(category), std::move(args)});
}

void ChromeTrace::add_counter(std::int64_t pid, std::string name, Time at,
                              std::vector<std::pair<std::string, double>> values) {
  nlohmann::json args = nlohmann::json::object();
  for (auto& [series, value] : values) {
    if (!std::isfinite(value)) {
      throw std::invalid_argument("counter '" + name + "' series '" + series + "' has a non-finite value");
    }
    args[series] = value;
  }
  const std::int64_t ts = round_ps_to_ns(at.count_ps());
  events_.push_back(Event{Phase::kCounter, TraceTrack{pid, 0}, ts, ts, std::move(name), std::string(), std::move(args)});
}

void ChromeTrace::add_instant(TraceTrack track, std::string name, std::string category, Time at,
                              nlohmann::json args) {
  check_args(args);
  const std::int64_t ts = round_ps_to_ns(at.count_ps());
  events_.push_back(Event{Phase::kInstant, track, ts, ts, std::move(name), std::move(category), std::move(args)});
}

void ChromeTrace::set_metadata(const std::string& key, nlohmann::json value) { other_data_[key] = std::move(value); }

std::string ChromeTrace::to_json_text() const {
  // 1. Order: time, then process and thread, then the longer (enclosing)
  //    event first, then insertion order (stable sort).
  std::vector<std::size_t> order(events_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Event& x = events_[a];
    const Event& y = events_[b];
    if (x.ts_ns != y.ts_ns) return x.ts_ns < y.ts_ns;
    if (x.track != y.track) return x.track < y.track;
    return x.end_ns > y.end_ns;
  });

  // 2. Overflow lanes: per thread, a stack of open end times per lane; an
  //    event goes to the first lane where it nests inside the open events.
  std::map<std::int64_t, std::set<std::int64_t>> used_tids;
  for (const Event& e : events_) used_tids[e.track.pid].insert(e.track.tid);
  for (const auto& [track, name] : thread_names_) used_tids[track.pid].insert(track.tid);
  std::map<TraceTrack, std::vector<std::vector<std::int64_t>>> lanes;  // per thread: lane -> open end times
  std::map<TraceTrack, std::vector<std::int64_t>> lane_tids;           // per thread: lane -> tid
  std::vector<std::int64_t> tid_of(events_.size());
  std::map<TraceTrack, std::pair<TraceTrack, std::size_t>> overflow_threads;  // lane track -> (base, k)
  for (const std::size_t i : order) {
    const Event& e = events_[i];
    tid_of[i] = e.track.tid;
    if (e.phase != Phase::kComplete) continue;
    auto& stacks = lanes[e.track];
    auto& tids = lane_tids[e.track];
    std::size_t lane = 0;
    for (; lane < stacks.size(); ++lane) {
      auto& stack = stacks[lane];
      while (!stack.empty() && stack.back() <= e.ts_ns) stack.pop_back();
      if (stack.empty() || e.end_ns <= stack.back()) break;
    }
    if (lane == stacks.size()) {
      stacks.emplace_back();
      if (lane == 0) {
        tids.push_back(e.track.tid);
      } else {
        auto& used = used_tids[e.track.pid];
        const std::int64_t tid = *used.rbegin() + 1;
        used.insert(tid);
        tids.push_back(tid);
        overflow_threads[TraceTrack{e.track.pid, tid}] = {e.track, lane};
      }
    }
    stacks[lane].push_back(e.end_ns);
    tid_of[i] = tids[lane];
  }

  // 3. Text: metadata first, one event per line.
  std::string out = "{\"traceEvents\":[\n";
  bool first = true;
  auto begin_event = [&] {
    if (!first) out += ",\n";
    first = false;
  };
  auto metadata = [&](const char* what, std::int64_t pid, std::int64_t tid, const nlohmann::json& args) {
    begin_event();
    out += "{\"name\":\"";
    out += what;
    out += "\",\"ph\":\"M\",\"ts\":0,\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) +
           ",\"args\":" + dump(args) + "}";
  };
  for (const auto& [pid, name] : process_names_) metadata("process_name", pid, 0, {{"name", name}});
  for (const auto& [pid, index] : process_sort_) metadata("process_sort_index", pid, 0, {{"sort_index", index}});
  for (const auto& [track, name] : thread_names_) metadata("thread_name", track.pid, track.tid, {{"name", name}});
  for (const auto& [track, index] : thread_sort_) {
    metadata("thread_sort_index", track.pid, track.tid, {{"sort_index", index}});
  }
  for (const auto& [lane_track, base] : overflow_threads) {
    const auto named = thread_names_.find(base.first);
    const std::string base_name =
        named != thread_names_.end() ? named->second : "thread " + std::to_string(base.first.tid);
    metadata("thread_name", lane_track.pid, lane_track.tid,
             {{"name", base_name + " (overlap " + std::to_string(base.second) + ")"}});
    const auto sorted = thread_sort_.find(base.first);
    if (sorted != thread_sort_.end()) {
      metadata("thread_sort_index", lane_track.pid, lane_track.tid, {{"sort_index", sorted->second}});
    }
  }
  for (const std::size_t i : order) {
    const Event& e = events_[i];
    begin_event();
    out += "{\"name\":" + quoted(e.name);
    switch (e.phase) {
      case Phase::kComplete:
        out += ",\"cat\":" + quoted(e.category) + ",\"ph\":\"X\",\"ts\":" + format_ns_as_us(e.ts_ns) +
               ",\"dur\":" + format_ns_as_us(e.end_ns - e.ts_ns);
        break;
      case Phase::kCounter: out += ",\"ph\":\"C\",\"ts\":" + format_ns_as_us(e.ts_ns); break;
      case Phase::kInstant:
        out += ",\"cat\":" + quoted(e.category) + ",\"ph\":\"i\",\"s\":\"t\",\"ts\":" + format_ns_as_us(e.ts_ns);
        break;
    }
    out += ",\"pid\":" + std::to_string(e.track.pid) + ",\"tid\":" + std::to_string(tid_of[i]);
    if (!e.args.is_null()) out += ",\"args\":" + dump(e.args);
    out += "}";
  }
  out += "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":" + dump(other_data_) + "}\n";
  return out;
}

void ChromeTrace::write(const std::filesystem::path& path) const { write_file_atomically(path, to_json_text()); }

}  // namespace moesim::analysis
