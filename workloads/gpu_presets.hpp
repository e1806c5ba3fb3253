#pragma once
// Named GPU presets (sim/gpu_spec.hpp's GpuSpec), from
// ../shared/data/calibration.md (peak dense BF16/FP8, HBM capacity and
// bandwidth, scale-up link per direction, measured BF16 matmul -> the GEMM
// efficiency ceiling max_gemm_efficiency = measured / peak) and the vendors'
// datasheets (SM/CU counts, FP32 non-tensor rates). Sources per row in
// gpu_presets.cpp and docs/models-and-strategies.md.
//
// Names: gpu64 (default: the 64 GB A100 of CINECA Leonardo), h100-sxm, h800,
// h200, a100-80g, a100-64g, mi300x, b200.

#include <string>
#include <string_view>
#include <vector>

#include "sim/gpu_spec.hpp"

namespace moesim {

struct GpuPresetInfo {
  std::string name;
  std::string description;  // which real part it stands for, and the source
};

/// The default GPU preset name ("gpu64").
inline constexpr std::string_view kDefaultGpuPreset = "gpu64";

/// The known GPU presets, in listing order.
std::vector<GpuPresetInfo> gpu_presets();
/// The preset `name`; throws InputError listing the known names.
GpuSpec gpu_preset(std::string_view name);

/// One-line summary: "h100-sxm: 989 TFLOPS bf16, 80 GB HBM at 3350 GB/s, ...".
std::string describe(const GpuSpec& gpu);

}  // namespace moesim
