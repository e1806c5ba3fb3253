#pragma once
// Hardware description of one GPU, as the compute-cost model needs it. The
// named presets (h100-sxm, ...) live in workloads/gpu_presets; this struct is
// in sim/ because the compute model is part of the engine.

#include <string>

#include "sim/units.hpp"

namespace moesim {

struct GpuSpec {
  std::string name = "gpu64";
  Bytes memory = Bytes::gb(64);                                   // HBM capacity
  Bandwidth memory_bandwidth = Bandwidth::gbytes_per_second(2000);  // HBM, peak
  double bf16_tflops = 312.0;   // dense peak
  double fp8_tflops = 0.0;      // 0 = no FP8 tensor cores: FP8 runs at the BF16 rate
  double fp32_tflops = 19.5;    // non-tensor (norms, element-wise)
  int sm_count = 108;           // streaming multiprocessors / compute units
  Bandwidth scale_up_bandwidth = Bandwidth::gbytes_per_second(300);  // NVLink/xGMI per GPU per direction
  /// Measured large-GEMM efficiency (measured BF16 matmul / peak), used as the
  /// ceiling of the GEMM efficiency model (calibration.md).
  double max_gemm_efficiency = 0.87;
  /// Achievable fraction of HBM bandwidth for streaming kernels.
  double memory_efficiency = 0.85;
  Duration kernel_launch_overhead = Duration::ns(4'000);
};

}  // namespace moesim
