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
  /// The same ceiling for FP8 GEMMs (measured FP8 matmul / fp8 peak); 0 = use
  /// max_gemm_efficiency. (H100 SXM measured 1402.6 of 1979 TFLOPS = 0.709,
  /// stas00/ml-engineering MAMF table; docs/compute-model.md.)
  double max_gemm_efficiency_fp8 = 0.0;
  /// Achievable fraction of the dense peak for FlashAttention-style prefill at
  /// long sequences: FlashAttention-2 forward reaches up to 73 % of A100 peak
  /// (Dao 2023, arXiv 2307.08691), FlashAttention-3 75 % of H100 BF16 peak
  /// (Shah et al. 2024, arXiv 2407.08608).
  double attention_efficiency = 0.73;
  /// Achievable fraction of HBM bandwidth for streaming kernels.
  double memory_efficiency = 0.85;
  Duration kernel_launch_overhead = Duration::ns(4'000);
};

}  // namespace moesim
