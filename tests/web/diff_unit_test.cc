// The comparison of two results on files made for the test with the
// project's ParquetWriter: every category, systems and kernels, aliases,
// labels, the three formats, and files that are not results.
#include "diff_format.hh"
#include "parquet_writer.hh"
#include "result_diff.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace evolive::web;
using evolive::results::Cell;
using evolive::results::ParquetWriter;
namespace fs = std::filesystem;

namespace {

struct Row
{
    std::string attr, system, drv;
    std::vector<std::string> outputs; // paths of `out`, `dev`, ...
    std::string error;                // non-empty: an evaluation error
};

class ResultFiles : public ::testing::Test
{
protected:
    void SetUp() override
    {
        dir_ = fs::temp_directory_path() / ("evolive-diff-unit-" + std::to_string(getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string & name, const std::vector<Row> & rows, const std::string & fingerprint = "")
    {
        auto path = (dir_ / (name + ".parquet")).string();
        ParquetWriter w(path, {"attr", "attrPath", "name", "system", "drvPath", "outputs", "meta", "error", "constituents", "extra"});
        for (auto & r : rows) {
            nlohmann::json outputs = nlohmann::json::object();
            static const char * names[] = {"out", "dev", "doc"};
            for (size_t i = 0; i < r.outputs.size(); ++i) outputs[names[i]] = r.outputs[i];
            bool failed = !r.error.empty();
            w.addRow({r.attr, nlohmann::json::array({r.attr}).dump(), failed ? Cell() : Cell(r.attr),
                      failed ? Cell() : Cell(r.system), failed ? Cell() : Cell(r.drv),
                      failed ? Cell() : Cell(outputs.dump()), Cell(), failed ? Cell(r.error) : Cell(), Cell(), Cell()});
        }
        if (!fingerprint.empty()) w.setMetadata("fingerprint", fingerprint);
        w.setMetadata("inputs", R"({"src":{"type":"git","url":"https://example.org/r.git","rev":"0123456789abcdef0123"}})");
        w.finish();
        return path;
    }

    fs::path dir_;
};

std::string store(const std::string & name) { return "/nix/store/" + std::string(32, 'a') + "-" + name; }
std::string store2(const std::string & name) { return "/nix/store/" + std::string(32, 'b') + "-" + name; }

} // namespace

TEST_F(ResultFiles, SortsJobsIntoEveryCategory)
{
    const std::string x86 = "x86_64-linux";
    auto old = write("old", {
        {"same", x86, store("same.drv"), {store("same")}},
        {"changed", x86, store("changed.drv"), {store("changed"), store("changed-dev")}},
        {"removed", x86, store("removed.drv"), {store("removed")}},
        {"breaks", x86, store("breaks.drv"), {store("breaks")}},
        {"repaired", "", "", {}, "error: repaired is broken"},
        {"stillBroken", "", "", {}, "error: still"},
        // A fixed-output derivation: another .drv, the same output path.
        {"source", x86, store("source.drv"), {store("source.tar.gz")}},
    }, std::string(64, '1'));
    auto now = write("new", {
        {"same", x86, store("same.drv"), {store("same")}},
        {"changed", x86, store2("changed.drv"), {store2("changed"), store("changed-dev")}},
        {"added", x86, store("added.drv"), {store("added")}},
        {"breaks", "", "", {}, "error: breaks now"},
        {"repaired", x86, store("repaired.drv"), {store("repaired")}},
        {"stillBroken", "", "", {}, "error: still"},
        {"source", x86, store2("source.drv"), {store("source.tar.gz")}},
        // An alias of an unchanged job: added, but nothing to build.
        {"sameAlias", x86, store("same.drv"), {store("same")}},
    }, std::string(64, '2'));

    auto d = compareResults(old, now);
    EXPECT_EQ(d.old.fingerprint, std::string(64, '1'));
    EXPECT_EQ(d.now.fingerprint, std::string(64, '2'));
    EXPECT_EQ(d.old.jobs, 7u);
    EXPECT_EQ(d.old.errors, 2u);
    EXPECT_EQ(d.now.jobs, 8u);
    EXPECT_EQ(d.now.errors, 2u);
    using V = std::vector<std::string>;
    EXPECT_EQ(d.added, (V{"added", "sameAlias"}));
    EXPECT_EQ(d.removed, (V{"removed"}));
    EXPECT_EQ(d.changed, (V{"changed", "source"}));
    // One of changed's outputs is new; source's output exists already; the
    // alias's output too; repaired and added have new outputs.
    EXPECT_EQ(d.rebuilds, (V{"added", "changed", "repaired"}));
    EXPECT_EQ(d.newlyFailing, (V{"breaks"}));
    EXPECT_EQ(d.fixed, (V{"repaired"}));
    EXPECT_EQ(d.total.rebuilds, 3u);
    EXPECT_EQ(d.total.rebuildDerivations, 3u);
    ASSERT_EQ(d.systems.size(), 1u);
    auto & c = d.systems.at(x86);
    EXPECT_EQ(c.added, 2u);
    EXPECT_EQ(c.removed, 1u);
    EXPECT_EQ(c.changed, 2u);
    EXPECT_EQ(c.rebuilds, 3u);
    EXPECT_EQ(c.newlyFailing, 1u); // counted under the system it had while it evaluated
    EXPECT_EQ(c.fixed, 1u);
    EXPECT_EQ(d.kernels.at("linux"), 3u);
    EXPECT_EQ(d.kernels.at("darwin"), 0u);
}

TEST_F(ResultFiles, IdenticalResultsHaveNothingToSay)
{
    std::vector<Row> rows{{"a", "x86_64-linux", store("a.drv"), {store("a")}}, {"b", "", "", {}, "error: b"}};
    auto d = compareResults(write("one", rows), write("two", rows));
    EXPECT_EQ(d.total.added + d.total.removed + d.total.changed + d.total.rebuilds + d.total.newlyFailing + d.total.fixed, 0u);
    EXPECT_TRUE(d.systems.empty());
    EXPECT_EQ(nixpkgsLabels(d.kernels), (std::vector<std::string>{"10.rebuild-darwin: 0", "10.rebuild-linux: 0"}));
}

TEST_F(ResultFiles, CountsPerSystemAndPerKernelAsNixpkgsDoes)
{
    auto old = write("old", {});
    // Hydra-style names: one package on two Linux systems is one Linux
    // rebuild for nixpkgs' labels, two per system.
    auto now = write("new", {
        {"hello.x86_64-linux", "x86_64-linux", store("h1.drv"), {store("h1")}},
        {"hello.aarch64-linux", "aarch64-linux", store("h2.drv"), {store("h2")}},
        {"hello.aarch64-darwin", "aarch64-darwin", store("h3.drv"), {store("h3")}},
        {"curl.aarch64-darwin", "aarch64-darwin", store("c3.drv"), {store("c3")}},
        // Two aliases of one derivation: two rebuilds, one derivation.
        {"zlib", "aarch64-darwin", store("z.drv"), {store("z")}},
        {"zlibAlias", "aarch64-darwin", store("z.drv"), {store("z")}},
        {"broken", "", "", {}, "error: no system"},
    });
    auto d = compareResults(old, now);
    EXPECT_EQ(d.systems.at("x86_64-linux").rebuilds, 1u);
    EXPECT_EQ(d.systems.at("aarch64-linux").rebuilds, 1u);
    EXPECT_EQ(d.systems.at("aarch64-darwin").rebuilds, 4u);
    EXPECT_EQ(d.systems.at("aarch64-darwin").rebuildDerivations, 3u);
    EXPECT_EQ(d.systems.at("unknown").added, 1u); // an error has no system
    EXPECT_EQ(d.systems.at("unknown").rebuilds, 0u);
    EXPECT_EQ(d.total.added, 7u);
    EXPECT_EQ(d.total.rebuilds, 6u);
    EXPECT_EQ(d.total.rebuildDerivations, 5u);
    EXPECT_EQ(d.kernels.at("linux"), 1u);
    EXPECT_EQ(d.kernels.at("darwin"), 4u);
    auto labels = nixpkgsLabels(d.kernels);
    EXPECT_EQ(labels, (std::vector<std::string>{"10.rebuild-darwin: 1-10", "10.rebuild-linux: 1", "10.rebuild-linux: 1-10"}));
}

TEST(RebuildLabels, FollowNixpkgsRanges)
{
    std::vector<std::pair<size_t, std::string>> cases{
        {0, "0"},           {1, "1-10"},         {10, "1-10"},        {11, "11-100"},      {100, "11-100"},
        {101, "101-500"},   {500, "101-500"},    {501, "501-1000"},   {1000, "501-1000"},  {1001, "1001-2500"},
        {2500, "1001-2500"}, {2501, "2501-5000"}, {5000, "2501-5000"}, {5001, "5001+"},     {200000, "5001+"}};
    for (auto & [n, label] : cases) EXPECT_EQ(rebuildLabel(n), label) << n;
    EXPECT_EQ(nixpkgsLabels({{"linux", 700}}), (std::vector<std::string>{"10.rebuild-linux: 501-1000", "10.rebuild-linux: 501+"}));
    EXPECT_EQ(nixpkgsLabels({{"linux", 6000}}), (std::vector<std::string>{"10.rebuild-linux: 501+", "10.rebuild-linux: 5001+"}));
}

TEST_F(ResultFiles, FormatsAsJsonTextAndMarkdownWithHostileNamesKeptInert)
{
    const std::string hostile = "<script>alert(1)</script>|*x*\x1b[2J";
    auto old = write("old", {{"a", "x86_64-linux", store("a.drv"), {store("a")}}});
    std::vector<Row> rows{{"a", "x86_64-linux", store2("a.drv"), {store2("a")}}, {hostile, "x86_64-linux", store("h.drv"), {store("h")}}};
    for (int i = 0; i < 30; ++i) rows.push_back({"many" + std::to_string(i), "x86_64-linux", store("m.drv"), {store("m" + std::to_string(i))}});
    auto d = compareResults(old, write("new", rows));

    auto j = diffJson(d, 5);
    EXPECT_EQ(j["counts"]["added"], 31);
    EXPECT_EQ(j["counts"]["rebuilds"], 32);
    EXPECT_EQ(j["counts"]["label"], "11-100");
    EXPECT_EQ(j["systems"]["x86_64-linux"]["label"], "11-100");
    EXPECT_EQ(j["added"].size(), 5u);
    EXPECT_EQ(j["truncated"], true);
    EXPECT_EQ(j["old"]["inputs"]["src"]["rev"], "0123456789abcdef0123");
    EXPECT_EQ(j["labels"], nlohmann::json({"10.rebuild-darwin: 0", "10.rebuild-linux: 11-100"}));
    EXPECT_EQ(diffJson(d)["added"].size(), 31u);
    EXPECT_FALSE(diffJson(d).contains("truncated"));

    auto text = diffText(d, 3);
    EXPECT_NE(text.find("x86_64-linux     31        0        1        32"), std::string::npos) << text;
    EXPECT_NE(text.find("added (31):"), std::string::npos) << text;
    EXPECT_NE(text.find("... and 28 more"), std::string::npos) << text;
    EXPECT_NE(text.find("src 0123456789ab"), std::string::npos) << text;
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << "a name drove the terminal";
    EXPECT_NE(diffText(d, 0).find("\\x1b[2J"), std::string::npos);

    auto md = diffMarkdown(d, 100);
    EXPECT_NE(md.find("| <code>x86&#95;64-linux</code> | 31 | 0 | 1 | 32 | 0 | 0 | 11-100 |"), std::string::npos) << md;
    EXPECT_NE(md.find("<details><summary>Added (31)</summary>"), std::string::npos) << md;
    EXPECT_EQ(md.find("<script>"), std::string::npos) << md;
    EXPECT_NE(md.find("&#60;script&#62;alert&#40;1&#41;&#60;/script&#62;&#124;&#42;x&#42;"), std::string::npos) << md;
    EXPECT_NE(md.find("<code>10.rebuild-linux: 11-100</code>"), std::string::npos) << md;
}

TEST_F(ResultFiles, RefusesWhatIsNotAResult)
{
    auto good = write("good", {});
    auto bad = (dir_ / "bad.parquet").string();
    std::ofstream(bad) << "not parquet at all";
    try {
        compareResults(good, bad);
        FAIL() << "no error";
    } catch (std::exception & e) {
        EXPECT_NE(std::string(e.what()).find("not a readable evolive result file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(compareResults(good, (dir_ / "missing.parquet").string()), std::runtime_error);
    auto other = (dir_ / "other.parquet").string();
    {
        ParquetWriter w(other, {"something"});
        w.addRow({Cell("x")});
        w.finish();
    }
    try {
        compareResults(other, good);
        FAIL() << "no error";
    } catch (std::exception & e) {
        EXPECT_NE(std::string(e.what()).find("no attr column"), std::string::npos) << e.what();
    }
}
