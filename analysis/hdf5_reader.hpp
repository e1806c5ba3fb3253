#pragma once
// A small reader of HDF5 results files: attributes, 1-D/2-D datasets and the
// tables of docs/results-format.md. For the round-trip tests and for tools
// that read results back (verify, sweep). Not a general HDF5 browser.
//
// Every error is a moesim::InputError naming the file and the object: a
// results file is user input to the tools that read it.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/hdf5_writer.hpp"

namespace moesim::analysis {

/// A 2-D dataset read back: data[r * cols + c].
template <class T>
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<T> data;
  [[nodiscard]] const T& at(std::size_t r, std::size_t c) const { return data.at(r * cols + c); }
};

class Hdf5Reader {
 public:
  /// Opens `file` read-only. InputError when it is missing or not HDF5.
  explicit Hdf5Reader(const std::filesystem::path& file);
  ~Hdf5Reader();
  Hdf5Reader(Hdf5Reader&&) noexcept;
  Hdf5Reader& operator=(Hdf5Reader&&) noexcept;
  Hdf5Reader(const Hdf5Reader&) = delete;
  Hdf5Reader& operator=(const Hdf5Reader&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const;

  /// Whether a group or dataset exists at `path` (false for malformed paths).
  [[nodiscard]] bool exists(std::string_view path) const;
  [[nodiscard]] bool is_group(std::string_view path) const;
  [[nodiscard]] bool is_dataset(std::string_view path) const;
  /// Names of a group's members, sorted.
  [[nodiscard]] std::vector<std::string> children(std::string_view group) const;

  [[nodiscard]] std::vector<std::string> attribute_names(std::string_view object) const;  // sorted
  [[nodiscard]] bool has_attribute(std::string_view object, std::string_view name) const;
  /// An attribute as stored: scalar or 1-D; strings (fixed or variable
  /// length), signed integers as int64, unsigned 64-bit scalars as uint64
  /// (arrays of any integer as int64), floats as double.
  [[nodiscard]] AttributeValue attribute(std::string_view object, std::string_view name) const;
  [[nodiscard]] std::string string_attribute(std::string_view object, std::string_view name) const;
  /// An integer attribute (uint64 only if it fits in int64).
  [[nodiscard]] std::int64_t int_attribute(std::string_view object, std::string_view name) const;
  /// A numeric attribute as double (integers converted).
  [[nodiscard]] double double_attribute(std::string_view object, std::string_view name) const;

  /// Dimensions of a dataset (1 entry for 1-D, 2 for 2-D).
  [[nodiscard]] std::vector<std::size_t> shape(std::string_view dataset) const;
  /// The dataset's values as stored (2-D flattened row-major).
  [[nodiscard]] ColumnData read(std::string_view dataset) const;
  /// A numeric dataset as doubles (integers converted by HDF5).
  [[nodiscard]] std::vector<double> read_doubles(std::string_view dataset) const;
  /// An integer dataset; InputError for a floating-point one.
  [[nodiscard]] std::vector<std::int64_t> read_int64s(std::string_view dataset) const;
  [[nodiscard]] std::vector<std::string> read_strings(std::string_view dataset) const;
  /// A 2-D dataset; InputError unless it has rank 2.
  [[nodiscard]] Matrix<double> read_matrix_doubles(std::string_view dataset) const;
  [[nodiscard]] Matrix<std::int64_t> read_matrix_int64s(std::string_view dataset) const;
  /// A table (a group with a "columns" attribute), columns in that order, each
  /// with its "units" attribute as unit. InputError when the columns differ
  /// in length or a listed column is missing.
  [[nodiscard]] std::vector<Column> read_table(std::string_view group) const;

 private:
  struct Impl;
  [[nodiscard]] const Impl& impl() const;  // throws std::logic_error when moved from
  std::unique_ptr<Impl> impl_;
};

}  // namespace moesim::analysis
