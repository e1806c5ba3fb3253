#include "analysis/hdf5_reader.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include "analysis/hdf5_detail.hpp"
#include "sim/options.hpp"

namespace moesim::analysis {
namespace fs = std::filesystem;
using detail::Hdf5Call;
using detail::Hid;

namespace {

/// An opened dataset or attribute: its type and shape.
struct Opened {
  Hid object;
  Hid type;
  Hid space;
  H5T_class_t cls = H5T_NO_CLASS;
  H5S_class_t space_class = H5S_NO_CLASS;
  std::vector<hsize_t> dims;
  std::size_t total = 0;
};

bool valid_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path == "/") return true;
  if (path.back() == '/') return false;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    const std::size_t next = std::min(path.find('/', pos), path.size());
    const std::string_view part = path.substr(pos, next - pos);
    if (part.empty() || part == "." || part == "..") return false;
    pos = next + 1;
  }
  return true;
}

herr_t collect_attribute_name(hid_t /*location*/, const char* name, const H5A_info_t* /*info*/, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

struct Hdf5Reader::Impl {
  fs::path path;
  Hid h5;

  [[nodiscard]] std::string where() const { return "'" + path.string() + "'"; }

  [[noreturn]] void fail(const std::string& what) const {
    const std::string reason = detail::error_text();
    throw InputError(what + " in " + where() + (reason.empty() ? "" : ": " + reason));
  }

  [[nodiscard]] bool exists(std::string_view p) const {
    if (!valid_path(p)) return false;
    if (p == "/") return true;
    // H5Lexists fails (rather than answering false) when a parent is missing,
    // so each prefix is checked in turn.
    std::size_t pos = 1;
    while (true) {
      const std::size_t next = p.find('/', pos);
      const std::string prefix(p.substr(0, next));
      const htri_t e = H5Lexists(h5.get(), prefix.c_str(), detail::default_plist());
      (void)detail::error_text();  // clear
      if (e <= 0) return false;
      if (next == std::string_view::npos) return true;
      pos = next + 1;
    }
  }

  [[nodiscard]] H5I_type_t kind(std::string_view p) const {
    if (!exists(p)) return H5I_BADID;
    const std::string s(p);
    const Hid obj(H5Oopen(h5.get(), s.c_str(), detail::default_plist()), H5Oclose);
    if (!obj.valid()) {
      (void)detail::error_text();
      return H5I_BADID;
    }
    return H5Iget_type(obj.get());
  }

  [[nodiscard]] Hid open_object(std::string_view p) const {
    if (!exists(p)) throw InputError("no object '" + std::string(p) + "' in " + where());
    const std::string s(p);
    Hid obj(H5Oopen(h5.get(), s.c_str(), detail::default_plist()), H5Oclose);
    if (!obj.valid()) fail("cannot open '" + s + "'");
    return obj;
  }

  void describe(Opened& o, const std::string& what) const {
    if (!o.type.valid() || !o.space.valid()) fail("cannot inspect " + what);
    o.cls = H5Tget_class(o.type.get());
    o.space_class = H5Sget_simple_extent_type(o.space.get());
    const int rank = H5Sget_simple_extent_ndims(o.space.get());
    if (rank < 0) fail("cannot read the shape of " + what);
    o.dims.assign(static_cast<std::size_t>(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(o.space.get(), o.dims.data(), nullptr) < 0) {
      fail("cannot read the shape of " + what);
    }
    const hssize_t n = H5Sget_simple_extent_npoints(o.space.get());
    if (n < 0) fail("cannot read the size of " + what);
    o.total = o.space_class == H5S_NULL ? 0 : static_cast<std::size_t>(n);
  }

  [[nodiscard]] Opened open_dataset(std::string_view p) const {
    if (kind(p) != H5I_DATASET) throw InputError("no dataset '" + std::string(p) + "' in " + where());
    const std::string s(p);
    Opened o;
    o.object = Hid(H5Dopen2(h5.get(), s.c_str(), detail::default_plist()), H5Dclose);
    if (!o.object.valid()) fail("cannot open dataset '" + s + "'");
    o.type = Hid(H5Dget_type(o.object.get()), H5Tclose);
    o.space = Hid(H5Dget_space(o.object.get()), H5Sclose);
    describe(o, "dataset '" + s + "'");
    return o;
  }

  [[nodiscard]] Opened open_attribute(std::string_view object, std::string_view name) const {
    const Hid obj = open_object(object);
    const std::string aname(name);
    const htri_t e = H5Aexists(obj.get(), aname.c_str());
    if (e < 0) fail("cannot look up attribute '" + aname + "' of '" + std::string(object) + "'");
    if (e == 0) {
      throw InputError("no attribute '" + aname + "' on '" + std::string(object) + "' in " + where());
    }
    Opened o;
    o.object = Hid(H5Aopen(obj.get(), aname.c_str(), detail::default_plist()), H5Aclose);
    if (!o.object.valid()) fail("cannot open attribute '" + aname + "' of '" + std::string(object) + "'");
    o.type = Hid(H5Aget_type(o.object.get()), H5Tclose);
    o.space = Hid(H5Aget_space(o.object.get()), H5Sclose);
    describe(o, "attribute '" + aname + "' of '" + std::string(object) + "'");
    return o;
  }

  // Reads all elements of `o` (a dataset when is_dataset, else an attribute).
  template <class T>
  std::vector<T> read_numeric(const Opened& o, hid_t mem_type, bool is_dataset, const std::string& what) const {
    std::vector<T> out(o.total);
    if (o.total == 0) return out;
    const herr_t status = is_dataset ? H5Dread(o.object.get(), mem_type, detail::all_space(), detail::all_space(),
                                               detail::default_plist(), out.data())
                                     : H5Aread(o.object.get(), mem_type, out.data());
    if (status < 0) fail("cannot read " + what);
    return out;
  }

  std::vector<std::string> read_string_values(const Opened& o, bool is_dataset, const std::string& what) const {
    std::vector<std::string> out;
    if (o.total == 0) return out;
    out.reserve(o.total);
    // Reading with a copy of the stored type keeps its character set and
    // padding, so no conversion is asked of the library.
    const Hid mem(H5Tcopy(o.type.get()), H5Tclose);
    if (!mem.valid()) fail("cannot read " + what);
    const htri_t variable = H5Tis_variable_str(o.type.get());
    if (variable < 0) fail("cannot read " + what);
    if (variable > 0) {
      std::vector<char*> ptrs(o.total, nullptr);
      const herr_t status = is_dataset ? H5Dread(o.object.get(), mem.get(), detail::all_space(),
                                                 detail::all_space(), detail::default_plist(), ptrs.data())
                                       : H5Aread(o.object.get(), mem.get(), ptrs.data());
      if (status < 0) fail("cannot read " + what);
      for (const char* p : ptrs) out.emplace_back(p == nullptr ? "" : p);
#if H5_VERSION_GE(1, 12, 0)
      (void)H5Treclaim(mem.get(), o.space.get(), detail::default_plist(), ptrs.data());
#else
      (void)H5Dvlen_reclaim(mem.get(), o.space.get(), detail::default_plist(), ptrs.data());
#endif
    } else {
      const std::size_t size = H5Tget_size(o.type.get());
      if (size == 0) fail("cannot read " + what);
      std::vector<char> buf(size * o.total, '\0');
      const herr_t status = is_dataset ? H5Dread(o.object.get(), mem.get(), detail::all_space(),
                                                 detail::all_space(), detail::default_plist(), buf.data())
                                       : H5Aread(o.object.get(), mem.get(), buf.data());
      if (status < 0) fail("cannot read " + what);
      for (std::size_t i = 0; i < o.total; ++i) {
        const char* p = buf.data() + i * size;
        std::size_t len = 0;
        while (len < size && p[len] != '\0') ++len;
        // Space-padded fixed strings (Fortran style) lose their padding.
        if (H5Tget_strpad(o.type.get()) == H5T_STR_SPACEPAD) {
          while (len > 0 && p[len - 1] == ' ') --len;
        }
        out.emplace_back(p, len);
      }
    }
    return out;
  }

  ColumnData read_dataset(std::string_view p) const {
    const Opened o = open_dataset(p);
    const std::string what = "dataset '" + std::string(p) + "'";
    switch (o.cls) {
      case H5T_FLOAT: return read_numeric<double>(o, detail::native_double(), true, what);
      case H5T_INTEGER: return read_numeric<std::int64_t>(o, detail::native_int64(), true, what);
      case H5T_STRING: return read_string_values(o, true, what);
      default: throw InputError(what + " in " + where() + " is not numbers or strings");
    }
  }
};

Hdf5Reader::Hdf5Reader(const fs::path& file) {
  const Hdf5Call call;
  std::error_code ec;
  if (!fs::exists(file, ec)) throw InputError("results file '" + file.string() + "' does not exist");
  if (fs::is_directory(file, ec)) throw InputError("'" + file.string() + "' is a directory, not a results file");
  auto fresh = std::make_unique<Impl>();
  fresh->path = file;
  Hid fapl(H5Pcreate(detail::property_class_file_access()), H5Pclose);
  if (!fapl.valid()) fresh->fail("cannot set up HDF5 file access");
#if MOESIM_HDF5_HAS_FILE_LOCKING
  (void)H5Pset_file_locking(fapl.get(), 0, 1);
#endif
  fresh->h5 = Hid(H5Fopen(file.c_str(), detail::file_acc_rdonly(), fapl.get()), H5Fclose);
  if (!fresh->h5.valid()) {
    (void)detail::error_text();
    throw InputError("'" + file.string() + "' is not an HDF5 file (or it is damaged)");
  }
  impl_ = std::move(fresh);
}

Hdf5Reader::~Hdf5Reader() {
  if (!impl_) return;
  const Hdf5Call call;
  impl_.reset();
}

Hdf5Reader::Hdf5Reader(Hdf5Reader&&) noexcept = default;
Hdf5Reader& Hdf5Reader::operator=(Hdf5Reader&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      const Hdf5Call call;
      impl_.reset();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

const Hdf5Reader::Impl& Hdf5Reader::impl() const {
  if (!impl_) throw std::logic_error("Hdf5Reader used after being moved from");
  return *impl_;
}

const fs::path& Hdf5Reader::path() const { return impl().path; }

bool Hdf5Reader::exists(std::string_view p) const {
  const Hdf5Call call;
  return impl().exists(p);
}

bool Hdf5Reader::is_group(std::string_view p) const {
  const Hdf5Call call;
  return impl().kind(p) == H5I_GROUP;
}

bool Hdf5Reader::is_dataset(std::string_view p) const {
  const Hdf5Call call;
  return impl().kind(p) == H5I_DATASET;
}

std::vector<std::string> Hdf5Reader::children(std::string_view group) const {
  const Hdf5Call call;
  const Impl& r = impl();
  if (r.kind(group) != H5I_GROUP) throw InputError("no group '" + std::string(group) + "' in " + r.where());
  const Hid g = r.open_object(group);
  H5G_info_t info{};
  if (H5Gget_info(g.get(), &info) < 0) r.fail("cannot list group '" + std::string(group) + "'");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                           detail::default_plist());
    if (len < 0) r.fail("cannot list group '" + std::string(group) + "'");
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    if (H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                           detail::default_plist()) < 0) {
      r.fail("cannot list group '" + std::string(group) + "'");
    }
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> Hdf5Reader::attribute_names(std::string_view object) const {
  const Hdf5Call call;
  const Impl& r = impl();
  const Hid obj = r.open_object(object);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Aiterate2(obj.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attribute_name, &names) < 0) {
    r.fail("cannot list the attributes of '" + std::string(object) + "'");
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool Hdf5Reader::has_attribute(std::string_view object, std::string_view name) const {
  const Hdf5Call call;
  const Impl& r = impl();
  if (!r.exists(object)) return false;
  const Hid obj = r.open_object(object);
  const std::string aname(name);
  const htri_t e = H5Aexists(obj.get(), aname.c_str());
  (void)detail::error_text();
  return e > 0;
}

namespace {
/// The single value of a scalar attribute.
template <class T>
T only(const std::vector<T>& values, const std::string& what) {
  if (values.size() != 1) throw InputError(what + " is not a single value");
  return values[0];
}
}  // namespace

AttributeValue Hdf5Reader::attribute(std::string_view object, std::string_view name) const {
  const Hdf5Call call;
  const Impl& r = impl();
  const Opened o = r.open_attribute(object, name);
  const std::string what = "attribute '" + std::string(name) + "' of '" + std::string(object) + "'";
  const bool scalar = o.space_class == H5S_SCALAR;
  switch (o.cls) {
    case H5T_STRING: {
      std::vector<std::string> v = r.read_string_values(o, false, what);
      if (scalar) return v.empty() ? std::string() : std::move(v.front());
      return v;
    }
    case H5T_INTEGER: {
      if (scalar && H5Tget_sign(o.type.get()) == H5T_SGN_NONE && H5Tget_size(o.type.get()) == 8) {
        return only(r.read_numeric<std::uint64_t>(o, detail::native_uint64(), false, what), what);
      }
      std::vector<std::int64_t> v = r.read_numeric<std::int64_t>(o, detail::native_int64(), false, what);
      if (scalar) return only(v, what);
      return v;
    }
    case H5T_FLOAT: {
      std::vector<double> v = r.read_numeric<double>(o, detail::native_double(), false, what);
      if (scalar) return only(v, what);
      return v;
    }
    default: throw InputError(what + " in " + r.where() + " is not a number or a string");
  }
}

std::string Hdf5Reader::string_attribute(std::string_view object, std::string_view name) const {
  const AttributeValue v = attribute(object, name);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  throw InputError("attribute '" + std::string(name) + "' of '" + std::string(object) + "' in " +
                   impl().where() + " is not a string");
}

std::int64_t Hdf5Reader::int_attribute(std::string_view object, std::string_view name) const {
  const AttributeValue v = attribute(object, name);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* u = std::get_if<std::uint64_t>(&v)) {
    if (*u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return static_cast<std::int64_t>(*u);
    }
  }
  throw InputError("attribute '" + std::string(name) + "' of '" + std::string(object) + "' in " +
                   impl().where() + " is not an int64 integer");
}

double Hdf5Reader::double_attribute(std::string_view object, std::string_view name) const {
  const AttributeValue v = attribute(object, name);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&v)) return static_cast<double>(*u);
  throw InputError("attribute '" + std::string(name) + "' of '" + std::string(object) + "' in " +
                   impl().where() + " is not a number");
}

std::vector<std::size_t> Hdf5Reader::shape(std::string_view dataset) const {
  const Hdf5Call call;
  const Opened o = impl().open_dataset(dataset);
  std::vector<std::size_t> dims;
  for (const hsize_t d : o.dims) dims.push_back(static_cast<std::size_t>(d));
  return dims;
}

ColumnData Hdf5Reader::read(std::string_view dataset) const {
  const Hdf5Call call;
  return impl().read_dataset(dataset);
}

std::vector<double> Hdf5Reader::read_doubles(std::string_view dataset) const {
  const Hdf5Call call;
  const Impl& r = impl();
  const Opened o = r.open_dataset(dataset);
  const std::string what = "dataset '" + std::string(dataset) + "'";
  if (o.cls != H5T_FLOAT && o.cls != H5T_INTEGER) throw InputError(what + " in " + r.where() + " is not numeric");
  return r.read_numeric<double>(o, detail::native_double(), true, what);
}

std::vector<std::int64_t> Hdf5Reader::read_int64s(std::string_view dataset) const {
  const Hdf5Call call;
  const Impl& r = impl();
  const Opened o = r.open_dataset(dataset);
  const std::string what = "dataset '" + std::string(dataset) + "'";
  if (o.cls != H5T_INTEGER) throw InputError(what + " in " + r.where() + " is not integers");
  return r.read_numeric<std::int64_t>(o, detail::native_int64(), true, what);
}

std::vector<std::string> Hdf5Reader::read_strings(std::string_view dataset) const {
  const Hdf5Call call;
  const Impl& r = impl();
  const Opened o = r.open_dataset(dataset);
  const std::string what = "dataset '" + std::string(dataset) + "'";
  if (o.cls != H5T_STRING) throw InputError(what + " in " + r.where() + " is not strings");
  return r.read_string_values(o, true, what);
}

namespace {
template <class T>
Matrix<T> to_matrix(const Hdf5Reader& reader, std::string_view dataset, std::vector<T> data) {
  const std::vector<std::size_t> dims = reader.shape(dataset);
  if (dims.size() != 2) {
    throw InputError("dataset '" + std::string(dataset) + "' in '" + reader.path().string() + "' has rank " +
                     std::to_string(dims.size()) + ", not 2");
  }
  return Matrix<T>{dims[0], dims[1], std::move(data)};
}
}  // namespace

Matrix<double> Hdf5Reader::read_matrix_doubles(std::string_view dataset) const {
  return to_matrix(*this, dataset, read_doubles(dataset));
}

Matrix<std::int64_t> Hdf5Reader::read_matrix_int64s(std::string_view dataset) const {
  return to_matrix(*this, dataset, read_int64s(dataset));
}

std::vector<Column> Hdf5Reader::read_table(std::string_view group) const {
  const Hdf5Call call;
  const Impl& r = impl();
  if (!is_group(group) || !has_attribute(group, "columns")) {
    throw InputError("no table '" + std::string(group) + "' in " + r.where());
  }
  const AttributeValue names_value = attribute(group, "columns");
  std::vector<std::string> names;
  if (const auto* list = std::get_if<std::vector<std::string>>(&names_value)) {
    names = *list;
  } else if (const auto* one = std::get_if<std::string>(&names_value)) {
    names.push_back(*one);
  } else {
    throw InputError("table '" + std::string(group) + "' in " + r.where() + ": 'columns' is not a list of names");
  }
  const std::string prefix = group == "/" ? "/" : std::string(group) + "/";
  std::vector<Column> columns;
  for (const std::string& name : names) {
    const std::string p = prefix + name;
    if (!is_dataset(p)) {
      throw InputError("table '" + std::string(group) + "' in " + r.where() + " lists column '" + name +
                       "' but has no such dataset");
    }
    if (shape(p).size() != 1) {
      throw InputError("column '" + p + "' in " + r.where() + " is not one-dimensional");
    }
    Column c{name, read(p), ""};
    if (has_attribute(p, "units")) c.unit = string_attribute(p, "units");
    if (!columns.empty() && column_size(c) != column_size(columns.front())) {
      throw InputError("table '" + std::string(group) + "' in " + r.where() + ": column '" + name + "' has " +
                       std::to_string(column_size(c)) + " rows, '" + columns.front().name + "' has " +
                       std::to_string(column_size(columns.front())));
    }
    columns.push_back(std::move(c));
  }
  return columns;
}

}  // namespace moesim::analysis
