#include "analysis/hdf5_writer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "analysis/atomic_file.hpp"
#include "analysis/hdf5_detail.hpp"
#include "moesim/version.hpp"

namespace moesim::analysis {
namespace fs = std::filesystem;
using detail::Hdf5Call;
using detail::Hid;

std::size_t column_size(const Column& column) {
  return std::visit([](const auto& v) { return v.size(); }, column.values);
}

namespace {

// gzip level 4: nearly all of level 9's ratio on float columns, at a fraction
// of its time (zlib's own guidance: 1 fastest, 9 best, 6 default).
constexpr unsigned kDeflateLevel = 4;
// Chunks of ~64 Ki elements (512 KiB of doubles): large enough for the
// compressor, small enough for h5py's default 1 MiB chunk cache.
constexpr std::size_t kChunkElements = 65536;

[[noreturn]] void fail(const std::string& what) {
  const std::string reason = detail::error_text();
  throw std::runtime_error(reason.empty() ? what : what + ": " + reason);
}

/// Splits "/a/b/c" into {"a", "b", "c"}; throws on a malformed path.
std::vector<std::string> split_path(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    throw std::invalid_argument("HDF5 path '" + std::string(path) + "' must be absolute (start with '/')");
  }
  std::vector<std::string> parts;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    const std::size_t next = std::min(path.find('/', pos), path.size());
    const std::string_view part = path.substr(pos, next - pos);
    if (part.empty()) {
      if (next == path.size() && parts.empty() && path.size() == 1) break;  // "/" itself
      throw std::invalid_argument("HDF5 path '" + std::string(path) + "' has an empty component");
    }
    if (part == "." || part == "..") {
      throw std::invalid_argument("HDF5 path '" + std::string(path) + "' may not contain '.' or '..'");
    }
    parts.emplace_back(part);
    pos = next + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts, std::size_t count) {
  if (count == 0) return "/";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out;
}

void check_no_nul(const std::string& s, std::string_view where) {
  if (s.find('\0') != std::string::npos) {
    throw std::invalid_argument("string for " + std::string(where) + " contains a NUL byte");
  }
}

}  // namespace

struct Hdf5Writer::Impl {
  AtomicFile file;  // declared first: destroyed after the HDF5 handle is closed
  Hid h5;
  bool committed = false;

  explicit Impl(fs::path target) : file(std::move(target)) {}

  [[nodiscard]] hid_t id() const {
    if (committed || !h5.valid()) throw std::logic_error("Hdf5Writer used after commit()");
    return h5.get();
  }
  [[nodiscard]] std::string where() const { return "'" + file.target().string() + "'"; }

  [[nodiscard]] bool link_exists(const std::string& path) const {
    if (path == "/") return true;
    const htri_t e = H5Lexists(id(), path.c_str(), detail::default_plist());
    if (e < 0) fail("cannot look up '" + path + "' in " + where());
    return e > 0;
  }

  [[nodiscard]] Hid object_creation_plist(hid_t cls) const {
    Hid plist(H5Pcreate(cls), H5Pclose);
    // No access/modification times in object headers: the same content gives
    // the same bytes (DESIGN.md: same inputs and seed, bit-identical results).
    if (!plist.valid() || H5Pset_obj_track_times(plist.get(), 0) < 0) {
      fail("cannot set up creation properties in " + where());
    }
    return plist;
  }

  void ensure_group(std::string_view path) {
    const std::vector<std::string> parts = split_path(path);
    for (std::size_t i = 1; i <= parts.size(); ++i) {
      const std::string prefix = join_path(parts, i);
      if (link_exists(prefix)) {
        // H5Iget_type on an opened object: stable across HDF5 1.8-1.14,
        // unlike H5Oget_info's versioned structs.
        const Hid obj(H5Oopen(id(), prefix.c_str(), detail::default_plist()), H5Oclose);
        if (!obj.valid()) fail("cannot open '" + prefix + "' in " + where());
        if (H5Iget_type(obj.get()) != H5I_GROUP) {
          throw std::invalid_argument("'" + prefix + "' in " + where() + " is a dataset, not a group");
        }
        continue;
      }
      const Hid gcpl = object_creation_plist(detail::property_class_group_create());
      Hid group(H5Gcreate2(id(), prefix.c_str(), detail::default_plist(), gcpl.get(), detail::default_plist()),
                H5Gclose);
      if (!group.valid()) fail("cannot create group '" + prefix + "' in " + where());
    }
  }

  /// Creates the parent groups of `path` and checks nothing exists at `path`.
  void prepare_new_object(std::string_view path) {
    const std::vector<std::string> parts = split_path(path);
    if (parts.empty()) throw std::invalid_argument("cannot write a dataset at '/'");
    ensure_group(join_path(parts, parts.size() - 1));
    if (link_exists(std::string(path))) {
      throw std::invalid_argument("'" + std::string(path) + "' in " + where() + " is already written");
    }
  }

  void write_attribute(hid_t object, const std::string& object_path, std::string_view name,
                       const AttributeValue& value) {
    if (name.empty()) throw std::invalid_argument("attribute name on '" + object_path + "' is empty");
    const std::string aname(name);
    const htri_t exists = H5Aexists(object, aname.c_str());
    if (exists < 0) fail("cannot look up attribute '" + aname + "' on '" + object_path + "' in " + where());
    if (exists > 0 && H5Adelete(object, aname.c_str()) < 0) {
      fail("cannot replace attribute '" + aname + "' on '" + object_path + "' in " + where());
    }
    Hid acpl(H5Pcreate(detail::property_class_attribute_create()), H5Pclose);
    if (!acpl.valid() || H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8) < 0) {
      fail("cannot set up attribute properties in " + where());
    }
    const std::string what = "attribute '" + aname + "' on '" + object_path + "'";

    auto create = [&](hid_t file_type, const Hid& space) {
      Hid attr(H5Acreate2(object, aname.c_str(), file_type, space.get(), acpl.get(), detail::default_plist()),
               H5Aclose);
      if (!attr.valid()) fail("cannot create " + what + " in " + where());
      return attr;
    };
    auto scalar_space = [&] {
      Hid space(H5Screate(H5S_SCALAR), H5Sclose);
      if (!space.valid()) fail("cannot create a dataspace in " + where());
      return space;
    };
    auto vector_space = [&](std::size_t n) {
      const std::array<hsize_t, 1> dims{static_cast<hsize_t>(n)};
      Hid space(H5Screate_simple(1, dims.data(), nullptr), H5Sclose);
      if (!space.valid()) fail("cannot create a dataspace in " + where());
      return space;
    };
    auto write = [&](const Hid& attr, hid_t mem_type, const void* data) {
      if (H5Awrite(attr.get(), mem_type, data) < 0) fail("cannot write " + what + " in " + where());
    };

    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            check_no_nul(v, what);
            const Hid type = detail::make_vlen_string_type();
            if (!type.valid()) fail("cannot create a string type in " + where());
            const Hid attr = create(type.get(), scalar_space());
            const char* ptr = v.c_str();
            write(attr, type.get(), static_cast<const void*>(&ptr));
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            write(create(detail::file_int64(), scalar_space()), detail::native_int64(), &v);
          } else if constexpr (std::is_same_v<T, std::uint64_t>) {
            write(create(detail::file_uint64(), scalar_space()), detail::native_uint64(), &v);
          } else if constexpr (std::is_same_v<T, double>) {
            write(create(detail::file_double(), scalar_space()), detail::native_double(), &v);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            const Hid type = detail::make_vlen_string_type();
            if (!type.valid()) fail("cannot create a string type in " + where());
            std::vector<const char*> ptrs;
            ptrs.reserve(v.size());
            for (const std::string& s : v) {
              check_no_nul(s, what);
              ptrs.push_back(s.c_str());
            }
            const Hid attr = create(type.get(), vector_space(v.size()));
            if (!v.empty()) write(attr, type.get(), ptrs.data());
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            const Hid attr = create(detail::file_double(), vector_space(v.size()));
            if (!v.empty()) write(attr, detail::native_double(), v.data());
          } else {
            static_assert(std::is_same_v<T, std::vector<std::int64_t>>);
            const Hid attr = create(detail::file_int64(), vector_space(v.size()));
            if (!v.empty()) write(attr, detail::native_int64(), v.data());
          }
        },
        value);
  }

  /// Creates and writes a numeric dataset of `dims` (1-D or 2-D).
  void write_numeric(std::string_view path, hid_t file_type, hid_t mem_type, const void* data,
                     const std::vector<hsize_t>& dims, const DatasetOptions& options) {
    prepare_new_object(path);
    std::size_t total = 1;
    for (const hsize_t d : dims) total *= static_cast<std::size_t>(d);

    const Hid dcpl = object_creation_plist(detail::property_class_dataset_create());
    bool compress = false;
    if (options.compression == Compression::kGzip) compress = true;
    if (options.compression == Compression::kAuto) compress = total >= kAutoCompressElements;
    if (compress && total > 0) {
      if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) {
        if (options.compression == Compression::kGzip) {
          throw std::runtime_error("this HDF5 library has no gzip (deflate) filter; write '" + std::string(path) +
                                   "' uncompressed");
        }
      } else {
        // Chunks span whole rows (2-D) so a row reads from one chunk.
        std::vector<hsize_t> chunk = dims;
        if (dims.size() == 1) {
          chunk[0] = std::min<hsize_t>(dims[0], kChunkElements);
        } else {
          chunk[1] = std::min<hsize_t>(dims[1], kChunkElements);
          chunk[0] = std::clamp<hsize_t>(kChunkElements / chunk[1], 1, dims[0]);
        }
        if (H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
            H5Pset_shuffle(dcpl.get()) < 0 || H5Pset_deflate(dcpl.get(), kDeflateLevel) < 0) {
          fail("cannot set up compression for '" + std::string(path) + "' in " + where());
        }
      }
    }
    Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    if (!space.valid()) fail("cannot create a dataspace for '" + std::string(path) + "' in " + where());
    const std::string p(path);
    Hid ds(H5Dcreate2(id(), p.c_str(), file_type, space.get(), detail::default_plist(), dcpl.get(),
                      detail::default_plist()),
           H5Dclose);
    if (!ds.valid()) fail("cannot create dataset '" + p + "' in " + where());
    if (total > 0 && H5Dwrite(ds.get(), mem_type, detail::all_space(), detail::all_space(),
                              detail::default_plist(), data) < 0) {
      fail("cannot write dataset '" + p + "' in " + where());
    }
    if (!options.unit.empty()) write_attribute(ds.get(), p, "units", AttributeValue(options.unit));
  }

  void write_strings(std::string_view path, std::span<const std::string> values, const DatasetOptions& options) {
    prepare_new_object(path);
    const std::string p(path);
    std::vector<const char*> ptrs;
    ptrs.reserve(values.size());
    for (const std::string& s : values) {
      check_no_nul(s, "dataset '" + p + "'");
      ptrs.push_back(s.c_str());
    }
    const Hid type = detail::make_vlen_string_type();
    if (!type.valid()) fail("cannot create a string type in " + where());
    // Variable-length strings live in the global heap; a filter would only
    // compress the heap references, so string datasets stay contiguous.
    const Hid dcpl = object_creation_plist(detail::property_class_dataset_create());
    const std::array<hsize_t, 1> dims{static_cast<hsize_t>(values.size())};
    Hid space(H5Screate_simple(1, dims.data(), nullptr), H5Sclose);
    if (!space.valid()) fail("cannot create a dataspace for '" + p + "' in " + where());
    Hid ds(H5Dcreate2(id(), p.c_str(), type.get(), space.get(), detail::default_plist(), dcpl.get(),
                      detail::default_plist()),
           H5Dclose);
    if (!ds.valid()) fail("cannot create dataset '" + p + "' in " + where());
    if (!values.empty() && H5Dwrite(ds.get(), type.get(), detail::all_space(), detail::all_space(),
                                    detail::default_plist(), ptrs.data()) < 0) {
      fail("cannot write dataset '" + p + "' in " + where());
    }
    if (!options.unit.empty()) write_attribute(ds.get(), p, "units", AttributeValue(options.unit));
  }
};

Hdf5Writer::Hdf5Writer(fs::path target) {
  const Hdf5Call call;
  auto fresh = std::make_unique<Impl>(std::move(target));  // reserves the temporary (InputError if it cannot)
  const std::string tmp = fresh->file.temp_path().string();

  Hid fcpl(H5Pcreate(detail::property_class_file_create()), H5Pclose);
  Hid fapl(H5Pcreate(detail::property_class_file_access()), H5Pclose);
  if (!fcpl.valid() || !fapl.valid() || H5Pset_obj_track_times(fcpl.get(), 0) < 0 ||
      // The 1.8 file format: readable by every HDF5 since 2008 and by h5py,
      // and it allows dense attribute storage (no 64 KiB header limit).
      H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
      H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) {
    fail("cannot set up HDF5 file properties for " + fresh->where());
  }
#if MOESIM_HDF5_HAS_FILE_LOCKING
  // The temporary is private to this writer; HDF5's flock() would only fail
  // on file systems without locks (some NFS mounts).
  if (H5Pset_file_locking(fapl.get(), 0, 1) < 0) fail("cannot set up HDF5 file locking");
#endif
  fresh->h5 = Hid(H5Fcreate(tmp.c_str(), detail::file_acc_trunc(), fcpl.get(), fapl.get()), H5Fclose);
  if (!fresh->h5.valid()) fail("cannot create HDF5 file '" + tmp + "' for " + fresh->where());
  impl_ = std::move(fresh);
}

Hdf5Writer::~Hdf5Writer() {
  if (!impl_) return;
  const Hdf5Call call;
  impl_->h5.reset();
  impl_.reset();  // AtomicFile removes the temporary unless committed
}

Hdf5Writer::Hdf5Writer(Hdf5Writer&&) noexcept = default;

Hdf5Writer& Hdf5Writer::operator=(Hdf5Writer&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      const Hdf5Call call;
      impl_->h5.reset();
      impl_.reset();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Hdf5Writer::Impl& Hdf5Writer::impl() const {
  if (!impl_) throw std::logic_error("Hdf5Writer used after being moved from");
  return *impl_;
}

const fs::path& Hdf5Writer::target() const { return impl().file.target(); }
const fs::path& Hdf5Writer::temp_path() const { return impl().file.temp_path(); }

void Hdf5Writer::create_group(std::string_view path) {
  const Hdf5Call call;
  impl().ensure_group(path);
}

void Hdf5Writer::set_attribute(std::string_view object, std::string_view name, const AttributeValue& value) {
  const Hdf5Call call;
  Impl& w = impl();
  const std::string path(object);
  if (!w.link_exists(path)) w.ensure_group(path);
  Hid obj(H5Oopen(w.id(), path.c_str(), detail::default_plist()), H5Oclose);
  if (!obj.valid()) fail("cannot open '" + path + "' in " + w.where());
  w.write_attribute(obj.get(), path, name, value);
}

void Hdf5Writer::write_dataset(std::string_view path, std::span<const double> values,
                               const DatasetOptions& options) {
  const Hdf5Call call;
  impl().write_numeric(path, detail::file_double(), detail::native_double(), values.data(),
                               {static_cast<hsize_t>(values.size())}, options);
}

void Hdf5Writer::write_dataset(std::string_view path, std::span<const std::int64_t> values,
                               const DatasetOptions& options) {
  const Hdf5Call call;
  impl().write_numeric(path, detail::file_int64(), detail::native_int64(), values.data(),
                               {static_cast<hsize_t>(values.size())}, options);
}

void Hdf5Writer::write_dataset(std::string_view path, std::span<const std::string> values,
                               const DatasetOptions& options) {
  const Hdf5Call call;
  impl().write_strings(path, values, options);
}

void Hdf5Writer::write_values(std::string_view path, const ColumnData& values, const DatasetOptions& options) {
  std::visit([&](const auto& v) { write_dataset(path, std::span(v), options); }, values);
}

namespace {
void check_shape(std::string_view path, std::size_t size, std::size_t rows, std::size_t cols) {
  if (cols != 0 && rows > std::numeric_limits<std::size_t>::max() / cols) {
    throw std::invalid_argument("matrix '" + std::string(path) + "' shape overflows");
  }
  if (size != rows * cols) {
    throw std::invalid_argument("matrix '" + std::string(path) + "' has " + std::to_string(size) +
                                " values for " + std::to_string(rows) + " x " + std::to_string(cols));
  }
}
}  // namespace

void Hdf5Writer::write_matrix(std::string_view path, std::span<const double> row_major, std::size_t rows,
                              std::size_t cols, const DatasetOptions& options) {
  check_shape(path, row_major.size(), rows, cols);
  const Hdf5Call call;
  impl().write_numeric(path, detail::file_double(), detail::native_double(), row_major.data(),
                               {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)}, options);
}

void Hdf5Writer::write_matrix(std::string_view path, std::span<const std::int64_t> row_major, std::size_t rows,
                              std::size_t cols, const DatasetOptions& options) {
  check_shape(path, row_major.size(), rows, cols);
  const Hdf5Call call;
  impl().write_numeric(path, detail::file_int64(), detail::native_int64(), row_major.data(),
                               {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)}, options);
}

void Hdf5Writer::write_table(std::string_view path, std::span<const Column> columns, Compression compression) {
  const std::string p(path);
  std::set<std::string_view> seen;
  std::vector<std::string> names;
  for (const Column& c : columns) {
    if (c.name.empty()) throw std::invalid_argument("table '" + p + "' has a column without a name");
    if (c.name.find('/') != std::string::npos || c.name == "." || c.name == "..") {
      throw std::invalid_argument("table '" + p + "': column name '" + c.name + "' may not contain '/'");
    }
    if (!seen.insert(c.name).second) {
      throw std::invalid_argument("table '" + p + "' has two columns named '" + c.name + "'");
    }
    if (column_size(c) != column_size(columns.front())) {
      throw std::invalid_argument("table '" + p + "': column '" + c.name + "' has " +
                                  std::to_string(column_size(c)) + " rows, column '" + columns.front().name +
                                  "' has " + std::to_string(column_size(columns.front())));
    }
    names.push_back(c.name);
  }
  const Hdf5Call call;
  Impl& w = impl();
  if (p != "/" && w.link_exists(p)) {
    throw std::invalid_argument("table '" + p + "' in " + w.where() + " is already written");
  }
  w.ensure_group(p);
  const std::string prefix = p == "/" ? "/" : p + "/";
  for (const Column& c : columns) {
    write_values(prefix + c.name, c.values, DatasetOptions{c.unit, compression});
  }
  set_attribute(p, "columns", AttributeValue(std::move(names)));
  set_attribute(p, "rows", AttributeValue(static_cast<std::int64_t>(columns.empty() ? 0 : column_size(columns[0]))));
}

void Hdf5Writer::commit() {
  const Hdf5Call call;
  Impl& w = impl();
  if (w.committed) throw std::logic_error("Hdf5Writer::commit called twice");
  if (w.h5.close() < 0) fail("cannot finish HDF5 file '" + w.file.temp_path().string() + "'");
  w.file.commit();
  w.committed = true;
}

// ---------------------------------------------------------------------------
// Schema

namespace schema {
namespace {
using enum ColumnType;
constexpr std::array kRequestColumns{
    ColumnSpec{"id", kInt64, ""},
    ColumnSpec{"arrival_s", kDouble, "s"},
    ColumnSpec{"prompt_tokens", kInt64, "tokens"},
    ColumnSpec{"output_tokens", kInt64, "tokens"},
    ColumnSpec{"first_token_s", kDouble, "s"},
    ColumnSpec{"end_s", kDouble, "s"},
    ColumnSpec{"ttft_s", kDouble, "s"},
    ColumnSpec{"tpot_s", kDouble, "s"},
    ColumnSpec{"queue_s", kDouble, "s"},
};
constexpr std::array kBreakdownColumns{
    ColumnSpec{"gpu", kInt64, ""},
    ColumnSpec{"compute_s", kDouble, "s"},
    ColumnSpec{"communication_exposed_s", kDouble, "s"},
    ColumnSpec{"all_to_all_s", kDouble, "s"},
    ColumnSpec{"bubble_s", kDouble, "s"},
    ColumnSpec{"idle_s", kDouble, "s"},
};
constexpr std::array kLinkColumns{
    ColumnSpec{"link", kInt64, ""},
    ColumnSpec{"name", kString, ""},
    ColumnSpec{"class", kString, ""},
    ColumnSpec{"src", kString, ""},
    ColumnSpec{"dst", kString, ""},
    ColumnSpec{"bytes", kDouble, "B"},
    ColumnSpec{"busy_s", kDouble, "s"},
    ColumnSpec{"utilisation", kDouble, "1"},
};
constexpr std::array kTimelineColumns{
    ColumnSpec{"gpu", kInt64, ""},
    ColumnSpec{"stream", kString, ""},
    ColumnSpec{"op", kString, ""},
    ColumnSpec{"category", kString, ""},
    ColumnSpec{"start_s", kDouble, "s"},
    ColumnSpec{"end_s", kDouble, "s"},
};
}  // namespace

const TableSpec kRequests{"/requests", kRequestColumns};
const TableSpec kBreakdown{"/breakdown", kBreakdownColumns};
const TableSpec kLinks{"/links", kLinkColumns};
const TableSpec kTimeline{"/timeline", kTimelineColumns};

std::span<const TableSpec* const> tables() {
  static const std::array<const TableSpec*, 4> all{&kRequests, &kBreakdown, &kLinks, &kTimeline};
  return all;
}
}  // namespace schema

namespace {
ColumnType type_of(const ColumnData& data) {
  switch (data.index()) {
    case 0: return ColumnType::kDouble;
    case 1: return ColumnType::kInt64;
    default: return ColumnType::kString;
  }
}
std::string_view type_name(ColumnType t) {
  switch (t) {
    case ColumnType::kDouble: return "double";
    case ColumnType::kInt64: return "int64";
    case ColumnType::kString: return "string";
  }
  return "?";
}
}  // namespace

void write_provenance(Hdf5Writer& writer, const Provenance& p) {
  writer.set_attribute("/", "format", std::string(schema::kFormatName));
  writer.set_attribute("/", "format_version", AttributeValue(std::int64_t{schema::kFormatVersion}));
  writer.set_attribute("/", "kind", p.kind);
  writer.set_attribute("/", "moesim_version", p.moesim_version.empty() ? std::string(kVersion) : p.moesim_version);
  writer.set_attribute("/", "git_commit", p.git_commit.empty() ? std::string(kGitCommit) : p.git_commit);
  writer.set_attribute("/", "seed", AttributeValue(p.seed));
  writer.set_attribute("/", "scenario", p.scenario_ini);
  writer.set_attribute("/", "command", p.command);
}

void write_table(Hdf5Writer& writer, const TableSpec& spec, std::vector<Column> columns, Compression compression) {
  for (const ColumnSpec& required : spec.columns) {
    auto it = std::find_if(columns.begin(), columns.end(), [&](const Column& c) { return c.name == required.name; });
    if (it == columns.end()) {
      throw std::invalid_argument("table '" + std::string(spec.path) + "' lacks its required column '" +
                                  std::string(required.name) + "' (docs/results-format.md)");
    }
    if (type_of(it->values) != required.type) {
      throw std::invalid_argument("table '" + std::string(spec.path) + "': column '" + it->name + "' must be " +
                                  std::string(type_name(required.type)) + ", not " +
                                  std::string(type_name(type_of(it->values))));
    }
    if (it->unit.empty()) it->unit = std::string(required.unit);
  }
  writer.write_table(spec.path, columns, compression);
}

namespace {
void flatten_into(const nlohmann::json& value, const std::string& prefix,
                  std::vector<std::pair<std::string, nlohmann::json>>& out) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      flatten_into(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
  } else {
    out.emplace_back(prefix, value);
  }
}
}  // namespace

std::vector<std::pair<std::string, nlohmann::json>> flatten_json(const nlohmann::json& value) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  flatten_into(value, "", out);
  return out;
}

namespace {
constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

bool fits_int64(const nlohmann::json& v) {
  if (v.is_boolean()) return true;
  // is_number_integer() is also true for unsigned values: test those first.
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() <= kInt64Max;
  return v.is_number_integer();
}
std::int64_t as_int64(const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  return v.get<std::int64_t>();
}
std::string json_text(const nlohmann::json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

void write_json_attributes(Hdf5Writer& writer, std::string_view group, const nlohmann::json& object) {
  writer.create_group(group);
  for (const auto& [key, v] : flatten_json(object)) {
    if (key.empty() || v.is_null()) continue;
    if (v.is_string()) {
      writer.set_attribute(group, key, v.get<std::string>());
    } else if (fits_int64(v)) {
      writer.set_attribute(group, key, AttributeValue(as_int64(v)));
    } else if (v.is_number_unsigned()) {
      writer.set_attribute(group, key, AttributeValue(v.get<std::uint64_t>()));
    } else if (v.is_number_float()) {
      writer.set_attribute(group, key, AttributeValue(v.get<double>()));
    } else if (v.is_array()) {
      const bool all_int = std::all_of(v.begin(), v.end(), [](const auto& e) { return fits_int64(e); });
      const bool all_num = std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number(); });
      const bool all_str = std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); });
      if (!v.empty() && all_int) {
        std::vector<std::int64_t> xs;
        for (const auto& e : v) xs.push_back(as_int64(e));
        writer.set_attribute(group, key, AttributeValue(std::move(xs)));
      } else if (!v.empty() && all_num) {
        std::vector<double> xs;
        for (const auto& e : v) xs.push_back(e.get<double>());
        writer.set_attribute(group, key, AttributeValue(std::move(xs)));
      } else if (!v.empty() && all_str) {
        std::vector<std::string> xs;
        for (const auto& e : v) xs.push_back(e.get<std::string>());
        writer.set_attribute(group, key, AttributeValue(std::move(xs)));
      } else {
        writer.set_attribute(group, key, json_text(v));
      }
    }
  }
}

std::vector<Column> columns_from_json_rows(std::span<const nlohmann::json> rows) {
  std::vector<std::vector<std::pair<std::string, nlohmann::json>>> flat;
  flat.reserve(rows.size());
  std::vector<std::string> keys;
  std::set<std::string> known;
  for (const nlohmann::json& row : rows) {
    flat.push_back(flatten_json(row));
    for (const auto& [k, v] : flat.back()) {
      if (!k.empty() && known.insert(k).second) keys.push_back(k);
    }
  }
  std::vector<Column> columns;
  columns.reserve(keys.size());
  for (const std::string& key : keys) {
    // Gather this key's value in every row (null where absent).
    std::vector<const nlohmann::json*> values(rows.size(), nullptr);
    for (std::size_t r = 0; r < flat.size(); ++r) {
      for (const auto& [k, v] : flat[r]) {
        if (k == key && !v.is_null()) values[r] = &v;
      }
    }
    bool any_missing = false, all_int = true, all_num = true, all_str = true;
    for (const nlohmann::json* v : values) {
      if (v == nullptr) {
        any_missing = true;
        continue;
      }
      all_int = all_int && fits_int64(*v);
      all_num = all_num && (v->is_number() || v->is_boolean());
      all_str = all_str && v->is_string();
    }
    Column col{key, std::vector<double>{}, ""};
    if (all_num && all_int && !any_missing) {
      std::vector<std::int64_t> xs;
      for (const nlohmann::json* v : values) xs.push_back(as_int64(*v));
      col.values = std::move(xs);
    } else if (all_num) {
      std::vector<double> xs;
      for (const nlohmann::json* v : values) {
        xs.push_back(v == nullptr ? std::numeric_limits<double>::quiet_NaN()
                                  : (v->is_boolean() ? (v->get<bool>() ? 1.0 : 0.0) : v->get<double>()));
      }
      col.values = std::move(xs);
    } else {
      std::vector<std::string> xs;
      for (const nlohmann::json* v : values) {
        xs.push_back(v == nullptr ? std::string() : (all_str ? v->get<std::string>() : json_text(*v)));
      }
      col.values = std::move(xs);
    }
    columns.push_back(std::move(col));
  }
  return columns;
}

void write_json_table(Hdf5Writer& writer, std::string_view path, std::span<const nlohmann::json> rows,
                      std::span<const std::string> leading, Compression compression) {
  std::vector<Column> all = columns_from_json_rows(rows);
  std::vector<Column> ordered;
  ordered.reserve(all.size());
  for (const std::string& key : leading) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Column& c) { return c.name == key; });
    if (it == all.end()) {
      throw std::invalid_argument("table '" + std::string(path) + "': no row has the key '" + key + "'");
    }
    ordered.push_back(std::move(*it));
    all.erase(it);
  }
  for (Column& c : all) ordered.push_back(std::move(c));
  writer.write_table(path, ordered, compression);
  writer.set_attribute(path, "varied", AttributeValue(std::vector<std::string>(leading.begin(), leading.end())));
}

}  // namespace moesim::analysis
