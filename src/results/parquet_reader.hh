// Reads back the Parquet files ParquetWriter writes (nullable UTF-8
// columns, PLAIN values, RLE/bit-packed definition levels, ZSTD or
// uncompressed pages), for replaying a stored evaluation. Throws
// std::runtime_error for anything else, or a damaged file.
#pragma once

#include "parquet_writer.hh"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace evolive::results {

struct ParquetContents
{
    std::vector<std::string> columns;
    std::map<std::string, std::string> metadata;
    uint64_t rows = 0;
};

// Reads the footer only.
ParquetContents readParquetFooter(const std::string & path);

// Calls `row` for every row, in order, one row group in memory at a time.
ParquetContents readParquet(const std::string & path, const std::function<void(const std::vector<Cell> &)> & row);

} // namespace evolive::results
