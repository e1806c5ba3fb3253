// A run killed mid-write leaves the previous results file intact (issue 6),
// and the atomic-replacement helper underneath.

#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "analysis/atomic_file.hpp"
#include "analysis/hdf5_reader.hpp"
#include "analysis/hdf5_writer.hpp"
#include "sim/options.hpp"
#include "temp_dir.hpp"

using namespace moesim;
using namespace moesim::analysis;
using moesim::test::read_bytes;
using moesim::test::TempDir;

namespace {

constexpr std::size_t kChunkDoubles = std::size_t{1} << 17;  // 1 MiB per dataset
constexpr int kChunksBeforeSignal = 8;                        // the parent kills after 8 MiB are written
constexpr int kChunksAtMost = 48;

/// Forks a child that starts writing a large results file to `target`,
/// reports through a pipe once kChunksBeforeSignal MiB are written, and goes
/// on writing (it never commits). The parent then kills it with SIGKILL and
/// reaps it. Returns the child's pid; fails the test if the child did not
/// report within 30 s or did not die of SIGKILL.
pid_t kill_writer_midway(const std::filesystem::path& target) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Child: never return into Catch2; every path ends in _exit.
    ::close(fds[0]);
    int code = 3;  // "ran to the end without being killed"
    try {
      Hdf5Writer w(target);
      w.set_attribute("/", "generation", "new");
      const std::vector<double> chunk(kChunkDoubles, 1.0);
      for (int i = 0; i < kChunksAtMost; ++i) {
        w.write_dataset("/chunk" + std::to_string(i), chunk, DatasetOptions{"", Compression::kNone});
        if (i + 1 == kChunksBeforeSignal) {
          const char c = 'w';
          if (::write(fds[1], &c, 1) != 1) ::_exit(4);
        }
      }
      ::sleep(30);  // still not committed when the parent's SIGKILL arrives
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  pollfd pfd{fds[0], POLLIN, 0};
  char c = 0;
  const bool reported = ::poll(&pfd, 1, 30000) > 0 && ::read(fds[0], &c, 1) == 1;
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  REQUIRE(reported);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  return child;
}

std::vector<std::string> temporaries_of(const TempDir& dir, const std::string& target_name) {
  std::vector<std::string> out;
  for (const std::string& name : dir.entries()) {
    if (name.rfind(target_name + ".tmp.", 0) == 0) out.push_back(name);
  }
  return out;
}

}  // namespace

TEST_CASE("a results file killed mid-write leaves the previous file intact", "[results][hdf5][atomic]") {
  TempDir dir;
  const auto target = dir / "results.h5";
  std::vector<double> old_values(1000);
  std::iota(old_values.begin(), old_values.end(), 0.0);
  {
    Hdf5Writer w(target);
    w.set_attribute("/", "generation", "old");
    w.write_dataset("/values", old_values);
    w.commit();
  }
  const std::string before = read_bytes(target);

  const pid_t child = kill_writer_midway(target);

  // The target is the old file, byte for byte, and opens as such.
  CHECK(read_bytes(target) == before);
  {
    const Hdf5Reader r(target);
    CHECK(r.string_attribute("/", "generation") == "old");
    CHECK(r.read_doubles("/values") == old_values);
    CHECK_FALSE(r.exists("/chunk0"));
  }
  // The killed writer's temporary is left over, named <target>.tmp.<pid>.<n>,
  // and it held the partial write (at least the 8 MiB reported).
  const std::vector<std::string> temps = temporaries_of(dir, "results.h5");
  REQUIRE(temps.size() == 1);
  CHECK(temps[0] == "results.h5.tmp." + std::to_string(child) + ".0");
  CHECK(std::filesystem::file_size(dir / temps[0]) >= kChunksBeforeSignal * kChunkDoubles * sizeof(double));

  // The next successful write replaces the target and removes the dead
  // writer's temporary.
  {
    Hdf5Writer w(target);
    w.set_attribute("/", "generation", "newer");
    w.commit();
  }
  CHECK(Hdf5Reader(target).string_attribute("/", "generation") == "newer");
  CHECK(dir.entries() == std::vector<std::string>{"results.h5"});
}

TEST_CASE("a first results file killed mid-write leaves no file at the target", "[results][hdf5][atomic]") {
  TempDir dir;
  const auto target = dir / "fresh.h5";
  kill_writer_midway(target);
  CHECK_FALSE(std::filesystem::exists(target));
  CHECK(temporaries_of(dir, "fresh.h5").size() == 1);
  CHECK(remove_stale_temporaries(target) == 1);
  CHECK(dir.entries().empty());
}

TEST_CASE("atomic text files", "[results][atomic]") {
  TempDir dir;
  const auto target = dir / "trace.json";

  SECTION("write, replace, no temporaries left, permissions follow the umask") {
    const mode_t saved = ::umask(022);
    write_file_atomically(target, "first");
    ::umask(saved);
    CHECK(read_bytes(target) == "first");
    CHECK((std::filesystem::status(target).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
           std::filesystem::perms::group_read | std::filesystem::perms::others_read));  // 0666 & ~022
    write_file_atomically(target, std::string(100000, 'z'));
    CHECK(read_bytes(target) == std::string(100000, 'z'));
    CHECK(dir.entries() == std::vector<std::string>{"trace.json"});
  }

  SECTION("without commit the target is untouched") {
    write_file_atomically(target, "good");
    {
      AtomicFile f(target);
      f.write("half a fi");
      CHECK(std::filesystem::exists(f.temp_path()));
    }
    CHECK(read_bytes(target) == "good");
    CHECK(dir.entries() == std::vector<std::string>{"trace.json"});
  }

  SECTION("two writers of one target in one process get distinct temporaries") {
    AtomicFile a(target);
    AtomicFile b(target);
    CHECK(a.temp_path() != b.temp_path());
    a.write("a");
    b.write("b");
    a.commit();
    b.commit();  // last commit wins
    CHECK(read_bytes(target) == "b");
  }

  SECTION("stale temporaries: only those of dead processes for this target") {
    // A pid that is certainly dead: a child that exited and was reaped.
    const pid_t dead = ::fork();
    REQUIRE(dead >= 0);
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    const std::string d = std::to_string(dead);
    const std::string self = std::to_string(::getpid());
    for (const std::string& name : std::vector<std::string>{"trace.json.tmp." + d + ".0",      // dead writer: removed
                                   "trace.json.tmp." + d + ".17",     // dead writer: removed
                                   "trace.json.tmp.1.0",              // pid 1 is alive: kept
                                   "trace.json.tmp." + self + ".3",   // this process: kept
                                   "trace.json.tmp.x.0",              // not ours: kept
                                   "trace.json.tmp." + d,             // not ours (no <n>): kept
                                   "other.json.tmp." + d + ".0"}) {   // another target: kept
      std::ofstream(dir / name) << "partial";
    }
    CHECK(remove_stale_temporaries(target) == 2);
    std::vector<std::string> kept{"other.json.tmp." + d + ".0", "trace.json.tmp." + d,
                                  "trace.json.tmp." + self + ".3", "trace.json.tmp.1.0", "trace.json.tmp.x.0"};
    std::sort(kept.begin(), kept.end());
    CHECK(dir.entries() == kept);
  }

  SECTION("bad output paths are input errors") {
    CHECK_THROWS_AS(write_file_atomically(dir / "missing" / "t.json", "x"), InputError);
    CHECK_THROWS_AS(write_file_atomically(dir.path(), "x"), InputError);
    CHECK_THROWS_AS(write_file_atomically("", "x"), InputError);
  }
}
