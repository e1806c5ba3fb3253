#pragma once
// Measured kernel times that override the compute model (sim/compute_model.hpp)
// where they have a row. File format (docs/compute-model.md, example in
// experiments/calibration/example_kernels.csv):
//
//   op,shape,measured_us
//   gemm,4096x4096x4096xbf16,183.2
//
// One row per line; an optional header line `op,shape,measured_us`; blank
// lines and lines starting with '#' are ignored; spaces around fields are
// ignored. A row matches an op exactly (same op and every number of the
// shape). Shape keys, numbers in decimal, dtypes bf16|fp16|fp8|fp32:
//
//   gemm               MxNxKxDTYPE                         4096x4096x4096xbf16
//   grouped_gemm       NxKxDTYPE:M1/M2/.../ME (all experts, 0s included)
//                                                          2048x7168xfp8:128/0/64
//   attention_prefill  BxHxKVHxSQxSKVxDxDTYPExcausal|full  1x32x8x4096x4096x128xbf16xcausal
//   attention_decode   BxHxKVHxCTXxDxDTYPE                 64x32x8x4096x128xbf16
//   router             TOKENSxHIDDENxEXPERTSxTOPKxDTYPE    4096x7168x256x8xbf16
//   rmsnorm|layernorm  TOKENSxHIDDENxDTYPE                 4096x7168xbf16
//   elementwise        ELEMENTSxDTYPExINPUTSxOUTPUTS       29360128xbf16x2x1
//   memory             BYTES                               1073741824
//   compute            FLOPSxDTYPE                         1000000000000xbf16
//
// measured_us replaces the op's modelled execution time; the model's launch
// overhead (one per kernel: two for router) is still added, because measured
// kernel times (CUDA events around back-to-back launches, Nsight kernel
// durations) do not contain the launch gap.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sim/units.hpp"

namespace moesim {

struct GemmOp;
struct GroupedGemmOp;
struct AttentionPrefillOp;
struct AttentionDecodeOp;
struct RouterOp;
struct NormOp;
struct ElementwiseOp;
struct MemoryOp;
struct ComputeOp;

class CalibrationTable {
 public:
  CalibrationTable() = default;

  /// Reads a calibration CSV. Throws InputError naming the file and line for
  /// a missing file, a malformed line, an unknown op, a bad shape key, a time
  /// that is not a positive number, or a duplicate row.
  static CalibrationTable load(const std::string& path);
  /// Parses CSV text; `origin` names it in error messages (e.g. the path).
  static CalibrationTable parse(std::string_view text, const std::string& origin);

  /// The measured kernel time for an op, if the table has its row.
  [[nodiscard]] std::optional<Duration> lookup(const GemmOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const GroupedGemmOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const AttentionPrefillOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const AttentionDecodeOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const RouterOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const NormOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const ElementwiseOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const MemoryOp& op) const;
  [[nodiscard]] std::optional<Duration> lookup(const ComputeOp& op) const;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  /// The op names accepted in the `op` column.
  static std::span<const std::string_view> op_names();

  /// A fixed-size key: the op kind and up to 8 integers of the shape. Grouped
  /// GEMMs key their per-expert counts separately (variable length).
  struct Key {
    std::uint8_t op = 0;
    std::int64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };

 private:
  struct GroupedRow {
    std::int64_t n = 0;
    std::int64_t k = 0;
    std::int64_t dtype = 0;
    std::vector<std::int64_t> tokens;
    Duration measured{};
    std::size_t line = 0;  // where it was read, for duplicate messages
  };

  std::optional<Duration> find(const Key& key) const;

  std::unordered_map<Key, Duration, KeyHash> rows_;
  // Grouped rows bucketed by a hash of (n, k, dtype, tokens).
  std::unordered_multimap<std::uint64_t, GroupedRow> grouped_;
  std::size_t size_ = 0;
};

}  // namespace moesim
