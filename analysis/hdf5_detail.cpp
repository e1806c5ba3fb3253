#include "analysis/hdf5_detail.hpp"

#include <vector>

namespace moesim::analysis::detail {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

// H5E_DEFAULT, H5P_DEFAULT, H5S_ALL and H5T_VARIABLE are C casts inside HDF5's
// macros; they are confined to this block.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"

namespace {
hid_t error_stack() { return H5E_DEFAULT; }
size_t variable_size() { return H5T_VARIABLE; }
}  // namespace

hid_t default_plist() { return H5P_DEFAULT; }
hid_t all_space() { return H5S_ALL; }
hid_t native_double() { return H5T_NATIVE_DOUBLE; }
hid_t native_int64() { return H5T_NATIVE_INT64; }
hid_t native_uint64() { return H5T_NATIVE_UINT64; }
hid_t file_double() { return H5T_IEEE_F64LE; }
hid_t file_int64() { return H5T_STD_I64LE; }
hid_t file_uint64() { return H5T_STD_U64LE; }
hid_t property_class_file_create() { return H5P_FILE_CREATE; }
hid_t property_class_file_access() { return H5P_FILE_ACCESS; }
hid_t property_class_group_create() { return H5P_GROUP_CREATE; }
hid_t property_class_dataset_create() { return H5P_DATASET_CREATE; }
hid_t property_class_attribute_create() { return H5P_ATTRIBUTE_CREATE; }
hid_t property_class_link_create() { return H5P_LINK_CREATE; }
unsigned file_acc_trunc() { return H5F_ACC_TRUNC; }
unsigned file_acc_rdonly() { return H5F_ACC_RDONLY; }

Hid make_vlen_string_type() {
  Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.valid() || H5Tset_size(type.get(), variable_size()) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    return Hid();
  }
  return type;
}

#pragma GCC diagnostic pop

Hdf5Call::Hdf5Call() : lock_(hdf5_mutex()) {
  (void)H5Eget_auto2(error_stack(), &saved_func_, &saved_data_);
  (void)H5Eset_auto2(error_stack(), nullptr, nullptr);
}

Hdf5Call::~Hdf5Call() { (void)H5Eset_auto2(error_stack(), saved_func_, saved_data_); }

namespace {
herr_t collect_error(unsigned /*n*/, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<std::vector<std::string>*>(client);
  std::string line;
  if (err->func_name != nullptr) line += err->func_name;
  if (err->desc != nullptr && err->desc[0] != '\0') {
    if (!line.empty()) line += ": ";
    line += err->desc;
  }
  out->push_back(std::move(line));
  return 0;
}
}  // namespace

std::string error_text() {
  std::vector<std::string> lines;
  (void)H5Ewalk2(error_stack(), H5E_WALK_DOWNWARD, collect_error, &lines);
  (void)H5Eclear2(error_stack());
  if (lines.empty()) return {};
  // Downward: the API call first, the innermost (most specific) reason last.
  if (lines.size() == 1) return lines.front();
  return lines.front() + " (" + lines.back() + ")";
}

}  // namespace moesim::analysis::detail
