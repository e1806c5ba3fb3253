#include "workloads/gpu_presets.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "sim/options.hpp"

namespace moesim {
namespace {

// Rows of ../shared/data/calibration.md ("GPUs" table: stas00/ml-engineering
// compute/accelerator/README.md; DeepEP README for H800 NVLink). Capacities
// are the decimal GB of that table, as deployment documents state them.
// SM/CU counts and FP32 (non-tensor) rates from the vendors' datasheets /
// whitepapers named per preset. max_gemm_efficiency = measured BF16 matmul /
// peak where calibration.md has a measurement.

GpuSpec make(const char* name, double bf16, double fp8, double fp32, std::int64_t mem_gb, double hbm_gbps,
             int sms, double link_gbps, double gemm_eff) {
  GpuSpec g;
  g.name = name;
  g.bf16_tflops = bf16;
  g.fp8_tflops = fp8;
  g.fp32_tflops = fp32;
  g.memory = Bytes::gb(mem_gb);
  g.memory_bandwidth = Bandwidth::gbytes_per_second(hbm_gbps);
  g.sm_count = sms;
  g.scale_up_bandwidth = Bandwidth::gbytes_per_second(link_gbps);
  g.max_gemm_efficiency = gemm_eff;
  return g;
}

// A100 measured 271.2 TFLOPS of 312 peak (calibration.md).
constexpr double kA100GemmEff = 271.2 / 312.0;
// H100 SXM measured 794.5 of 989 (calibration.md); H800 is the same die and
// clocks (export variant with cut NVLink), so it takes the H100 figure.
constexpr double kH100GemmEff = 794.5 / 989.0;
// H100 SXM FP8: 1402.6 of 1979 TFLOPS at the best shape of the "Maximum
// Achievable Matmul FLOPS" search (stas00/ml-engineering, v2 FP8 table; the
// same source as calibration.md's BF16 figures): FP8 reaches a lower fraction
// of its peak than BF16 (70.9 % vs 80.3 %). Without it the model overestimates
// FP8 GEMMs by 9.4 % (docs/compute-model.md). H800 and H200 have the same SM
// and clocks; no FP8 measurement of theirs, so they take the H100 figure.
constexpr double kHopperFp8GemmEff = 1402.6 / 1979.0;

GpuSpec with_fp8_ceiling(GpuSpec g, double efficiency) {
  g.max_gemm_efficiency_fp8 = efficiency;
  return g;
}

struct Entry {
  const char* name;
  const char* description;
  GpuSpec (*make)();
};

const Entry kEntries[] = {
    {"gpu64",
     "default 64 GB GPU = NVIDIA A100 SXM4 64 GB HBM2e of CINECA Leonardo (4 per node, NVLink3): 312 TFLOPS "
     "BF16, 1.64 TB/s (4 of the A100-80GB's 5 HBM2e stacks: 2.039 x 4/5; calibration.md ~1.6-2.0 TB/s), "
     "300 GB/s NVLink3 per direction, 108 SMs",
     [] { return make("gpu64", 312.0, 0.0, 19.5, 64, 1640.0, 108, 300.0, kA100GemmEff); }},
    {"h100-sxm",
     "NVIDIA H100 SXM5 80 GB: 989 TFLOPS BF16, 1979 FP8, 3.35 TB/s, NVLink4 450 GB/s, 132 SMs; measured matmul "
     "794.5 TFLOPS BF16, 1402.6 FP8",
     [] {
       return with_fp8_ceiling(make("h100-sxm", 989.0, 1979.0, 67.0, 80, 3350.0, 132, 450.0, kH100GemmEff),
                               kHopperFp8GemmEff);
     }},
    {"h800",
     "NVIDIA H800 SXM 80 GB: H100 compute, NVLink 400 GB/s bidirectional = 200 per direction (DeepEP measures "
     "~160 GB/s in EP all-to-all), 132 SMs",
     [] {
       return with_fp8_ceiling(make("h800", 989.0, 1979.0, 67.0, 80, 3350.0, 132, 200.0, kH100GemmEff),
                               kHopperFp8GemmEff);
     }},
    {"h200",
     "NVIDIA H200 SXM 141 GB: 989 TFLOPS BF16, 1979 FP8, 4.8 TB/s, NVLink4 450 GB/s, 132 SMs; measured matmul "
     "~790 TFLOPS",
     [] {
       return with_fp8_ceiling(make("h200", 989.0, 1979.0, 67.0, 141, 4800.0, 132, 450.0, 790.0 / 989.0),
                               kHopperFp8GemmEff);
     }},
    {"a100-80g",
     "NVIDIA A100 SXM4 80 GB: 312 TFLOPS BF16 (no FP8), 2.0 TB/s, NVLink3 300 GB/s, 108 SMs; measured matmul "
     "271.2 TFLOPS",
     [] { return make("a100-80g", 312.0, 0.0, 19.5, 80, 2000.0, 108, 300.0, kA100GemmEff); }},
    {"a100-64g",
     "NVIDIA A100 SXM4 64 GB HBM2e (CINECA Leonardo's custom part): as gpu64 under its own name",
     [] { return make("a100-64g", 312.0, 0.0, 19.5, 64, 1640.0, 108, 300.0, kA100GemmEff); }},
    {"mi300x",
     "AMD Instinct MI300X 192 GB: 1307 TFLOPS BF16, 2610 FP8, 5.3 TB/s, xGMI 64 GB/s per peer x 7 = 448 GB/s, "
     "304 CUs, 163.4 TFLOPS FP32; measured matmul 668 TFLOPS",
     [] { return make("mi300x", 1307.0, 2610.0, 163.4, 192, 5300.0, 304, 448.0, 668.0 / 1307.0); }},
    {"b200",
     "NVIDIA B200 180 GB: 2250 TFLOPS BF16, 4500 FP8 (dense), 8 TB/s, NVLink5 900 GB/s, 148 SMs; measured "
     "matmul 1745 TFLOPS",
     [] { return make("b200", 2250.0, 4500.0, 80.0, 180, 8000.0, 148, 900.0, 1745.0 / 2250.0); }},
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::vector<GpuPresetInfo> gpu_presets() {
  std::vector<GpuPresetInfo> out;
  for (const Entry& e : kEntries) out.push_back({e.name, e.description});
  return out;
}

GpuSpec gpu_preset(std::string_view name) {
  const std::string n = lower(name);
  std::string names;
  for (const Entry& e : kEntries) {
    if (n == e.name) return e.make();
    names += names.empty() ? "" : ", ";
    names += e.name;
  }
  throw InputError("unknown GPU preset '" + std::string(name) + "' (known: " + names + ")");
}

std::string describe(const GpuSpec& g) {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%s: %.0f TFLOPS bf16, %.0f fp8, %.1f GB HBM at %.0f GB/s, scale-up %.0f GB/s, %d SMs, "
                "GEMM ceiling %.0f%%",
                g.name.c_str(), g.bf16_tflops, g.fp8_tflops, g.memory.as_double() * 1e-9,
                g.memory_bandwidth.gbytes_per_second(), g.scale_up_bandwidth.gbytes_per_second(), g.sm_count,
                g.max_gemm_efficiency * 100.0);
  os << buf;
  return os.str();
}

}  // namespace moesim
