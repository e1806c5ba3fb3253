#pragma once
// Results files: an HDF5 writer over the HDF5 C API, and the schema helpers
// that `moesim run` / `moesim sweep` call. The schema itself (which group
// holds what) is documented in docs/results-format.md; the TableSpec constants
// below are its machine-checked half.
//
// Design choices (see docs/results-format.md for the user-facing side):
// - A file is written at a temporary path and appears under its name only on
//   commit() (AtomicFile): a killed run never leaves a corrupt results file
//   where a good one was.
// - Tables are groups holding one 1-D dataset per column (equal lengths), with
//   the column order in the group's "columns" attribute. h5py and pandas read
//   that with one line, h5dump shows it plainly, and columns of different
//   types need no compound type (which h5py exposes as structured arrays).
// - Strings are variable-length UTF-8 (h5py: `.asstr()` for datasets;
//   attributes come back as str).
// - Object timestamps are switched off, so the same content gives a
//   byte-identical file (bit-identical results for the same seed).
// - Large numeric datasets are chunked and gzip-compressed (with the shuffle
//   filter), readable by any HDF5 build with zlib (h5py's included).
// - The HDF5 library prints nothing: every error becomes an exception whose
//   message names the file, the object and HDF5's own reason.
// - Debian's HDF5 is the serial, non-thread-safe build: every call into it
//   goes through one process-wide lock, so writers and readers may be used
//   from several threads (they are serialised, not parallel).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace moesim::analysis {

/// The values of a table column or a 1-D dataset.
using ColumnData = std::variant<std::vector<double>, std::vector<std::int64_t>, std::vector<std::string>>;

/// One column of a table: its dataset name, values and (optional) unit, which
/// is stored as the dataset's "units" attribute. Names follow the schema:
/// snake_case with the unit as suffix where there is one (`ttft_s`, `bytes`).
struct Column {
  std::string name;
  ColumnData values;
  std::string unit;
};

/// Number of rows in a column.
[[nodiscard]] std::size_t column_size(const Column& column);

/// An attribute value. Integers are int64 (uint64 for values that need it,
/// e.g. seeds); arrays are 1-D attributes.
using AttributeValue = std::variant<std::string, std::int64_t, std::uint64_t, double, std::vector<std::string>,
                                    std::vector<double>, std::vector<std::int64_t>>;

enum class Compression : std::uint8_t {
  kAuto,  // gzip (level 4, with shuffle) for numeric datasets of >= kAutoCompressElements values
  kNone,  // contiguous, uncompressed
  kGzip,  // chunked and gzip-compressed whatever the size (numeric datasets only)
};

/// Below this many elements a dataset is stored contiguous: chunking and
/// compression cost more than they save on small datasets.
inline constexpr std::size_t kAutoCompressElements = 4096;

struct DatasetOptions {
  std::string unit;  // stored as the dataset's "units" attribute when not empty
  Compression compression = Compression::kAuto;
};

/// Writes one HDF5 results file. RAII: the file appears at `target` only when
/// commit() succeeds; destroying the writer without commit() removes the
/// temporary file and leaves any existing target untouched.
///
/// Paths are absolute HDF5 paths ("/summary", "/experts/load"); missing
/// parent groups are created. Every method throws on failure:
///   moesim::InputError     the target cannot be created (bad directory, ...);
///   std::invalid_argument  a caller error (bad name, unequal column lengths,
///                          shape mismatch, writing an object twice);
///   std::runtime_error     an HDF5 or I/O failure (disk full, ...);
///   std::logic_error       use after commit().
class Hdf5Writer {
 public:
  explicit Hdf5Writer(std::filesystem::path target);
  ~Hdf5Writer();
  Hdf5Writer(Hdf5Writer&&) noexcept;
  Hdf5Writer& operator=(Hdf5Writer&&) noexcept;
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  [[nodiscard]] const std::filesystem::path& target() const;
  /// The temporary file being written ("<target>.tmp.<pid>.<n>").
  [[nodiscard]] const std::filesystem::path& temp_path() const;

  /// Creates a group and any missing parents; an existing group is fine.
  void create_group(std::string_view path);

  /// Sets (or replaces) an attribute on a group or dataset ("/" is the root);
  /// creates `object` as a group when nothing exists there yet.
  void set_attribute(std::string_view object, std::string_view name, const AttributeValue& value);
  void set_attribute(std::string_view object, std::string_view name, std::string_view value) {
    set_attribute(object, name, AttributeValue(std::string(value)));
  }
  void set_attribute(std::string_view object, std::string_view name, const std::string& value) {
    set_attribute(object, name, AttributeValue(value));
  }
  void set_attribute(std::string_view object, std::string_view name, const char* value) {
    set_attribute(object, name, AttributeValue(std::string(value)));
  }

  /// 1-D datasets.
  void write_dataset(std::string_view path, std::span<const double> values, const DatasetOptions& options = {});
  void write_dataset(std::string_view path, std::span<const std::int64_t> values,
                     const DatasetOptions& options = {});
  void write_dataset(std::string_view path, std::span<const std::string> values,
                     const DatasetOptions& options = {});
  /// A 1-D dataset of whichever type `values` holds.
  void write_values(std::string_view path, const ColumnData& values, const DatasetOptions& options = {});

  /// 2-D datasets from row-major data: values[r * cols + c] is row r, column c.
  /// Throws std::invalid_argument unless values.size() == rows * cols.
  void write_matrix(std::string_view path, std::span<const double> row_major, std::size_t rows, std::size_t cols,
                    const DatasetOptions& options = {});
  void write_matrix(std::string_view path, std::span<const std::int64_t> row_major, std::size_t rows,
                    std::size_t cols, const DatasetOptions& options = {});

  /// A table: group `path` with one 1-D dataset per column, attributes
  /// "columns" (the names, in order) and "rows" (int64). Column names must be
  /// non-empty, unique, without '/', and all columns of equal length.
  void write_table(std::string_view path, std::span<const Column> columns, Compression compression = Compression::kAuto);

  /// Closes the file, makes it durable and renames it over the target.
  void commit();

 private:
  struct Impl;
  [[nodiscard]] Impl& impl() const;  // throws std::logic_error when moved from
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Schema helpers (docs/results-format.md). The run/sweep code builds Columns
// from its metrics and calls these; they check the required columns so that
// experiments/plot.py and users' scripts can rely on them.

enum class ColumnType : std::uint8_t { kDouble, kInt64, kString };

struct ColumnSpec {
  std::string_view name;
  ColumnType type;
  std::string_view unit;  // "" for dimensionless / identifiers
};

struct TableSpec {
  std::string_view path;
  std::span<const ColumnSpec> columns;  // required; extra columns are allowed after them
};

namespace schema {
inline constexpr int kFormatVersion = 1;
inline constexpr std::string_view kFormatName = "moesim-results";

inline constexpr std::string_view kSummary = "/summary";
inline constexpr std::string_view kExperts = "/experts";
inline constexpr std::string_view kExpertLoad = "/experts/load";            // 2-D layers x experts, tokens
inline constexpr std::string_view kExpertImbalance = "/experts/imbalance";  // 1-D per layer, max/mean
inline constexpr std::string_view kSweep = "/sweep";
inline constexpr std::string_view kSearch = "/search";

/// /requests: one row per request (serving; batch mode: one per sequence).
extern const TableSpec kRequests;
/// /breakdown: one row per GPU, seconds of each kind.
extern const TableSpec kBreakdown;
/// /links: one row per directed link.
extern const TableSpec kLinks;
/// /timeline: one row per executed op (optional, can be large).
extern const TableSpec kTimeline;
/// Every fixed-column table above, for tools and tests.
[[nodiscard]] std::span<const TableSpec* const> tables();
}  // namespace schema

/// Provenance, written as root attributes.
struct Provenance {
  std::string kind;             // "run", "sweep" or "search"
  std::uint64_t seed = 0;       // run.seed
  std::string scenario_ini;     // the resolved scenario, as INI text (every option, defaults included)
  std::string command;          // the command line that produced the file
  std::string moesim_version;   // empty: this build's kVersion
  std::string git_commit;       // empty: this build's kGitCommit
};

/// Root attributes: format ("moesim-results"), format_version, kind,
/// moesim_version, git_commit, seed (uint64), scenario, command.
void write_provenance(Hdf5Writer& writer, const Provenance& provenance);

/// Writes a table after checking that every column `spec` requires is present
/// with its type (std::invalid_argument naming the column otherwise). A column
/// without a unit gets the spec's unit.
void write_table(Hdf5Writer& writer, const TableSpec& spec, std::vector<Column> columns,
                 Compression compression = Compression::kAuto);

/// Flattens nested JSON objects into ("a.b.c", leaf) pairs, in document order
/// (nlohmann::json objects iterate in sorted key order). Arrays are leaves.
[[nodiscard]] std::vector<std::pair<std::string, nlohmann::json>> flatten_json(const nlohmann::json& value);

/// Writes every leaf of `object` (flattened, "ttft_s.p50") as an attribute of
/// group `group` (created if needed): numbers as int64/double (unsigned beyond
/// int64 as uint64), booleans as int64 0/1, strings as strings, arrays of
/// numbers as 1-D attributes, arrays of strings as string arrays, any other
/// array as its JSON text; nulls are skipped. Used for /summary.
void write_json_attributes(Hdf5Writer& writer, std::string_view group, const nlohmann::json& object);

/// Columns from rows of JSON objects (e.g. `sweep --json` rows): each row is
/// flattened; the columns are the union of the keys in first-seen order. A key
/// whose values are all integers (or booleans) is an int64 column, any number
/// makes it double, strings make it a string column; a row that lacks a numeric
/// key gives NaN (the column becomes double), a string key "", and a key with
/// mixed kinds becomes a string column of JSON texts. Used for /sweep, /search.
[[nodiscard]] std::vector<Column> columns_from_json_rows(std::span<const nlohmann::json> rows);

/// /sweep and /search: the table of columns_from_json_rows(rows), with the
/// `leading` keys (the varied options, or the plan's degrees) first in the
/// given order and named in the group's "varied" attribute. A leading key
/// that no row has is an std::invalid_argument.
void write_json_table(Hdf5Writer& writer, std::string_view path, std::span<const nlohmann::json> rows,
                      std::span<const std::string> leading, Compression compression = Compression::kAuto);

}  // namespace moesim::analysis
