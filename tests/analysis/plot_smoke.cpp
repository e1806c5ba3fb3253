// plot_smoke PYTHON PLOT_PY OUT_DIR
//
// Writes a results file holding every schema table (docs/results-format.md)
// through the same helpers `moesim run` / `sweep` use, runs
// experiments/plot.py on it, and checks that the four figures are PNG files.
// Then runs plot.py on a file with a summary only and checks that it makes no
// figure and says why. Exit 0 pass, 1 fail, 77 skip (h5py or matplotlib
// missing: plot.py itself exits 77 then).
//
// The numbers in the file are synthetic (a fixture for plotting, not a
// simulation); the file's "command" attribute says so.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "analysis/hdf5_writer.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace moesim::analysis;

namespace {

void write_full_fixture(const fs::path& file) {
  Hdf5Writer w(file);
  write_provenance(w, Provenance{"sweep", 7, "[workload]\nkind = serving\n", "plot_smoke fixture (synthetic data)", "", ""});
  write_json_attributes(w, schema::kSummary, {{"latency_s", 0.02}, {"throughput", {{"tokens_per_s", 12000.0}}}});

  constexpr int kGpus = 8;
  std::vector<std::int64_t> gpu;
  std::vector<double> compute, exposed, a2a, bubble, idle;
  for (int g = 0; g < kGpus; ++g) {
    gpu.push_back(g);
    compute.push_back(0.60 - 0.01 * g);
    exposed.push_back(0.10);
    a2a.push_back(0.15 + 0.01 * g);
    bubble.push_back(0.05);
    idle.push_back(0.10);
  }
  write_table(w, schema::kBreakdown,
              {{"gpu", gpu, ""},
               {"compute_s", compute, ""},
               {"communication_exposed_s", exposed, ""},
               {"all_to_all_s", a2a, ""},
               {"bubble_s", bubble, ""},
               {"idle_s", idle, ""}});

  // 8 GPUs <-> one NVSwitch, both directions.
  std::vector<std::int64_t> link;
  std::vector<std::string> name, cls, src, dst;
  std::vector<double> bytes, busy, util;
  for (int g = 0; g < kGpus; ++g) {
    for (int dir = 0; dir < 2; ++dir) {
      const std::string a = "gpu" + std::to_string(g);
      const std::string b = "nvswitch0";
      link.push_back(static_cast<std::int64_t>(link.size()));
      src.push_back(dir == 0 ? a : b);
      dst.push_back(dir == 0 ? b : a);
      name.push_back(src.back() + "->" + dst.back());
      cls.push_back("nvlink");
      util.push_back(0.1 + 0.1 * g + 0.05 * dir);
      busy.push_back(util.back() * 1.0);
      bytes.push_back(util.back() * 450e9);
    }
  }
  write_table(w, schema::kLinks,
              {{"link", link, ""},
               {"name", name, ""},
               {"class", cls, ""},
               {"src", src, ""},
               {"dst", dst, ""},
               {"bytes", bytes, ""},
               {"busy_s", busy, ""},
               {"utilisation", util, ""}});

  constexpr std::size_t kLayers = 4, kExperts = 16;
  std::vector<std::int64_t> load;
  std::vector<double> imbalance;
  for (std::size_t l = 0; l < kLayers; ++l) {
    double sum = 0.0, mx = 0.0;
    for (std::size_t e = 0; e < kExperts; ++e) {
      const auto tokens = static_cast<std::int64_t>(1000 + 400 * ((e * 7 + l * 3) % 5));
      load.push_back(tokens);
      sum += static_cast<double>(tokens);
      mx = std::max(mx, static_cast<double>(tokens));
    }
    imbalance.push_back(mx / (sum / static_cast<double>(kExperts)));
  }
  w.write_matrix(schema::kExpertLoad, load, kLayers, kExperts, DatasetOptions{"tokens", Compression::kAuto});
  w.write_dataset(schema::kExpertImbalance, imbalance);

  std::vector<std::int64_t> id, prompt, output;
  std::vector<double> arrival, first, end, ttft, tpot, queue;
  for (int i = 0; i < 50; ++i) {
    id.push_back(i);
    arrival.push_back(0.1 * i);
    prompt.push_back(512);
    output.push_back(128);
    queue.push_back(0.001 * (i % 5));
    ttft.push_back(0.05 + queue.back());
    first.push_back(arrival.back() + ttft.back());
    tpot.push_back(0.01);
    end.push_back(first.back() + 127 * tpot.back());
  }
  write_table(w, schema::kRequests,
              {{"id", id, ""},
               {"arrival_s", arrival, ""},
               {"prompt_tokens", prompt, ""},
               {"output_tokens", output, ""},
               {"first_token_s", first, ""},
               {"end_s", end, ""},
               {"ttft_s", ttft, ""},
               {"tpot_s", tpot, ""},
               {"queue_s", queue, ""}});

  std::vector<nlohmann::json> rows;
  for (int i = 1; i <= 6; ++i) {
    const double rate = 2.0 * i;
    rows.push_back({{"workload.rate", rate},
                    {"throughput", {{"output_tokens_per_s", 128.0 * std::min(rate, 9.0)}, {"tokens_per_s", 640.0 * std::min(rate, 9.0)}}},
                    {"ttft_s", {{"p50", 0.05 / std::max(0.1, 1.0 - rate / 13.0)}, {"p99", 0.2 / std::max(0.1, 1.0 - rate / 13.0)}}}});
  }
  const std::vector<std::string> varied{"workload.rate"};
  write_json_table(w, schema::kSweep, rows, varied);
  w.commit();
}

void write_summary_only(const fs::path& file) {
  Hdf5Writer w(file);
  write_provenance(w, Provenance{"run", 1, "", "plot_smoke fixture (summary only)", "", ""});
  write_json_attributes(w, schema::kSummary, {{"latency_s", 0.02}});
  w.commit();
}

/// Runs argv with stdout+stderr to `log`; returns the exit status (-1 if it
/// could not start or died of a signal).
int run(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool is_png(const fs::path& p) {
  const std::string bytes = moesim::test::read_bytes(p);
  return bytes.size() > 1000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: plot_smoke PYTHON PLOT_PY OUT_DIR\n";
    return 1;
  }
  const std::string python = argv[1];
  const std::string plot = argv[2];
  const fs::path out = argv[3];
  try {
    fs::remove_all(out);
    fs::create_directories(out);
    const fs::path full = out / "full.h5";
    const fs::path summary = out / "summary.h5";
    write_full_fixture(full);
    write_summary_only(summary);

    const fs::path figs = out / "figs";
    const int rc = run({python, plot, full.string(), "--out", figs.string()}, out / "full.log");
    std::cout << moesim::test::read_bytes(out / "full.log");
    if (rc == 77) {
      std::cout << "SKIP: plot.py reports a missing Python module\n";
      return 77;
    }
    int failures = 0;
    if (rc != 0) {
      std::cout << "FAIL: plot.py exited with " << rc << "\n";
      ++failures;
    }
    for (const char* fig : {"full_breakdown.png", "full_throughput_ttft.png", "full_links.png", "full_experts.png"}) {
      if (!is_png(figs / fig)) {
        std::cout << "FAIL: " << (figs / fig) << " is missing or not a PNG\n";
        ++failures;
      }
    }

    const fs::path figs2 = out / "figs_summary";
    const int rc2 = run({python, plot, summary.string(), "--out", figs2.string()}, out / "summary.log");
    const std::string log2 = moesim::test::read_bytes(out / "summary.log");
    std::cout << log2;
    if (rc2 != 0) {
      std::cout << "FAIL: plot.py on a summary-only file exited with " << rc2 << "\n";
      ++failures;
    }
    if (fs::exists(figs2) && !fs::is_empty(figs2)) {
      std::cout << "FAIL: plot.py made figures from a file without tables\n";
      ++failures;
    }
    for (const char* expect : {"skipped breakdown", "skipped throughput_ttft", "skipped links", "skipped experts"}) {
      if (log2.find(expect) == std::string::npos) {
        std::cout << "FAIL: plot.py did not say '" << expect << "'\n";
        ++failures;
      }
    }
    const int rc3 = run({python, plot, (out / "absent.h5").string(), "--out", figs2.string()}, out / "absent.log");
    if (rc3 != 2) {
      std::cout << "FAIL: plot.py on a missing file exited with " << rc3 << ", expected 2\n";
      ++failures;
    }
    std::cout << (failures == 0 ? "PASS\n" : "FAILED\n");
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cout << "FAIL: " << e.what() << "\n";
    return 1;
  }
}
