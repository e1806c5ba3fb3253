// HDF5 results files: every kind of object written and read back equal; the
// commit/discard semantics; errors; the schema helpers.

#include <catch2/catch.hpp>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "analysis/hdf5_reader.hpp"
#include "analysis/hdf5_writer.hpp"
#include "moesim/version.hpp"
#include "sim/options.hpp"
#include "temp_dir.hpp"

using namespace moesim;
using namespace moesim::analysis;
using moesim::test::read_bytes;
using moesim::test::TempDir;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// Bit-for-bit equality, so NaN == NaN and -0.0 != 0.0.
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<std::uint64_t>(a[i]) != std::bit_cast<std::uint64_t>(b[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("HDF5 round trip: attributes of every type", "[results][hdf5]") {
  TempDir dir;
  const auto file = dir / "attrs.h5";
  const std::string utf8 = "TTFT \xC2\xB5s \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC";  // "µs — 日本"
  std::string long_text;
  for (int i = 0; i < 5000; ++i) long_text += "[model]\nlayers = " + std::to_string(i) + "\n";  // ~100 KB
  {
    Hdf5Writer w(file);
    w.set_attribute("/", "text", utf8);
    w.set_attribute("/", "empty", "");
    w.set_attribute("/", "long", long_text);
    w.set_attribute("/", "int_min", AttributeValue(kI64Min));
    w.set_attribute("/", "int_max", AttributeValue(kI64Max));
    w.set_attribute("/", "small_int", 42);  // an int literal becomes int64
    w.set_attribute("/", "u64_max", AttributeValue(kU64Max));
    w.set_attribute("/", "pi", 3.141592653589793);
    w.set_attribute("/", "nan", kNaN);
    w.set_attribute("/", "minus_inf", -kInf);
    w.set_attribute("/", "strings", AttributeValue(std::vector<std::string>{"a", "", utf8}));
    w.set_attribute("/", "no_strings", AttributeValue(std::vector<std::string>{}));
    w.set_attribute("/", "doubles", AttributeValue(std::vector<double>{1.5, -0.0, 1e-300}));
    w.set_attribute("/", "ints", AttributeValue(std::vector<std::int64_t>{kI64Min, 0, kI64Max}));
    w.set_attribute("/summary", "latency_s", 0.25);  // creates the group
    w.set_attribute("/summary", "latency_s", 0.5);   // replaces
    w.commit();
  }
  const Hdf5Reader r(file);
  CHECK(r.string_attribute("/", "text") == utf8);
  CHECK(r.string_attribute("/", "empty").empty());
  CHECK(r.string_attribute("/", "long") == long_text);
  CHECK(r.int_attribute("/", "int_min") == kI64Min);
  CHECK(r.int_attribute("/", "int_max") == kI64Max);
  CHECK(r.int_attribute("/", "small_int") == 42);
  CHECK(std::get<std::uint64_t>(r.attribute("/", "u64_max")) == kU64Max);
  CHECK_THROWS_AS(r.int_attribute("/", "u64_max"), InputError);  // does not fit int64
  CHECK(r.double_attribute("/", "pi") == 3.141592653589793);
  CHECK(std::isnan(r.double_attribute("/", "nan")));
  CHECK(r.double_attribute("/", "minus_inf") == -kInf);
  CHECK(std::get<std::vector<std::string>>(r.attribute("/", "strings")) == std::vector<std::string>{"a", "", utf8});
  CHECK(std::get<std::vector<std::string>>(r.attribute("/", "no_strings")).empty());
  CHECK(same_bits(std::get<std::vector<double>>(r.attribute("/", "doubles")), {1.5, -0.0, 1e-300}));
  CHECK(std::get<std::vector<std::int64_t>>(r.attribute("/", "ints")) ==
        std::vector<std::int64_t>{kI64Min, 0, kI64Max});
  CHECK(r.double_attribute("/summary", "latency_s") == 0.5);
  CHECK(r.double_attribute("/", "small_int") == 42.0);  // integers convert to double on request
  CHECK_THROWS_AS(r.string_attribute("/", "pi"), InputError);
  CHECK_THROWS_AS(r.attribute("/", "absent"), InputError);
  CHECK_THROWS_AS(r.attribute("/nowhere", "x"), InputError);
  CHECK(r.has_attribute("/", "pi"));
  CHECK_FALSE(r.has_attribute("/", "absent"));
  CHECK_FALSE(r.has_attribute("/nowhere", "pi"));
  const std::vector<std::string> names = r.attribute_names("/");
  CHECK(names.size() == 14);
  CHECK(std::is_sorted(names.begin(), names.end()));
}

TEST_CASE("HDF5 round trip: 1-D and 2-D datasets, groups, tables", "[results][hdf5]") {
  TempDir dir;
  const auto file = dir / "data.h5";
  const std::vector<double> doubles{0.0, -0.0, 1.0 / 3.0, kNaN, kInf, -kInf, std::numeric_limits<double>::denorm_min(),
                                    std::numeric_limits<double>::max()};
  const std::vector<std::int64_t> ints{kI64Min, -1, 0, 1, kI64Max};
  const std::vector<std::string> strings{"compute", "", "all_to_all \xE2\x86\x92 gpu7", std::string(10000, 'x')};
  // Row-major 3 x 4: m[r][c] = 10 r + c (+ 0.5 for the double matrix).
  std::vector<double> md;
  std::vector<std::int64_t> mi;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) {
      md.push_back(10.0 * r + c + 0.5);
      mi.push_back(10 * r + c);
    }
  }
  const std::vector<Column> table{
      {"zeta", std::vector<std::int64_t>{3, 1, 2}, ""},
      {"alpha", std::vector<double>{0.1, 0.2, 0.3}, "s"},
      {"mid", std::vector<std::string>{"x", "y", "z"}, ""},
  };
  {
    Hdf5Writer w(file);
    w.create_group("/a/b/c");
    w.create_group("/a/b");  // existing: fine
    w.write_dataset("/d/doubles", doubles, DatasetOptions{"s", Compression::kAuto});
    w.write_dataset("/d/ints", ints);
    w.write_dataset("/d/strings", strings);
    w.write_dataset("/d/empty_doubles", std::vector<double>{});
    w.write_dataset("/d/empty_ints", std::vector<std::int64_t>{});
    w.write_dataset("/d/empty_strings", std::vector<std::string>{});
    w.write_matrix("/m/doubles", md, 3, 4);
    w.write_matrix("/m/ints", mi, 3, 4, DatasetOptions{"tokens", Compression::kGzip});  // tiny but forced gzip
    w.write_matrix("/m/empty", std::vector<double>{}, 0, 7);
    w.write_table("/t", table);
    w.write_table("/empty_table", std::vector<Column>{{"id", std::vector<std::int64_t>{}, ""}});
    w.commit();
  }
  const Hdf5Reader r(file);
  CHECK(r.children("/") == std::vector<std::string>{"a", "d", "empty_table", "m", "t"});
  CHECK(r.children("/a/b") == std::vector<std::string>{"c"});
  CHECK(r.is_group("/a/b/c"));
  CHECK_FALSE(r.is_dataset("/a/b/c"));
  CHECK(r.is_dataset("/d/ints"));
  CHECK_FALSE(r.exists("/a/x/y"));  // missing parent: false, not an error
  CHECK_FALSE(r.exists("relative"));

  CHECK(same_bits(r.read_doubles("/d/doubles"), doubles));
  CHECK(r.string_attribute("/d/doubles", "units") == "s");
  CHECK_FALSE(r.has_attribute("/d/ints", "units"));
  CHECK(r.read_int64s("/d/ints") == ints);
  CHECK(r.read_strings("/d/strings") == strings);
  CHECK(r.shape("/d/strings") == std::vector<std::size_t>{4});
  CHECK(r.read_doubles("/d/empty_doubles").empty());
  CHECK(r.read_int64s("/d/empty_ints").empty());
  CHECK(r.read_strings("/d/empty_strings").empty());
  CHECK(std::holds_alternative<std::vector<std::string>>(r.read("/d/empty_strings")));

  const Matrix<double> m = r.read_matrix_doubles("/m/doubles");
  CHECK(m.rows == 3);
  CHECK(m.cols == 4);
  CHECK(m.at(2, 3) == 23.5);  // row 2, column 3: 10*2 + 3 + 0.5
  CHECK(m.at(1, 0) == 10.5);
  CHECK(m.data == md);
  const Matrix<std::int64_t> mint = r.read_matrix_int64s("/m/ints");
  CHECK(mint.data == mi);
  CHECK(mint.at(2, 1) == 21);
  CHECK(r.string_attribute("/m/ints", "units") == "tokens");
  CHECK(r.shape("/m/empty") == std::vector<std::size_t>{0, 7});
  CHECK(r.read_doubles("/m/ints") == std::vector<double>(mi.begin(), mi.end()));  // ints read as doubles
  CHECK_THROWS_AS(r.read_int64s("/m/doubles"), InputError);
  CHECK_THROWS_AS(r.read_strings("/m/doubles"), InputError);
  CHECK_THROWS_AS(r.read_matrix_doubles("/d/doubles"), InputError);  // rank 1
  CHECK_THROWS_AS(r.read_doubles("/d/absent"), InputError);
  CHECK_THROWS_AS(r.read_doubles("/a"), InputError);  // a group

  // Tables keep their column order (not HDF5's alphabetical link order).
  CHECK(std::get<std::vector<std::string>>(r.attribute("/t", "columns")) ==
        std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(r.int_attribute("/t", "rows") == 3);
  const std::vector<Column> back = r.read_table("/t");
  REQUIRE(back.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(back[i].name == table[i].name);
    CHECK(back[i].values == table[i].values);
    CHECK(back[i].unit == table[i].unit);
  }
  const std::vector<Column> empty = r.read_table("/empty_table");
  REQUIRE(empty.size() == 1);
  CHECK(column_size(empty[0]) == 0);
  CHECK_THROWS_AS(r.read_table("/a"), InputError);  // a group, but not a table
}

TEST_CASE("HDF5 large datasets are compressed and still read back exactly", "[results][hdf5]") {
  TempDir dir;
  // 500,000 int64 tokens counts with few distinct values (like per-expert
  // loads): 4,000,000 bytes raw. Shuffle + gzip must take the file well below
  // that; uncompressed it cannot be smaller than the raw bytes.
  constexpr std::size_t kRows = 1000, kCols = 500;
  std::vector<std::int64_t> loads(kRows * kCols);
  for (std::size_t i = 0; i < loads.size(); ++i) loads[i] = static_cast<std::int64_t>(i % 7) * 1024;
  {
    Hdf5Writer w(dir / "auto.h5");
    w.write_matrix("/experts/load", loads, kRows, kCols);  // kAuto: >= 4096 values -> gzip
    w.commit();
  }
  {
    Hdf5Writer w(dir / "none.h5");
    w.write_matrix("/experts/load", loads, kRows, kCols, DatasetOptions{"", Compression::kNone});
    w.commit();
  }
  const auto compressed = std::filesystem::file_size(dir / "auto.h5");
  const auto raw = std::filesystem::file_size(dir / "none.h5");
  CHECK(raw >= kRows * kCols * 8);
  CHECK(compressed < raw / 10);
  CHECK(Hdf5Reader(dir / "auto.h5").read_matrix_int64s("/experts/load").data == loads);
  CHECK(Hdf5Reader(dir / "none.h5").read_matrix_int64s("/experts/load").data == loads);
}

TEST_CASE("HDF5 files are byte-identical for identical content", "[results][hdf5]") {
  // No object timestamps: the same run and seed give the same file, bit for bit.
  TempDir dir;
  auto write = [&](const std::string& name) {
    Hdf5Writer w(dir / name);
    w.set_attribute("/", "seed", AttributeValue(std::uint64_t{7}));
    w.write_table("/requests", std::vector<Column>{{"id", std::vector<std::int64_t>{1, 2}, ""},
                                                   {"ttft_s", std::vector<double>{0.1, 0.2}, "s"}});
    std::vector<double> big(20000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::sin(static_cast<double>(i));
    w.write_dataset("/big", big);
    w.commit();
  };
  write("one.h5");
  // Object timestamps (if they were on) have one-second resolution: write the
  // second file in the next second of the wall clock.
  const auto now = std::chrono::system_clock::now();
  std::this_thread::sleep_until(std::chrono::ceil<std::chrono::seconds>(now) + std::chrono::milliseconds(20));
  write("two.h5");
  CHECK(read_bytes(dir / "one.h5") == read_bytes(dir / "two.h5"));
}

TEST_CASE("HDF5 writer: the target appears only on commit", "[results][hdf5]") {
  TempDir dir;
  const auto target = dir / "results.h5";

  SECTION("no commit, no file, no temporary left") {
    {
      Hdf5Writer w(target);
      CHECK(std::filesystem::exists(w.temp_path()));
      CHECK(w.temp_path().parent_path() == target.parent_path());
      CHECK(w.temp_path().filename().string().rfind("results.h5.tmp.", 0) == 0);
      w.write_dataset("/x", std::vector<double>{1.0});
      CHECK_FALSE(std::filesystem::exists(target));
    }
    CHECK(dir.entries().empty());
  }

  SECTION("an exception mid-write leaves the previous file as it was") {
    {
      Hdf5Writer w(target);
      w.set_attribute("/", "generation", "old");
      w.commit();
    }
    const std::string before = read_bytes(target);
    try {
      Hdf5Writer w(target);
      w.set_attribute("/", "generation", "new");
      w.write_dataset("/x", std::vector<double>{1.0});
      w.write_dataset("/x", std::vector<double>{2.0});  // throws: already written
      FAIL("writing a dataset twice must throw");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("already written") != std::string::npos);
    }
    CHECK(read_bytes(target) == before);
    CHECK(Hdf5Reader(target).string_attribute("/", "generation") == "old");
    CHECK(dir.entries() == std::vector<std::string>{"results.h5"});
  }

  SECTION("commit replaces the previous file; the writer is then closed") {
    Hdf5Writer first(target);
    first.set_attribute("/", "generation", "first");
    first.commit();
    Hdf5Writer second(target);
    second.set_attribute("/", "generation", "second");
    second.commit();
    CHECK(Hdf5Reader(target).string_attribute("/", "generation") == "second");
    CHECK_THROWS_AS(second.set_attribute("/", "x", 1.0), std::logic_error);
    CHECK_THROWS_AS(second.commit(), std::logic_error);
    CHECK(dir.entries() == std::vector<std::string>{"results.h5"});
  }

  SECTION("a moved writer carries the file") {
    Hdf5Writer a(target);
    a.set_attribute("/", "k", "v");
    Hdf5Writer b(std::move(a));
    b.commit();
    CHECK(Hdf5Reader(target).string_attribute("/", "k") == "v");
  }
}

TEST_CASE("HDF5 writer and reader report bad input clearly", "[results][hdf5]") {
  TempDir dir;
  SECTION("output paths") {
    CHECK_THROWS_AS(Hdf5Writer(dir / "no_such_dir" / "r.h5"), InputError);
    CHECK_THROWS_WITH(Hdf5Writer(dir / "no_such_dir" / "r.h5"), Catch::Contains("does not exist"));
    CHECK_THROWS_WITH(Hdf5Writer(dir.path()), Catch::Contains("is a directory"));
    CHECK(dir.entries().empty());
  }
  SECTION("caller errors") {
    Hdf5Writer w(dir / "r.h5");
    CHECK_THROWS_AS(w.write_dataset("relative", std::vector<double>{1.0}), std::invalid_argument);
    CHECK_THROWS_AS(w.write_dataset("/a//b", std::vector<double>{1.0}), std::invalid_argument);
    CHECK_THROWS_AS(w.write_dataset("/", std::vector<double>{1.0}), std::invalid_argument);
    CHECK_THROWS_WITH(w.write_matrix("/m", std::vector<double>{1, 2, 3}, 2, 2), Catch::Contains("3 values for 2 x 2"));
    w.write_dataset("/ds", std::vector<double>{1.0});
    CHECK_THROWS_WITH(w.create_group("/ds/sub"), Catch::Contains("is a dataset"));
    CHECK_THROWS_WITH(w.write_table("/t", std::vector<Column>{{"a", std::vector<double>{1.0}, ""},
                                                               {"b", std::vector<double>{1.0, 2.0}, ""}}),
                      Catch::Contains("column 'b' has 2 rows"));
    CHECK_THROWS_WITH(w.write_table("/t", std::vector<Column>{{"a", std::vector<double>{1.0}, ""},
                                                               {"a", std::vector<double>{1.0}, ""}}),
                      Catch::Contains("two columns named 'a'"));
    CHECK_THROWS_AS(w.write_table("/t", std::vector<Column>{{"a/b", std::vector<double>{1.0}, ""}}),
                    std::invalid_argument);
    CHECK_THROWS_AS(w.write_table("/t", std::vector<Column>{{"", std::vector<double>{1.0}, ""}}),
                    std::invalid_argument);
    CHECK_THROWS_AS(w.write_dataset("/s", std::vector<std::string>{std::string("a\0b", 3)}), std::invalid_argument);
    CHECK_THROWS_AS(w.set_attribute("/", "", 1.0), std::invalid_argument);
    w.commit();  // the file is still good after rejected calls
    CHECK(Hdf5Reader(dir / "r.h5").read_doubles("/ds") == std::vector<double>{1.0});
  }
  SECTION("reading") {
    CHECK_THROWS_WITH(Hdf5Reader(dir / "absent.h5"), Catch::Contains("does not exist"));
    std::ofstream(dir / "text.h5") << "this is not HDF5\n";
    CHECK_THROWS_AS(Hdf5Reader(dir / "text.h5"), InputError);
    CHECK_THROWS_WITH(Hdf5Reader(dir / "text.h5"), Catch::Contains("not an HDF5 file"));
    CHECK_THROWS_AS(Hdf5Reader(dir.path()), InputError);
  }
}

TEST_CASE("HDF5 files open in h5dump", "[results][hdf5]") {
  // The issue's contract: "readable with h5dump and h5py". h5dump comes with
  // Debian's hdf5-tools; without it this check has nothing to run.
  if (std::system("command -v h5dump >/dev/null 2>&1") != 0) {
    WARN("h5dump not installed (hdf5-tools): check skipped");
    return;
  }
  TempDir dir;
  {
    Hdf5Writer w(dir / "r.h5");
    w.set_attribute("/", "scenario", "[model]\npreset = small\n");
    w.write_table("/requests", std::vector<Column>{{"id", std::vector<std::int64_t>{1, 2}, ""},
                                                   {"ttft_s", std::vector<double>{0.25, 0.5}, "s"}});
    w.commit();
  }
  const std::string out = (dir / "dump.txt").string();
  const std::string cmd = "h5dump -d /requests/ttft_s '" + (dir / "r.h5").string() + "' > '" + out + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string dump = read_bytes(out);
  CHECK(dump.find("0.25") != std::string::npos);
  CHECK(dump.find("H5T_IEEE_F64LE") != std::string::npos);
}

TEST_CASE("HDF5 writers in several threads at once", "[results][hdf5]") {
  // The serial HDF5 library is not thread-safe; the writer serialises calls,
  // so sweep workers may each write a file.
  TempDir dir;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&dir, t] {
      Hdf5Writer w(dir / ("t" + std::to_string(t) + ".h5"));
      for (int i = 0; i < 20; ++i) {
        w.write_dataset("/d" + std::to_string(i), std::vector<double>(100, static_cast<double>(t * 100 + i)));
      }
      w.commit();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    const Hdf5Reader r(dir / ("t" + std::to_string(t) + ".h5"));
    CHECK(r.read_doubles("/d19") == std::vector<double>(100, static_cast<double>(t * 100 + 19)));
  }
}

// ---------------------------------------------------------------------------
// Schema helpers

TEST_CASE("schema tables: required columns are enforced, units filled in", "[results][schema]") {
  TempDir dir;
  Hdf5Writer w(dir / "r.h5");
  std::vector<Column> breakdown{
      {"gpu", std::vector<std::int64_t>{0, 1}, ""},
      {"compute_s", std::vector<double>{0.6, 0.5}, ""},
      {"communication_exposed_s", std::vector<double>{0.1, 0.2}, ""},
      {"all_to_all_s", std::vector<double>{0.1, 0.1}, ""},
      {"bubble_s", std::vector<double>{0.1, 0.1}, ""},
      {"idle_s", std::vector<double>{0.1, 0.1}, ""},
      {"extra_note", std::vector<std::string>{"x", "y"}, ""},  // extra columns are allowed
  };
  SECTION("a missing column is named") {
    auto missing = breakdown;
    missing.erase(missing.begin() + 4);
    CHECK_THROWS_WITH(write_table(w, schema::kBreakdown, missing), Catch::Contains("'bubble_s'"));
  }
  SECTION("a column of the wrong type is named") {
    auto wrong = breakdown;
    wrong[0].values = std::vector<double>{0.0, 1.0};
    CHECK_THROWS_WITH(write_table(w, schema::kBreakdown, wrong), Catch::Contains("'gpu' must be int64, not double"));
  }
  SECTION("a good table is written with the spec's units") {
    write_table(w, schema::kBreakdown, breakdown);
    w.commit();
    const Hdf5Reader r(dir / "r.h5");
    const std::vector<Column> back = r.read_table("/breakdown");
    REQUIRE(back.size() == 7);
    CHECK(back[1].name == "compute_s");
    CHECK(back[1].unit == "s");
    CHECK(back[0].unit.empty());
    CHECK(back[6].name == "extra_note");
  }
}

TEST_CASE("schema: every required column is documented in docs/results-format.md", "[results][schema]") {
  const std::string doc = read_bytes(std::filesystem::path(MOESIM_SOURCE_DIR) / "docs" / "results-format.md");
  REQUIRE_FALSE(doc.empty());
  for (const TableSpec* spec : schema::tables()) {
    const std::size_t section = doc.find("`" + std::string(spec->path) + "`");
    INFO("table " << spec->path);
    REQUIRE(section != std::string::npos);
    for (const ColumnSpec& c : spec->columns) {
      INFO("column " << c.name);
      CHECK(doc.find("`" + std::string(c.name) + "`", section) != std::string::npos);
    }
  }
}

TEST_CASE("provenance and JSON summaries become attributes", "[results][schema]") {
  TempDir dir;
  const nlohmann::json summary = {
      {"seed", 42},
      {"gpus", 512},
      {"latency_s", 0.125},
      {"strategy", {{"tp", 4}, {"pp", 4}, {"convention", "folded"}}},
      {"ttft_s", {{"p50", 0.05}, {"p99", 0.2}}},
      {"feasible", true},
      {"note", nullptr},
      {"ranks", {0, 1, 2}},
      {"fractions", {0.5, 0.25}},
      {"labels", {"a", "b"}},
      {"mixed", {1, "x"}},
      {"huge", std::uint64_t{18446744073709551615ULL}},
  };
  {
    Hdf5Writer w(dir / "r.h5");
    write_provenance(w, Provenance{"run", 18446744073709551615ULL, "[run]\nseed = 1\n", "moesim run -o r.h5", "", ""});
    write_json_attributes(w, schema::kSummary, summary);
    w.commit();
  }
  const Hdf5Reader r(dir / "r.h5");
  CHECK(r.string_attribute("/", "format") == "moesim-results");
  CHECK(r.int_attribute("/", "format_version") == schema::kFormatVersion);
  CHECK(r.string_attribute("/", "kind") == "run");
  CHECK(r.string_attribute("/", "moesim_version") == kVersion);
  CHECK(r.string_attribute("/", "git_commit") == kGitCommit);
  CHECK(std::get<std::uint64_t>(r.attribute("/", "seed")) == 18446744073709551615ULL);
  CHECK(r.string_attribute("/", "scenario") == "[run]\nseed = 1\n");
  CHECK(r.string_attribute("/", "command") == "moesim run -o r.h5");

  CHECK(r.int_attribute("/summary", "gpus") == 512);
  CHECK(r.double_attribute("/summary", "latency_s") == 0.125);
  CHECK(r.int_attribute("/summary", "strategy.tp") == 4);
  CHECK(r.string_attribute("/summary", "strategy.convention") == "folded");
  CHECK(r.double_attribute("/summary", "ttft_s.p99") == 0.2);
  CHECK(r.int_attribute("/summary", "feasible") == 1);
  CHECK_FALSE(r.has_attribute("/summary", "note"));
  CHECK(std::get<std::vector<std::int64_t>>(r.attribute("/summary", "ranks")) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(std::get<std::vector<double>>(r.attribute("/summary", "fractions")) == std::vector<double>{0.5, 0.25});
  CHECK(std::get<std::vector<std::string>>(r.attribute("/summary", "labels")) == std::vector<std::string>{"a", "b"});
  CHECK(r.string_attribute("/summary", "mixed") == R"([1,"x"])");
  CHECK(std::get<std::uint64_t>(r.attribute("/summary", "huge")) == 18446744073709551615ULL);
}

TEST_CASE("columns from JSON rows (sweep tables)", "[results][schema]") {
  const std::vector<nlohmann::json> rows{
      {{"workload.rate", 1}, {"throughput", {{"tokens_per_s", 100.5}}}, {"plan", "tp4"}, {"ok", true}},
      {{"workload.rate", 2}, {"throughput", {{"tokens_per_s", 180}}}, {"plan", "tp8"}, {"ok", false}},
      {{"workload.rate", 4}, {"plan", 8}, {"ok", true}},  // no throughput; plan is a number here
  };
  const std::vector<Column> cols = columns_from_json_rows(rows);
  REQUIRE(cols.size() == 4);
  // nlohmann::json objects iterate keys in sorted order: ok, plan, throughput..., workload.rate.
  CHECK(cols[0].name == "ok");
  CHECK(std::get<std::vector<std::int64_t>>(cols[0].values) == std::vector<std::int64_t>{1, 0, 1});
  CHECK(cols[1].name == "plan");
  CHECK(std::get<std::vector<std::string>>(cols[1].values) == std::vector<std::string>{"\"tp4\"", "\"tp8\"", "8"});
  CHECK(cols[2].name == "throughput.tokens_per_s");
  const auto& tput = std::get<std::vector<double>>(cols[2].values);
  REQUIRE(tput.size() == 3);
  CHECK(tput[0] == 100.5);
  CHECK(tput[1] == 180.0);
  CHECK(std::isnan(tput[2]));  // missing in row 3
  CHECK(cols[3].name == "workload.rate");
  CHECK(std::get<std::vector<std::int64_t>>(cols[3].values) == std::vector<std::int64_t>{1, 2, 4});

  TempDir dir;
  Hdf5Writer w(dir / "s.h5");
  const std::vector<std::string> varied{"workload.rate"};
  write_json_table(w, schema::kSweep, rows, varied);
  CHECK_THROWS_WITH(write_json_table(w, schema::kSearch, rows, std::vector<std::string>{"strategy.tp"}),
                    Catch::Contains("'strategy.tp'"));
  w.commit();
  const Hdf5Reader r(dir / "s.h5");
  const std::vector<Column> back = r.read_table("/sweep");
  REQUIRE(back.size() == 4);
  CHECK(back[0].name == "workload.rate");  // the varied key first
  CHECK(back[1].name == "ok");
  CHECK(std::get<std::vector<std::string>>(r.attribute("/sweep", "varied")) == varied);
  CHECK(r.read_int64s("/sweep/workload.rate") == std::vector<std::int64_t>{1, 2, 4});
  CHECK_FALSE(r.exists("/search"));
}
