#pragma once
// GPU compute-cost model: how long one kernel (or a small fixed group of
// kernels) takes on one GPU. Pure, deterministic functions of the op and the
// GpuSpec, plus an optional calibration table of measured times that
// overrides the model where it has a row (sim/calibration_table.hpp).
//
// The model (derivation and sources in docs/compute-model.md):
//
//   time = max(compute_time, bytes / (HBM bandwidth x memory_efficiency))
//          + kernels x kernel_launch_overhead
//
// compute_time for a GEMM follows how real GEMM kernels run (NVIDIA "Matrix
// Multiplication Background User's Guide", tile and wave quantization):
//   * the m x n output is cut into Tm x Tn tiles (optionally the k loop is
//     split in s parts: split-K); each (tile, split) work unit runs on one SM;
//   * units run in waves of sm_count: waves = ceil(units / sm_count);
//   * one unit takes 2 Tm Tn (ceil(k_s / 64) x 64 + 64) / per-SM rate, where
//     the k loop is padded to whole k-blocks of 64 and one more k-block is the
//     pipeline fill (the k-loop efficiency k/(k+64) falls for small k);
//   * per-SM rate = peak(dtype) x max_gemm_efficiency / sm_count: the
//     measured large-GEMM rate of calibration.md is the ceiling;
//   * the kernel is chosen as a library would: the (tile, split) with the
//     smallest roofline time among the candidates (Tm in {128, 256}, Tn from
//     112 to 256 in steps of 16 (DeepGEMM's "unaligned block sizes"); 64-row
//     tiles only when m <= 64; split-K only when the tiles do not fill the SMs).
// Memory traffic of a GEMM: A, B and C each cross HBM once (plus the fp32
// partial sums of split-K), a lower bound that matters only when the GEMM is
// memory-bound (decode: weight bytes / bandwidth).
//
// Attention follows FlashAttention-2 (Dao 2023, arXiv 2307.08691): prefill
// FLOPs = 4 b h s_q s_kv d (x (1 - s_q / (2 s_kv)) for causal, = 1/2 when
// s_q = s_kv), Q, K, V, O cross HBM once; decode reads the KV cache once and
// is memory-bound. Norms, element-wise ops and top-k are memory-bound.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sim/gpu_spec.hpp"
#include "sim/units.hpp"

namespace moesim {

class CalibrationTable;

/// Numeric format of an op's inputs (tensor-core rate and bytes per element).
/// Same enumerators, in the same order, as workloads' DType.
enum class Precision : std::uint8_t { kBf16, kFp16, kFp8, kFp32 };

/// Bytes per element: bf16/fp16 2, fp8 1, fp32 4.
constexpr std::int64_t precision_bytes(Precision p) {
  switch (p) {
    case Precision::kBf16: return 2;
    case Precision::kFp16: return 2;
    case Precision::kFp8: return 1;
    case Precision::kFp32: return 4;
  }
  return 2;
}
/// "bf16", "fp16", "fp8", "fp32".
std::string_view to_string(Precision p);
/// Parses "bf16" | "fp16" | "fp8" | "fp32" (case-insensitive); nullopt otherwise.
std::optional<Precision> parse_precision(std::string_view text);

// ---------------------------------------------------------------------------
// Op descriptions. All counts are element counts (not bytes) unless named so.

/// C[m x n] = A[m x k] x B[k x n]. Output is bf16 for bf16/fp16/fp8 inputs
/// (fp8 GEMMs write bf16, as DeepGEMM and Transformer Engine do), fp32 for fp32.
struct GemmOp {
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  Precision dtype = Precision::kBf16;
};

/// One grouped-GEMM kernel (MoE experts): expert e multiplies its
/// tokens_per_expert[e] x k tokens by its own k x n weight. One launch; the
/// work units are the union of the experts' tiles; an expert with 0 tokens
/// neither computes nor reads its weights.
struct GroupedGemmOp {
  std::span<const std::int64_t> tokens_per_expert;
  std::int64_t n = 0;
  std::int64_t k = 0;
  Precision dtype = Precision::kBf16;
};

/// FlashAttention-2 style prefill (or chunked prefill: s_q new tokens attending
/// to s_kv keys, the s_q new ones last). heads = query heads; kv_heads <= heads
/// (GQA/MQA); head_dim is the query/key (and value) dimension.
struct AttentionPrefillOp {
  std::int64_t batch = 1;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t seq_q = 0;
  std::int64_t seq_kv = 0;
  std::int64_t head_dim = 0;
  bool causal = true;
  Precision dtype = Precision::kBf16;
};

/// Decode attention: one new query token per sequence, reading `context`
/// cached tokens per sequence. Only batch x context matters for the KV bytes,
/// so ragged batches may pass batch = 1 and context = total cached tokens.
struct AttentionDecodeOp {
  std::int64_t batch = 1;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t context = 0;
  std::int64_t head_dim = 0;
  Precision dtype = Precision::kBf16;  // of the KV cache
};

/// Router: logits GEMM (tokens x experts x hidden) then top-k selection.
/// Two kernels.
struct RouterOp {
  std::int64_t tokens = 0;
  std::int64_t hidden = 0;
  std::int64_t experts = 0;
  std::int64_t top_k = 0;
  Precision dtype = Precision::kBf16;
};

enum class NormKind : std::uint8_t { kRmsNorm, kLayerNorm };

/// RMSNorm / LayerNorm over tokens x hidden: reads x, writes y, reads the
/// weight (and bias).
struct NormOp {
  std::int64_t tokens = 0;
  std::int64_t hidden = 0;
  Precision dtype = Precision::kBf16;
  NormKind kind = NormKind::kRmsNorm;
};

/// An element-wise kernel (activation, residual add, SwiGLU, ...): reads
/// `inputs` tensors of `elements` and writes `outputs` of them.
struct ElementwiseOp {
  std::int64_t elements = 0;
  Precision dtype = Precision::kBf16;
  std::int32_t inputs = 1;
  std::int32_t outputs = 1;
  double flops_per_element = 1.0;  // on the non-tensor (fp32) units
};

/// A generic memory-bound kernel moving `bytes` (read + written) through HBM.
struct MemoryOp {
  Bytes bytes{};
};

/// A generic compute kernel of `flops` at the tensor-core rate of `dtype`
/// (fp32: the non-tensor fp32 rate) and the GEMM efficiency ceiling.
struct ComputeOp {
  double flops = 0.0;
  Precision dtype = Precision::kBf16;
};

// ---------------------------------------------------------------------------
// Results.

/// What the model derived for one op.
struct OpCost {
  Duration time{};             // total, launch overhead included
  Duration compute_time{};     // the compute side of the roofline
  Duration memory_time{};      // the memory side of the roofline
  double flops = 0.0;          // useful FLOPs
  Bytes bytes{};               // HBM traffic
  std::int32_t kernels = 0;    // launches counted
  bool calibrated = false;     // time comes from the calibration table
  [[nodiscard]] bool memory_bound() const { return memory_time > compute_time; }
  /// Achieved FLOP rate over the whole time (FLOP/s); 0 for zero time.
  [[nodiscard]] double achieved_flops_per_s() const;
};

/// An output tile of a GEMM kernel.
struct GemmTile {
  std::int32_t m = 128;
  std::int32_t n = 128;
};

/// How a GEMM (or grouped GEMM) kernel is laid out over the SMs.
struct GemmSchedule {
  GemmTile tile{};
  std::int32_t split_k = 1;
  std::int64_t work_units = 0;  // tiles x split_k
  std::int64_t waves = 0;       // ceil(work_units / sm_count)
  /// useful output-tile work / (waves x sm_count x tile work): tile and wave
  /// quantization together.
  double quantization_efficiency = 0.0;
  /// k_s / (padded k_s + one k-block): the k-loop efficiency of one unit.
  double k_efficiency = 0.0;
  Duration compute_time{};  // waves x one unit's time (no launch overhead)
  Bytes bytes{};            // HBM traffic, split-K partial sums included
};

/// Width of one k-block (elements) and of the per-unit pipeline fill.
inline constexpr std::int64_t kGemmKBlock = 64;

/// The schedule of `op` with an explicit tile (tile.m one of 64, 128, 256;
/// tile.n >= 1) and split-K factor (>= 1); InputError otherwise.
GemmSchedule gemm_schedule(const GpuSpec& gpu, const GemmOp& op, GemmTile tile, std::int32_t split_k);
/// The schedule of a grouped GEMM with an explicit tile and split-K factor.
GemmSchedule grouped_gemm_schedule(const GpuSpec& gpu, const GroupedGemmOp& op, GemmTile tile,
                                   std::int32_t split_k);
/// The schedule the model picks (smallest roofline time; see file comment).
GemmSchedule best_gemm_schedule(const GpuSpec& gpu, const GemmOp& op);
GemmSchedule best_grouped_gemm_schedule(const GpuSpec& gpu, const GroupedGemmOp& op);

/// Tensor-core peak FLOP/s for `dtype` on `gpu`: fp8 at fp8_tflops when the
/// GPU has FP8 (fp8_tflops > 0), else at the bf16 rate; fp32 at fp32_tflops.
double peak_flops_per_s(const GpuSpec& gpu, Precision dtype);
/// The GEMM efficiency ceiling for `dtype`: max_gemm_efficiency_fp8 for fp8
/// when set (> 0), else max_gemm_efficiency.
double gemm_efficiency_ceiling(const GpuSpec& gpu, Precision dtype);
/// Achievable HBM bandwidth: memory_bandwidth x memory_efficiency.
Bandwidth achievable_memory_bandwidth(const GpuSpec& gpu);

/// FLOPs of FlashAttention-2 prefill (forward): 4 b h s_q s_kv d, times
/// (1 - s_q / (2 s_kv)) when causal (the share of (query, key) pairs under the
/// causal mask when the s_q queries are the last s_q of s_kv positions).
double attention_prefill_flops(const AttentionPrefillOp& op);
/// HBM bytes of decode attention's KV-cache read: b x context x 2 x kv_heads x d x dtype.
Bytes attention_decode_kv_bytes(const AttentionDecodeOp& op);

// ---------------------------------------------------------------------------

/// The model for one GPU type, with an optional calibration table. Cheap to
/// copy (the table is shared and immutable). Every method is const and
/// thread-safe. Ops with invalid fields (negative sizes, heads not divisible
/// by kv_heads, ...) throw InputError.
class ComputeModel {
 public:
  explicit ComputeModel(GpuSpec gpu);
  ComputeModel(GpuSpec gpu, std::shared_ptr<const CalibrationTable> calibration);

  [[nodiscard]] const GpuSpec& gpu() const { return gpu_; }
  [[nodiscard]] const CalibrationTable* calibration() const { return calibration_.get(); }

  [[nodiscard]] OpCost cost(const GemmOp& op) const;
  [[nodiscard]] OpCost cost(const GroupedGemmOp& op) const;
  [[nodiscard]] OpCost cost(const AttentionPrefillOp& op) const;
  [[nodiscard]] OpCost cost(const AttentionDecodeOp& op) const;
  [[nodiscard]] OpCost cost(const RouterOp& op) const;
  [[nodiscard]] OpCost cost(const NormOp& op) const;
  [[nodiscard]] OpCost cost(const ElementwiseOp& op) const;
  [[nodiscard]] OpCost cost(const MemoryOp& op) const;
  [[nodiscard]] OpCost cost(const ComputeOp& op) const;

  /// cost(op).time.
  template <typename Op>
  [[nodiscard]] Duration time(const Op& op) const {
    return cost(op).time;
  }

 private:
  GpuSpec gpu_;
  std::shared_ptr<const CalibrationTable> calibration_;
};

}  // namespace moesim
