// GPU compute-cost model. Derivation, sources and the comparison with
// measured matmul rates: docs/compute-model.md.
#include "sim/compute_model.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>

#include "sim/calibration_table.hpp"
#include "sim/options.hpp"

namespace moesim {

std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    case Precision::kFp8: return "fp8";
    case Precision::kFp32: return "fp32";
  }
  return "bf16";
}

std::optional<Precision> parse_precision(std::string_view text) {
  std::string lower;
  lower.reserve(text.size());
  for (const char c : text) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "bf16") return Precision::kBf16;
  if (lower == "fp16") return Precision::kFp16;
  if (lower == "fp8") return Precision::kFp8;
  if (lower == "fp32") return Precision::kFp32;
  return std::nullopt;
}

double OpCost::achieved_flops_per_s() const {
  const double s = time.seconds();
  return s > 0.0 ? flops / s : 0.0;
}

namespace {

// --- helpers ---------------------------------------------------------------

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Output element size of a GEMM: fp8/bf16/fp16 GEMMs write bf16 (DeepGEMM,
// Transformer Engine), fp32 GEMMs write fp32.
constexpr std::int64_t output_bytes(Precision p) { return p == Precision::kFp32 ? 4 : 2; }
// Activations next to a KV cache (Q, O of attention) are bf16 unless fp32.
constexpr std::int64_t activation_bytes(Precision p) { return p == Precision::kFp32 ? 4 : 2; }

[[noreturn]] void invalid(const std::string& what) {
  throw InputError("compute model: " + what);
}

void require_non_negative(std::int64_t v, const char* op, const char* field) {
  if (v < 0) invalid(std::string(op) + "." + field + " is negative (" + std::to_string(v) + "); sizes must be >= 0");
}

void check_gpu(const GpuSpec& gpu) {
  const auto bad = [&](const std::string& field, const std::string& rule) {
    invalid("GPU '" + gpu.name + "': " + field + " " + rule);
  };
  if (gpu.sm_count < 1) bad("sm_count", "must be >= 1");
  if (!(gpu.bf16_tflops > 0.0) || !std::isfinite(gpu.bf16_tflops)) bad("bf16_tflops", "must be a positive number");
  if (!(gpu.fp32_tflops > 0.0) || !std::isfinite(gpu.fp32_tflops)) bad("fp32_tflops", "must be a positive number");
  if (!(gpu.fp8_tflops >= 0.0) || !std::isfinite(gpu.fp8_tflops)) bad("fp8_tflops", "must be >= 0 (0 = no FP8)");
  if (!(gpu.memory_bandwidth.bytes_per_second() > 0.0)) bad("memory_bandwidth", "must be positive");
  const auto fraction = [&](double v, const char* field, bool zero_ok) {
    if (!std::isfinite(v) || v > 1.0 || v < 0.0 || (!zero_ok && v == 0.0)) {
      bad(field, zero_ok ? "must be in [0, 1]" : "must be in (0, 1]");
    }
  };
  fraction(gpu.max_gemm_efficiency, "max_gemm_efficiency", false);
  fraction(gpu.max_gemm_efficiency_fp8, "max_gemm_efficiency_fp8", true);
  fraction(gpu.attention_efficiency, "attention_efficiency", false);
  fraction(gpu.memory_efficiency, "memory_efficiency", false);
  if (gpu.kernel_launch_overhead < Duration::zero()) bad("kernel_launch_overhead", "must be >= 0");
}

double memory_seconds(const GpuSpec& gpu, double bytes) {
  return bytes / achievable_memory_bandwidth(gpu).bytes_per_second();
}

Duration to_duration(double seconds) { return Duration::from_seconds(seconds); }

// --- GEMM work description shared by single and grouped GEMMs ----------------
//
// A single GEMM is a grouped GEMM with one group, built through the same
// struct so that both take bit-identical arithmetic paths (the test "one
// expert with all tokens = a single GEMM" relies on it).

constexpr std::array<std::int32_t, 3> kTileRows = {64, 128, 256};

struct GemmWork {
  std::int64_t sum_m = 0;   // total rows over the groups
  std::int64_t max_m = 0;   // largest group
  std::int64_t active = 0;  // groups with rows
  std::array<std::int64_t, kTileRows.size()> row_tiles{};  // sum over groups of ceil(m_g / Tm)
  std::int64_t n = 0;
  std::int64_t k = 0;
  Precision dtype = Precision::kBf16;

  void add_group(std::int64_t m) {
    if (m <= 0) return;
    sum_m += m;
    max_m = std::max(max_m, m);
    ++active;
    for (std::size_t i = 0; i < kTileRows.size(); ++i) row_tiles[i] += ceil_div(m, kTileRows[i]);
  }
  [[nodiscard]] bool empty() const { return active == 0 || n <= 0 || k <= 0; }
  [[nodiscard]] std::int64_t row_tiles_for(std::int32_t tm) const {
    for (std::size_t i = 0; i < kTileRows.size(); ++i) {
      if (kTileRows[i] == tm) return row_tiles[i];
    }
    return -1;
  }
};

GemmWork work_of(const GemmOp& op) {
  require_non_negative(op.m, "gemm", "m");
  require_non_negative(op.n, "gemm", "n");
  require_non_negative(op.k, "gemm", "k");
  GemmWork w;
  w.n = op.n;
  w.k = op.k;
  w.dtype = op.dtype;
  w.add_group(op.m);
  return w;
}

GemmWork work_of(const GroupedGemmOp& op) {
  require_non_negative(op.n, "grouped_gemm", "n");
  require_non_negative(op.k, "grouped_gemm", "k");
  GemmWork w;
  w.n = op.n;
  w.k = op.k;
  w.dtype = op.dtype;
  for (const std::int64_t m : op.tokens_per_expert) {
    require_non_negative(m, "grouped_gemm", "tokens_per_expert[e]");
    w.add_group(m);
  }
  return w;
}

// The schedule of `w` with tile `tile` and split `split`. `row_tiles` is
// sum_g ceil(m_g / tile.m) (precomputed for the candidate rows).
GemmSchedule schedule(const GpuSpec& gpu, const GemmWork& w, GemmTile tile, std::int32_t split,
                      std::int64_t row_tiles) {
  GemmSchedule s;
  s.tile = tile;
  s.split_k = split;
  if (w.empty()) return s;
  const std::int64_t sms = gpu.sm_count;
  const std::int64_t tiles = row_tiles * ceil_div(w.n, tile.n);
  const std::int64_t k_split = ceil_div(w.k, split);
  const std::int64_t k_padded = ceil_div(k_split, kGemmKBlock) * kGemmKBlock;
  s.work_units = tiles * split;
  s.waves = ceil_div(s.work_units, sms);
  const double tile_area = static_cast<double>(tile.m) * static_cast<double>(tile.n);
  // One unit: its padded k loop plus one k-block of pipeline fill.
  const double unit_flops = 2.0 * tile_area * static_cast<double>(k_padded + kGemmKBlock);
  const double per_sm_rate =
      peak_flops_per_s(gpu, w.dtype) * gemm_efficiency_ceiling(gpu, w.dtype) / static_cast<double>(sms);
  const double compute_s = static_cast<double>(s.waves) * unit_flops / per_sm_rate;
  s.compute_time = to_duration(compute_s);
  const double useful = static_cast<double>(w.sum_m) * static_cast<double>(w.n) * static_cast<double>(w.k);
  s.quantization_efficiency =
      useful / (static_cast<double>(s.waves) * static_cast<double>(sms) * tile_area * static_cast<double>(k_split));
  s.k_efficiency = static_cast<double>(k_split) / static_cast<double>(k_padded + kGemmKBlock);
  // HBM traffic: A (sum_m x k), the active groups' B (k x n each), C, and for
  // split-K the fp32 partial sums written and read back.
  const std::int64_t in = precision_bytes(w.dtype);
  std::int64_t bytes = in * (w.sum_m * w.k + w.active * w.k * w.n) + output_bytes(w.dtype) * w.sum_m * w.n;
  if (split > 1) bytes += 2 * static_cast<std::int64_t>(split) * w.sum_m * w.n * 4;
  s.bytes = Bytes(bytes);
  return s;
}

double roofline_seconds(const GpuSpec& gpu, const GemmSchedule& s) {
  return std::max(s.compute_time.seconds(), memory_seconds(gpu, s.bytes.as_double()));
}

// Candidate tiles: Tn from 112 to 256 in steps of 16 for Tm = 128 (DeepGEMM
// picks such "unaligned" block sizes to fill the SMs), Tm = 256 with Tn <= 128
// (the same tile area as 128 x 256), and 64-row tiles only for m <= 64 (a
// smaller tile has less operand reuse; libraries use it for skinny GEMMs).
constexpr std::array<std::int32_t, 10> kTileCols = {112, 128, 144, 160, 176, 192, 208, 224, 240, 256};
constexpr std::int32_t kMaxSplitK = 16;
constexpr std::int64_t kMinSplitK = 4 * kGemmKBlock;  // each split keeps >= 4 k-blocks

GemmSchedule best_schedule(const GpuSpec& gpu, const GemmWork& w) {
  GemmSchedule best;
  if (w.empty()) return best;
  double best_s = 0.0;
  bool have = false;
  const auto consider = [&](GemmTile tile) {
    const std::int64_t rows = w.row_tiles_for(tile.m);
    const std::int64_t tiles = rows * ceil_div(w.n, tile.n);
    // Split-K only when the output tiles leave SMs idle.
    std::int64_t max_split = 1;
    if (tiles < gpu.sm_count) {
      max_split = std::min<std::int64_t>({kMaxSplitK, gpu.sm_count / tiles, std::max<std::int64_t>(1, w.k / kMinSplitK)});
    }
    for (std::int64_t split = 1; split <= max_split; ++split) {
      const GemmSchedule s = schedule(gpu, w, tile, static_cast<std::int32_t>(split), rows);
      const double t = roofline_seconds(gpu, s);
      if (!have || t < best_s) {
        best = s;
        best_s = t;
        have = true;
      }
    }
  };
  for (const std::int32_t tn : kTileCols) consider({128, tn});
  consider({256, 112});
  consider({256, 128});
  if (w.max_m <= 64) {
    for (const std::int32_t tn : kTileCols) consider({64, tn});
  }
  return best;
}

GemmSchedule explicit_schedule(const GpuSpec& gpu, const GemmWork& w, GemmTile tile, std::int32_t split_k) {
  check_gpu(gpu);
  if (tile.m < 1 || tile.n < 1) invalid("GEMM tile must be at least 1 x 1");
  if (split_k < 1) invalid("split_k must be >= 1");
  // Rows of tiles for an arbitrary Tm (the precomputed ones cover 64/128/256).
  std::int64_t rows = w.row_tiles_for(tile.m);
  if (rows < 0) invalid("GEMM tile rows must be 64, 128 or 256");
  return schedule(gpu, w, tile, split_k, rows);
}

OpCost gemm_cost(const GpuSpec& gpu, const GemmWork& w) {
  OpCost c;
  if (w.empty()) return c;  // no work, no launch
  const GemmSchedule s = best_schedule(gpu, w);
  c.flops = 2.0 * static_cast<double>(w.sum_m) * static_cast<double>(w.n) * static_cast<double>(w.k);
  c.bytes = s.bytes;
  c.compute_time = s.compute_time;
  c.memory_time = to_duration(memory_seconds(gpu, s.bytes.as_double()));
  c.kernels = 1;
  c.time = std::max(c.compute_time, c.memory_time) + gpu.kernel_launch_overhead;
  return c;
}

// A roofline kernel from its FLOPs at `flops_per_s` and its bytes.
OpCost roofline(const GpuSpec& gpu, double flops, double flops_per_s, std::int64_t bytes) {
  OpCost c;
  c.flops = flops;
  c.bytes = Bytes(bytes);
  c.compute_time = flops > 0.0 ? to_duration(flops / flops_per_s) : Duration::zero();
  c.memory_time = to_duration(memory_seconds(gpu, static_cast<double>(bytes)));
  c.kernels = 1;
  c.time = std::max(c.compute_time, c.memory_time) + gpu.kernel_launch_overhead;
  return c;
}

OpCost apply_calibration(const GpuSpec& gpu, OpCost c, const std::optional<Duration>& measured) {
  if (measured && c.kernels > 0) {
    c.time = *measured + gpu.kernel_launch_overhead * c.kernels;
    c.calibrated = true;
  }
  return c;
}

}  // namespace

// --- free functions ------------------------------------------------------------

double peak_flops_per_s(const GpuSpec& gpu, Precision dtype) {
  switch (dtype) {
    case Precision::kFp8:
      return (gpu.fp8_tflops > 0.0 ? gpu.fp8_tflops : gpu.bf16_tflops) * 1e12;
    case Precision::kFp32:
      return gpu.fp32_tflops * 1e12;
    case Precision::kBf16:
    case Precision::kFp16:
      break;
  }
  return gpu.bf16_tflops * 1e12;
}

double gemm_efficiency_ceiling(const GpuSpec& gpu, Precision dtype) {
  if (dtype == Precision::kFp8 && gpu.fp8_tflops > 0.0 && gpu.max_gemm_efficiency_fp8 > 0.0) {
    return gpu.max_gemm_efficiency_fp8;
  }
  return gpu.max_gemm_efficiency;
}

Bandwidth achievable_memory_bandwidth(const GpuSpec& gpu) { return gpu.memory_bandwidth * gpu.memory_efficiency; }

GemmSchedule gemm_schedule(const GpuSpec& gpu, const GemmOp& op, GemmTile tile, std::int32_t split_k) {
  return explicit_schedule(gpu, work_of(op), tile, split_k);
}

GemmSchedule grouped_gemm_schedule(const GpuSpec& gpu, const GroupedGemmOp& op, GemmTile tile,
                                   std::int32_t split_k) {
  return explicit_schedule(gpu, work_of(op), tile, split_k);
}

GemmSchedule best_gemm_schedule(const GpuSpec& gpu, const GemmOp& op) {
  check_gpu(gpu);
  return best_schedule(gpu, work_of(op));
}

GemmSchedule best_grouped_gemm_schedule(const GpuSpec& gpu, const GroupedGemmOp& op) {
  check_gpu(gpu);
  return best_schedule(gpu, work_of(op));
}

namespace {
void check_attention_heads(std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, const char* op) {
  if (heads < 1) invalid(std::string(op) + ".heads must be >= 1");
  if (kv_heads < 1 || kv_heads > heads || heads % kv_heads != 0) {
    invalid(std::string(op) + ".kv_heads (" + std::to_string(kv_heads) + ") must divide heads (" +
            std::to_string(heads) + ")");
  }
  if (head_dim < 1) invalid(std::string(op) + ".head_dim must be >= 1");
}

void check_prefill(const AttentionPrefillOp& op) {
  check_attention_heads(op.heads, op.kv_heads, op.head_dim, "attention_prefill");
  require_non_negative(op.batch, "attention_prefill", "batch");
  require_non_negative(op.seq_q, "attention_prefill", "seq_q");
  require_non_negative(op.seq_kv, "attention_prefill", "seq_kv");
  if (op.causal && op.seq_q > op.seq_kv) {
    invalid("attention_prefill: causal seq_q (" + std::to_string(op.seq_q) + ") exceeds seq_kv (" +
            std::to_string(op.seq_kv) + "); the new tokens are part of the keys");
  }
}
}  // namespace

double attention_prefill_flops(const AttentionPrefillOp& op) {
  check_prefill(op);
  if (op.seq_kv == 0) return 0.0;
  const double full = 4.0 * static_cast<double>(op.batch) * static_cast<double>(op.heads) *
                      static_cast<double>(op.seq_q) * static_cast<double>(op.seq_kv) * static_cast<double>(op.head_dim);
  if (!op.causal) return full;
  // Query i of the last seq_q positions sees seq_kv - seq_q + i keys: on
  // average seq_kv - seq_q / 2 (continuous form; FA-2's 0.5 when seq_q = seq_kv).
  return full * (1.0 - static_cast<double>(op.seq_q) / (2.0 * static_cast<double>(op.seq_kv)));
}

Bytes attention_decode_kv_bytes(const AttentionDecodeOp& op) {
  check_attention_heads(op.heads, op.kv_heads, op.head_dim, "attention_decode");
  require_non_negative(op.batch, "attention_decode", "batch");
  require_non_negative(op.context, "attention_decode", "context");
  return Bytes(op.batch * op.context * 2 * op.kv_heads * op.head_dim * precision_bytes(op.dtype));
}

// --- ComputeModel ----------------------------------------------------------------

ComputeModel::ComputeModel(GpuSpec gpu) : ComputeModel(std::move(gpu), nullptr) {}

ComputeModel::ComputeModel(GpuSpec gpu, std::shared_ptr<const CalibrationTable> calibration)
    : gpu_(std::move(gpu)), calibration_(std::move(calibration)) {
  check_gpu(gpu_);
}

namespace {
template <typename Op>
std::optional<Duration> measured(const CalibrationTable* table, const Op& op) {
  if (table == nullptr) return std::nullopt;
  return table->lookup(op);
}
}  // namespace

OpCost ComputeModel::cost(const GemmOp& op) const {
  return apply_calibration(gpu_, gemm_cost(gpu_, work_of(op)), measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const GroupedGemmOp& op) const {
  return apply_calibration(gpu_, gemm_cost(gpu_, work_of(op)), measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const AttentionPrefillOp& op) const {
  const double flops = attention_prefill_flops(op);
  if (op.batch == 0 || op.seq_q == 0 || op.seq_kv == 0) return {};
  // FlashAttention-2 runs one thread block per (batch, head, block of 128
  // queries); blocks run in waves over the SMs (Dao 2023, sec. 3.2).
  constexpr std::int64_t kQueryBlock = 128;
  const std::int64_t blocks = op.batch * op.heads * ceil_div(op.seq_q, kQueryBlock);
  const std::int64_t waves = ceil_div(blocks, gpu_.sm_count);
  const double quantization = static_cast<double>(op.batch * op.heads * op.seq_q) /
                              (static_cast<double>(waves) * static_cast<double>(gpu_.sm_count) *
                               static_cast<double>(kQueryBlock));
  const double rate = peak_flops_per_s(gpu_, op.dtype) * gpu_.attention_efficiency * quantization;
  // Q read and O written once per query head, K and V read once per KV head.
  const std::int64_t bytes = precision_bytes(op.dtype) * (2 * op.batch * op.seq_q * op.heads * op.head_dim +
                                                          2 * op.batch * op.seq_kv * op.kv_heads * op.head_dim);
  return apply_calibration(gpu_, roofline(gpu_, flops, rate, bytes), measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const AttentionDecodeOp& op) const {
  const Bytes kv = attention_decode_kv_bytes(op);
  if (op.batch == 0 || op.context == 0) return {};
  // Flash-Decoding splits the KV sequence over the SMs, so there is no wave
  // quantization to speak of; the kernel streams the cache once.
  const double flops = 4.0 * static_cast<double>(op.batch) * static_cast<double>(op.heads) *
                       static_cast<double>(op.context) * static_cast<double>(op.head_dim);
  const double rate = peak_flops_per_s(gpu_, op.dtype) * gpu_.attention_efficiency;
  const std::int64_t qo = 2 * op.batch * op.heads * op.head_dim * activation_bytes(op.dtype);
  return apply_calibration(gpu_, roofline(gpu_, flops, rate, kv.count() + qo), measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const RouterOp& op) const {
  require_non_negative(op.tokens, "router", "tokens");
  require_non_negative(op.hidden, "router", "hidden");
  require_non_negative(op.experts, "router", "experts");
  require_non_negative(op.top_k, "router", "top_k");
  if (op.top_k > op.experts) {
    invalid("router.top_k (" + std::to_string(op.top_k) + ") exceeds experts (" + std::to_string(op.experts) + ")");
  }
  if (op.tokens == 0 || op.experts == 0 || op.hidden == 0) return {};
  // Kernel 1: logits = x[tokens x hidden] W[hidden x experts].
  const OpCost logits = gemm_cost(gpu_, work_of(GemmOp{op.tokens, op.experts, op.hidden, op.dtype}));
  // Kernel 2: top-k over the logits (read once) writing int32 indices and
  // fp32 weights; memory-bound, ~experts comparisons per token.
  const std::int64_t topk_bytes = op.tokens * op.experts * output_bytes(op.dtype) + op.tokens * op.top_k * 8;
  const OpCost topk = roofline(gpu_, static_cast<double>(op.tokens * op.experts),
                               peak_flops_per_s(gpu_, Precision::kFp32), topk_bytes);
  OpCost c;
  c.flops = logits.flops + topk.flops;
  c.bytes = logits.bytes + topk.bytes;
  c.compute_time = logits.compute_time + topk.compute_time;
  c.memory_time = logits.memory_time + topk.memory_time;
  c.kernels = 2;
  c.time = logits.time + topk.time;
  return apply_calibration(gpu_, c, measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const NormOp& op) const {
  require_non_negative(op.tokens, "norm", "tokens");
  require_non_negative(op.hidden, "norm", "hidden");
  if (op.tokens == 0 || op.hidden == 0) return {};
  const bool layer = op.kind == NormKind::kLayerNorm;
  const std::int64_t e = precision_bytes(op.dtype);
  // x read, y written; weight (and LayerNorm bias) read once.
  const std::int64_t bytes = 2 * op.tokens * op.hidden * e + (layer ? 2 : 1) * op.hidden * e;
  // RMSNorm ~4 FLOPs per element (square, add, scale, weight); LayerNorm ~7.
  const double flops = static_cast<double>(op.tokens * op.hidden) * (layer ? 7.0 : 4.0);
  return apply_calibration(gpu_, roofline(gpu_, flops, peak_flops_per_s(gpu_, Precision::kFp32), bytes),
                           measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const ElementwiseOp& op) const {
  require_non_negative(op.elements, "elementwise", "elements");
  if (op.inputs < 0 || op.outputs < 0) invalid("elementwise.inputs/outputs must be >= 0");
  if (!(op.flops_per_element >= 0.0) || !std::isfinite(op.flops_per_element)) {
    invalid("elementwise.flops_per_element must be a finite number >= 0");
  }
  if (op.elements == 0 || op.inputs + op.outputs == 0) return {};
  const std::int64_t bytes = op.elements * precision_bytes(op.dtype) * (op.inputs + op.outputs);
  const double flops = static_cast<double>(op.elements) * op.flops_per_element;
  return apply_calibration(gpu_, roofline(gpu_, flops, peak_flops_per_s(gpu_, Precision::kFp32), bytes),
                           measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const MemoryOp& op) const {
  if (op.bytes.count() < 0) invalid("memory op bytes must be >= 0");
  if (op.bytes.count() == 0) return {};
  return apply_calibration(gpu_, roofline(gpu_, 0.0, 1.0, op.bytes.count()), measured(calibration_.get(), op));
}

OpCost ComputeModel::cost(const ComputeOp& op) const {
  if (!(op.flops >= 0.0) || !std::isfinite(op.flops)) invalid("compute op flops must be a finite number >= 0");
  if (op.flops == 0.0) return {};
  const double rate = peak_flops_per_s(gpu_, op.dtype) * gemm_efficiency_ceiling(gpu_, op.dtype);
  return apply_calibration(gpu_, roofline(gpu_, op.flops, rate, 0), measured(calibration_.get(), op));
}

}  // namespace moesim
