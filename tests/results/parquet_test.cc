// The Parquet writer against DuckDB's reader.
#include "parquet_reader.hh"
#include "parquet_writer.hh"
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace evolive::test;
using evolive::results::Cell;
using evolive::results::ParquetWriter;
using nlohmann::json;

namespace {

json readWithDuckDB(const std::string & file)
{
    auto r = runCommand({"node", READ_PARQUET_SCRIPT, file}, {{"EVOLIVE_NODE_MODULES", NODE_MODULES}});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return json::parse(r.out);
}

} // namespace

TEST(Parquet, DuckDBReadsEveryRowAndTheMetadata)
{
    TempDir dir;
    auto file = dir.path() + "/result.parquet";
    std::vector<std::vector<Cell>> rows;
    for (int i = 0; i < 25; ++i) {
        rows.push_back({"pkg-" + std::to_string(i),
                        i % 7 == 3 ? Cell() : Cell("/nix/store/" + std::string(32, 'a' + i % 26) + "-pkg.drv"),
                        i % 7 == 3 ? Cell("error: ünïcødé ✓ \"quoted\"\nsecond line") : Cell(),
                        i == 5 ? Cell(std::string(100000, 'x')) : Cell("{\"description\":\"d" + std::to_string(i) + "\"}")});
    }
    rows.push_back({"", Cell(""), Cell(), Cell()}); // empty strings are not nulls
    {
        ParquetWriter writer(file, {"attr", "drvPath", "error", "meta"}, 10);
        writer.setMetadata("fingerprint", "0123abcd");
        writer.setMetadata("inputs", R"({"src":{"rev":"deadbeef"}})");
        for (auto & row : rows) writer.addRow(row);
        // Until finished, nothing is under the file's name.
        EXPECT_FALSE(std::filesystem::exists(file));
        writer.finish();
    }
    auto read = readWithDuckDB(file);
    ASSERT_EQ(read["rows"].size(), rows.size());
    std::vector<std::string> names{"attr", "drvPath", "error", "meta"};
    for (size_t i = 0; i < rows.size(); ++i) {
        for (size_t c = 0; c < names.size(); ++c) {
            auto & got = read["rows"][i][names[c]];
            if (rows[i][c]) EXPECT_EQ(got, *rows[i][c]) << "row " << i << " " << names[c];
            else EXPECT_TRUE(got.is_null()) << "row " << i << " " << names[c] << ": " << got;
        }
    }
    EXPECT_EQ(read["metadata"]["fingerprint"], "0123abcd");
    EXPECT_EQ(read["metadata"]["inputs"], R"({"src":{"rev":"deadbeef"}})");

    // Our own reader (for replay) gives back exactly what was written.
    std::vector<std::vector<Cell>> back;
    auto contents = evolive::results::readParquet(file, [&](auto &, const std::vector<Cell> & row) { back.push_back(row); });
    EXPECT_EQ(back, rows);
    EXPECT_EQ(contents.columns, names);
    EXPECT_EQ(contents.rows, rows.size());
    EXPECT_EQ(contents.metadata.at("fingerprint"), "0123abcd");
}

TEST(Parquet, ADamagedFileIsAnErrorNotGarbage)
{
    TempDir dir;
    auto file = dir.path() + "/r.parquet";
    {
        ParquetWriter writer(file, {"attr"});
        writer.addRow({Cell("x")});
        writer.finish();
    }
    auto bytes = readFile(file);
    for (size_t cut : {bytes.size() - 1, bytes.size() / 2, (size_t) 3}) {
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
        EXPECT_THROW(evolive::results::readParquet(file, [](auto &, auto &) {}), std::runtime_error) << cut;
    }
}

TEST(Parquet, AnUnfinishedWriterLeavesNothingBehind)
{
    TempDir dir;
    auto file = dir.path() + "/never.parquet";
    {
        ParquetWriter writer(file, {"attr"}, 2);
        for (int i = 0; i < 5; ++i) writer.addRow({Cell("x")});
    }
    EXPECT_FALSE(std::filesystem::exists(file));
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}
