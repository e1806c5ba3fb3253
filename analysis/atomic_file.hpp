#pragma once
// Atomic replacement of an output file: write to a temporary sibling, fsync it,
// rename it over the target, fsync the directory.
//
// Why: results files (HDF5, Chrome traces, JSON) are what users keep. A run
// that is killed (Ctrl-C, OOM killer, a batch-queue limit) must never leave a
// half-written file where a good one was. rename(2) within one file system is
// atomic (POSIX): a reader sees either the old file or the complete new one.
// The fsync before the rename makes the new content durable before its name
// is; the fsync of the directory makes the rename itself durable (the
// ext4/XFS guidance for crash-safe replacement).
//
// The temporary file is "<target>.tmp.<pid>.<n>" in the target's directory
// (same file system, so the rename cannot cross devices). A process killed
// with SIGKILL cannot remove its temporary, so one may be left over; it is
// safe to delete by hand, and every successful commit() removes those of the
// same target whose <pid> no longer runs on this host (remove_stale_temporaries).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace moesim::analysis {

class AtomicFile {
 public:
  /// Reserves a fresh temporary file (created empty, exclusively) beside
  /// `target`. Throws moesim::InputError when the target's directory does not
  /// exist or is not writable, or when the target is a directory.
  explicit AtomicFile(std::filesystem::path target);
  /// Without commit(): removes the temporary; the target is left untouched.
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;

  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Where the content goes until commit(); other writers (the HDF5 library)
  /// may open this path themselves and must close it before commit().
  [[nodiscard]] const std::filesystem::path& temp_path() const { return temp_; }
  [[nodiscard]] bool committed() const { return committed_; }

  /// Appends `data` to the temporary file. Throws std::runtime_error on an
  /// I/O error (disk full, ...), naming the file.
  void write(std::string_view data);

  /// Makes the temporary file durable and renames it over the target, then
  /// removes stale temporaries of the same target left by dead processes.
  /// Throws std::runtime_error (naming the files) when fsync or rename fails;
  /// the target is then unchanged and the temporary is removed by the
  /// destructor.
  void commit();

  /// Removes the temporary now (also what the destructor does).
  void discard() noexcept;

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes `contents` to `target` through an AtomicFile (text outputs: JSON
/// traces, JSON summaries).
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

/// Removes "<target>.tmp.<pid>.<n>" files whose <pid> is not a live process on
/// this host (and is not this process). Returns how many were removed. Never
/// throws. Caveat: on a file system shared between hosts, a pid means nothing
/// on another host; do not write the same target from several hosts at once.
std::size_t remove_stale_temporaries(const std::filesystem::path& target) noexcept;

/// The prefix of every temporary name for `target`: "<target>.tmp.".
std::string temporary_prefix(const std::filesystem::path& target);

}  // namespace moesim::analysis
