// Calibration CSV reader and lookup (format in calibration_table.hpp and
// docs/compute-model.md).
#include "sim/calibration_table.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "sim/compute_model.hpp"
#include "sim/options.hpp"

namespace moesim {

namespace {

// Op kinds, in the order of kOpNames.
enum OpIndex : std::uint8_t {
  kGemm,
  kGroupedGemm,
  kAttentionPrefill,
  kAttentionDecode,
  kRouter,
  kRmsNorm,
  kLayerNorm,
  kElementwise,
  kMemory,
  kCompute,
  kOpCount,
};

constexpr std::array<std::string_view, kOpCount> kOpNames = {
    "gemm",   "grouped_gemm", "attention_prefill", "attention_decode", "router",
    "rmsnorm", "layernorm",   "elementwise",       "memory",           "compute",
};

// Shape key formats, for error messages.
constexpr std::array<std::string_view, kOpCount> kShapeFormats = {
    "MxNxKxDTYPE (e.g. 4096x4096x4096xbf16)",
    "NxKxDTYPE:M1/M2/.../ME (e.g. 2048x7168xfp8:128/0/64)",
    "BxHxKVHxSQxSKVxDxDTYPExcausal|full (e.g. 1x32x8x4096x4096x128xbf16xcausal)",
    "BxHxKVHxCTXxDxDTYPE (e.g. 64x32x8x4096x128xbf16)",
    "TOKENSxHIDDENxEXPERTSxTOPKxDTYPE (e.g. 4096x7168x256x8xbf16)",
    "TOKENSxHIDDENxDTYPE (e.g. 4096x7168xbf16)",
    "TOKENSxHIDDENxDTYPE (e.g. 4096x7168xbf16)",
    "ELEMENTSxDTYPExINPUTSxOUTPUTS (e.g. 29360128xbf16x2x1)",
    "BYTES (e.g. 1073741824)",
    "FLOPSxDTYPE (e.g. 1000000000000xbf16)",
};

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  // splitmix64-style combination: deterministic across runs and platforms.
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  return h;
}

std::uint64_t grouped_hash(std::int64_t n, std::int64_t k, std::int64_t dtype, std::span<const std::int64_t> tokens) {
  std::uint64_t h = mix(mix(mix(0, static_cast<std::uint64_t>(n)), static_cast<std::uint64_t>(k)),
                        static_cast<std::uint64_t>(dtype));
  h = mix(h, static_cast<std::uint64_t>(tokens.size()));
  for (const std::int64_t t : tokens) h = mix(h, static_cast<std::uint64_t>(t));
  return h;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

constexpr std::int64_t dtype_code(Precision p) { return static_cast<std::int64_t>(p); }

// Throws InputError "origin:line: message".
class LineError {
 public:
  LineError(const std::string& origin, std::size_t line) : where_(origin + ":" + std::to_string(line) + ": ") {}
  [[noreturn]] void operator()(const std::string& message) const { throw InputError(where_ + message); }

 private:
  std::string where_;
};

std::int64_t parse_count(std::string_view text, std::string_view what, const LineError& fail) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < 0) {
    fail("shape field " + std::string(what) + " must be a non-negative integer, got '" + std::string(text) + "'");
  }
  return v;
}

std::int64_t parse_dtype_field(std::string_view text, const LineError& fail) {
  const auto p = parse_precision(text);
  if (!p) fail("unknown dtype '" + std::string(text) + "' in shape; use bf16, fp16, fp8 or fp32");
  return dtype_code(*p);
}

}  // namespace

std::span<const std::string_view> CalibrationTable::op_names() { return kOpNames; }

std::size_t CalibrationTable::KeyHash::operator()(const Key& k) const noexcept {
  std::uint64_t h = k.op;
  for (const std::int64_t v : k.v) h = mix(h, static_cast<std::uint64_t>(v));
  return static_cast<std::size_t>(h);
}

CalibrationTable CalibrationTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the calibration file (check the path)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

CalibrationTable CalibrationTable::parse(std::string_view text, const std::string& origin) {
  CalibrationTable table;
  std::unordered_map<Key, std::size_t, KeyHash> key_lines;
  std::size_t line_no = 0;
  bool seen_row = false;
  for (const std::string_view raw : split(text, '\n')) {
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const LineError fail(origin, line_no);
    const std::vector<std::string_view> fields = split(line, ',');
    if (fields.size() != 3) {
      fail("expected 3 comma-separated fields 'op,shape,measured_us', got " + std::to_string(fields.size()));
    }
    const std::string op = lower(trim(fields[0]));
    const std::string shape = lower(trim(fields[1]));
    const std::string_view time_text = trim(fields[2]);
    if (!seen_row && op == "op" && shape == "shape" && lower(time_text) == "measured_us") {
      seen_row = true;  // header
      continue;
    }
    seen_row = true;

    const auto it = std::find(kOpNames.begin(), kOpNames.end(), op);
    if (it == kOpNames.end()) {
      std::string known;
      for (const std::string_view n : kOpNames) known += (known.empty() ? "" : ", ") + std::string(n);
      fail("unknown op '" + op + "'; known ops: " + known);
    }
    const auto index = static_cast<std::uint8_t>(it - kOpNames.begin());

    double us = 0.0;
    {
      const auto* end = time_text.data() + time_text.size();
      const auto [ptr, ec] = std::from_chars(time_text.data(), end, us);
      if (time_text.empty() || ec != std::errc() || ptr != end || !std::isfinite(us) || !(us > 0.0)) {
        fail("measured_us must be a positive number of microseconds, got '" + std::string(time_text) + "'");
      }
    }
    const Duration measured = Duration::from_seconds(us * 1e-6);

    if (index == kGroupedGemm) {
      const std::size_t colon = shape.find(':');
      if (colon == std::string::npos) {
        fail("grouped_gemm shape must be " + std::string(kShapeFormats[kGroupedGemm]) + ", got '" + shape + "'");
      }
      const std::vector<std::string_view> head = split(std::string_view(shape).substr(0, colon), 'x');
      if (head.size() != 3) {
        fail("grouped_gemm shape must be " + std::string(kShapeFormats[kGroupedGemm]) + ", got '" + shape + "'");
      }
      GroupedRow row;
      row.n = parse_count(head[0], "N", fail);
      row.k = parse_count(head[1], "K", fail);
      row.dtype = parse_dtype_field(head[2], fail);
      for (const std::string_view t : split(std::string_view(shape).substr(colon + 1), '/')) {
        row.tokens.push_back(parse_count(t, "tokens of an expert", fail));
      }
      row.measured = measured;
      row.line = line_no;
      const std::uint64_t h = grouped_hash(row.n, row.k, row.dtype, row.tokens);
      const auto range = table.grouped_.equal_range(h);
      for (auto g = range.first; g != range.second; ++g) {
        if (g->second.n == row.n && g->second.k == row.k && g->second.dtype == row.dtype &&
            g->second.tokens == row.tokens) {
          fail("duplicate row for grouped_gemm " + shape + " (also on line " + std::to_string(g->second.line) + ")");
        }
      }
      table.grouped_.emplace(h, std::move(row));
      ++table.size_;
      continue;
    }

    const std::vector<std::string_view> parts = split(shape, 'x');
    const auto expect = [&](std::size_t count) {
      if (parts.size() != count) {
        fail(op + " shape must be " + std::string(kShapeFormats[index]) + ", got '" + shape + "'");
      }
    };
    Key key;
    key.op = index;
    switch (index) {
      case kGemm:
        expect(4);
        key.v[0] = parse_count(parts[0], "M", fail);
        key.v[1] = parse_count(parts[1], "N", fail);
        key.v[2] = parse_count(parts[2], "K", fail);
        key.v[3] = parse_dtype_field(parts[3], fail);
        break;
      case kAttentionPrefill: {
        expect(8);
        const char* names[] = {"B", "H", "KVH", "SQ", "SKV", "D"};
        for (std::size_t i = 0; i < 6; ++i) key.v[i] = parse_count(parts[i], names[i], fail);
        key.v[6] = parse_dtype_field(parts[6], fail);
        if (parts[7] == "causal") {
          key.v[7] = 1;
        } else if (parts[7] == "full") {
          key.v[7] = 0;
        } else {
          fail("attention_prefill mask must be 'causal' or 'full', got '" + std::string(parts[7]) + "'");
        }
        break;
      }
      case kAttentionDecode: {
        expect(6);
        const char* names[] = {"B", "H", "KVH", "CTX", "D"};
        for (std::size_t i = 0; i < 5; ++i) key.v[i] = parse_count(parts[i], names[i], fail);
        key.v[5] = parse_dtype_field(parts[5], fail);
        break;
      }
      case kRouter: {
        expect(5);
        const char* names[] = {"TOKENS", "HIDDEN", "EXPERTS", "TOPK"};
        for (std::size_t i = 0; i < 4; ++i) key.v[i] = parse_count(parts[i], names[i], fail);
        key.v[4] = parse_dtype_field(parts[4], fail);
        break;
      }
      case kRmsNorm:
      case kLayerNorm:
        expect(3);
        key.v[0] = parse_count(parts[0], "TOKENS", fail);
        key.v[1] = parse_count(parts[1], "HIDDEN", fail);
        key.v[2] = parse_dtype_field(parts[2], fail);
        break;
      case kElementwise:
        expect(4);
        key.v[0] = parse_count(parts[0], "ELEMENTS", fail);
        key.v[1] = parse_dtype_field(parts[1], fail);
        key.v[2] = parse_count(parts[2], "INPUTS", fail);
        key.v[3] = parse_count(parts[3], "OUTPUTS", fail);
        break;
      case kMemory:
        expect(1);
        key.v[0] = parse_count(parts[0], "BYTES", fail);
        break;
      case kCompute:
        expect(2);
        key.v[0] = parse_count(parts[0], "FLOPS", fail);
        key.v[1] = parse_dtype_field(parts[1], fail);
        break;
      default:
        fail("internal: unhandled op '" + op + "'");
    }
    const auto [pos, inserted] = key_lines.emplace(key, line_no);
    if (!inserted) {
      fail("duplicate row for " + op + " " + shape + " (also on line " + std::to_string(pos->second) + ")");
    }
    table.rows_.emplace(key, measured);
    ++table.size_;
  }
  return table;
}

std::optional<Duration> CalibrationTable::find(const Key& key) const {
  if (rows_.empty()) return std::nullopt;
  const auto it = rows_.find(key);
  if (it == rows_.end()) return std::nullopt;
  return it->second;
}

std::optional<Duration> CalibrationTable::lookup(const GemmOp& op) const {
  Key k;
  k.op = kGemm;
  k.v[0] = op.m;
  k.v[1] = op.n;
  k.v[2] = op.k;
  k.v[3] = dtype_code(op.dtype);
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const GroupedGemmOp& op) const {
  if (grouped_.empty()) return std::nullopt;
  const std::int64_t dtype = dtype_code(op.dtype);
  const auto range = grouped_.equal_range(grouped_hash(op.n, op.k, dtype, op.tokens_per_expert));
  for (auto it = range.first; it != range.second; ++it) {
    const GroupedRow& row = it->second;
    if (row.n == op.n && row.k == op.k && row.dtype == dtype &&
        std::equal(row.tokens.begin(), row.tokens.end(), op.tokens_per_expert.begin(), op.tokens_per_expert.end())) {
      return row.measured;
    }
  }
  return std::nullopt;
}

std::optional<Duration> CalibrationTable::lookup(const AttentionPrefillOp& op) const {
  Key k;
  k.op = kAttentionPrefill;
  k.v[0] = op.batch;
  k.v[1] = op.heads;
  k.v[2] = op.kv_heads;
  k.v[3] = op.seq_q;
  k.v[4] = op.seq_kv;
  k.v[5] = op.head_dim;
  k.v[6] = dtype_code(op.dtype);
  k.v[7] = op.causal ? 1 : 0;
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const AttentionDecodeOp& op) const {
  Key k;
  k.op = kAttentionDecode;
  k.v[0] = op.batch;
  k.v[1] = op.heads;
  k.v[2] = op.kv_heads;
  k.v[3] = op.context;
  k.v[4] = op.head_dim;
  k.v[5] = dtype_code(op.dtype);
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const RouterOp& op) const {
  Key k;
  k.op = kRouter;
  k.v[0] = op.tokens;
  k.v[1] = op.hidden;
  k.v[2] = op.experts;
  k.v[3] = op.top_k;
  k.v[4] = dtype_code(op.dtype);
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const NormOp& op) const {
  Key k;
  k.op = op.kind == NormKind::kLayerNorm ? kLayerNorm : kRmsNorm;
  k.v[0] = op.tokens;
  k.v[1] = op.hidden;
  k.v[2] = dtype_code(op.dtype);
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const ElementwiseOp& op) const {
  Key k;
  k.op = kElementwise;
  k.v[0] = op.elements;
  k.v[1] = dtype_code(op.dtype);
  k.v[2] = op.inputs;
  k.v[3] = op.outputs;
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const MemoryOp& op) const {
  Key k;
  k.op = kMemory;
  k.v[0] = op.bytes.count();
  return find(k);
}

std::optional<Duration> CalibrationTable::lookup(const ComputeOp& op) const {
  // Rows are keyed by a whole number of FLOPs; a fractional count never matches.
  if (!(op.flops >= 0.0) || op.flops >= 9.2e18 || std::floor(op.flops) != op.flops) return std::nullopt;
  Key k;
  k.op = kCompute;
  k.v[0] = static_cast<std::int64_t>(op.flops);
  k.v[1] = dtype_code(op.dtype);
  return find(k);
}

}  // namespace moesim
