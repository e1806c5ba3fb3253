#pragma once
// Internal to analysis/hdf5_*.cpp: the one place that includes <hdf5.h>.
// Handles, the process-wide lock, error capture, and the few HDF5 macros
// (H5P_DEFAULT, H5T_VARIABLE, ...) that are C casts, wrapped in functions so
// that our code builds under -Wold-style-cast without weakening the flags.

#include <hdf5.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <utility>

// H5Pset_file_locking: HDF5 1.10.7+ and 1.12.1+ (not 1.12.0).
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
#define MOESIM_HDF5_HAS_FILE_LOCKING 1
#else
#define MOESIM_HDF5_HAS_FILE_LOCKING 0
#endif

namespace moesim::analysis::detail {

/// Debian's libhdf5 is the serial build without --enable-threadsafe: the
/// library's global state (ids, caches, error stacks) must never be entered by
/// two threads at once. A process-wide lock is the library's own recommended
/// remedy; it is the single piece of global state in analysis/, and it mirrors
/// state that the library already holds globally. Recursive, because public
/// entry points call each other.
std::recursive_mutex& hdf5_mutex();

/// One call into HDF5: holds the lock and switches the library's automatic
/// error printing off for its duration (restoring whatever was set before), so
/// that HDF5 never writes to stderr; failures are read from the error stack.
class Hdf5Call {
 public:
  Hdf5Call();
  ~Hdf5Call();
  Hdf5Call(const Hdf5Call&) = delete;
  Hdf5Call& operator=(const Hdf5Call&) = delete;

 private:
  std::lock_guard<std::recursive_mutex> lock_;
  H5E_auto2_t saved_func_ = nullptr;
  void* saved_data_ = nullptr;
};

/// The HDF5 error stack as one line (outermost call and innermost reason),
/// then cleared. Empty when there is no error recorded.
std::string error_text();

/// An owned hid_t, closed with its type's close function.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      closer_ = o.closer_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }
  /// Closes now and returns the close status (to check the file's close).
  herr_t close() {
    herr_t status = 0;
    if (id_ >= 0 && closer_ != nullptr) status = closer_(id_);
    id_ = -1;
    return status;
  }
  void reset() noexcept { (void)close(); }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// The macro constants, as functions (see the header comment).
hid_t default_plist();
hid_t all_space();
hid_t native_double();
hid_t native_int64();
hid_t native_uint64();
hid_t file_double();  // IEEE f64 little-endian: the portable on-disk type
hid_t file_int64();   // STD I64LE
hid_t file_uint64();  // STD U64LE
hid_t property_class_file_create();
hid_t property_class_file_access();
hid_t property_class_group_create();
hid_t property_class_dataset_create();
hid_t property_class_attribute_create();
hid_t property_class_link_create();
unsigned file_acc_trunc();
unsigned file_acc_rdonly();

/// A new variable-length UTF-8 string type (caller owns it).
Hid make_vlen_string_type();

}  // namespace moesim::analysis::detail
