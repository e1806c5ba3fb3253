#include "analysis/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "sim/options.hpp"

namespace moesim::analysis {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::system_category().message(err); }

fs::path directory_of(const fs::path& target) {
  fs::path dir = target.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// fsync of the directory makes a rename durable. Some file systems refuse
// fsync on a directory (EINVAL); the rename is still atomic there, only its
// durability across a power cut is up to the file system.
void sync_directory(const fs::path& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  (void)::fsync(dfd);
  (void)::close(dfd);
}

}  // namespace

std::string temporary_prefix(const fs::path& target) { return target.filename().string() + ".tmp."; }

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  if (target_.empty()) throw InputError("output file name is empty: give a path such as results.h5");
  std::error_code ec;
  if (fs::is_directory(target_, ec)) {
    throw InputError("output path '" + target_.string() + "' is a directory: give a file name inside it");
  }
  const fs::path dir = directory_of(target_);
  if (!fs::is_directory(dir, ec)) {
    throw InputError("cannot write '" + target_.string() + "': directory '" + dir.string() +
                     "' does not exist (create it first)");
  }
  const std::string base = target_.string() + ".tmp." + std::to_string(::getpid()) + ".";
  // O_EXCL reserves a name no other writer (thread or process) holds; several
  // writers of the same target in one process simply take the next <n>.
  for (int n = 0; n < 100000; ++n) {
    fs::path candidate = base + std::to_string(n);
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fd_ = fd;
      temp_ = std::move(candidate);
      return;
    }
    if (errno == EEXIST || errno == EINTR) continue;
    const int err = errno;
    throw InputError("cannot write '" + target_.string() + "': cannot create a file in directory '" +
                     dir.string() + "' (" + errno_text(err) + ")");
  }
  throw InputError("cannot write '" + target_.string() + "': too many temporary files '" + base +
                   "*' exist; remove them");
}

AtomicFile::~AtomicFile() { discard(); }

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)),
      temp_(std::exchange(other.temp_, fs::path())),
      fd_(std::exchange(other.fd_, -1)),
      committed_(other.committed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    target_ = std::move(other.target_);
    temp_ = std::exchange(other.temp_, fs::path());
    fd_ = std::exchange(other.fd_, -1);
    committed_ = other.committed_;
  }
  return *this;
}

void AtomicFile::write(std::string_view data) {
  if (fd_ < 0) throw std::logic_error("AtomicFile::write after commit or discard");
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw std::runtime_error("cannot write '" + temp_.string() + "' (for '" + target_.string() +
                               "'): " + errno_text(err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (committed_) throw std::logic_error("AtomicFile::commit called twice");
  if (fd_ < 0) throw std::logic_error("AtomicFile::commit after discard");
  if (::fsync(fd_) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot flush '" + temp_.string() + "' to disk: " + errno_text(err));
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot close '" + temp_.string() + "': " + errno_text(err));
  }
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int err = errno;
    throw std::runtime_error("cannot rename '" + temp_.string() + "' to '" + target_.string() +
                             "': " + errno_text(err));
  }
  committed_ = true;
  temp_.clear();
  sync_directory(directory_of(target_));
  (void)remove_stale_temporaries(target_);
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    (void)::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    (void)::unlink(temp_.c_str());
    temp_.clear();
  }
}

void write_file_atomically(const fs::path& target, std::string_view contents) {
  AtomicFile file(target);
  file.write(contents);
  file.commit();
}

std::size_t remove_stale_temporaries(const fs::path& target) noexcept {
  std::size_t removed = 0;
  try {
    const std::string prefix = temporary_prefix(target);
    const fs::path dir = directory_of(target);
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      // The rest must be "<pid>.<n>", both decimal; anything else is not ours.
      const std::string_view rest = std::string_view(name).substr(prefix.size());
      const std::size_t dot = rest.find('.');
      if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size()) continue;
      long pid = 0;
      const auto [pend, perr] = std::from_chars(rest.data(), rest.data() + dot, pid);
      if (perr != std::errc() || pend != rest.data() + dot || pid <= 0) continue;
      unsigned long n = 0;
      const auto [nend, nerr] = std::from_chars(rest.data() + dot + 1, rest.data() + rest.size(), n);
      if (nerr != std::errc() || nend != rest.data() + rest.size()) continue;
      if (pid == static_cast<long>(::getpid())) continue;  // maybe another writer in this process
      // kill(pid, 0) probes without signalling: ESRCH means no such process.
      // EPERM means it exists (another user's): leave its file alone.
      if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
      std::error_code rec;
      if (fs::remove(it->path(), rec)) ++removed;
    }
  } catch (...) {
    // Cleaning up is a courtesy; it must never fail a successful write.
  }
  return removed;
}

}  // namespace moesim::analysis
