// Reads back the Parquet files ParquetWriter writes (nullable UTF-8
// columns, PLAIN values, RLE/bit-packed definition levels, ZSTD or
// uncompressed pages), for replaying a stored evaluation. Throws
// std::runtime_error for anything else, or a damaged file: one whose
// checksum (`evolive.sha256`, parquet_writer.hh) does not match it. A file
// without a checksum is read, with `checksummed` false.
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
    bool checksummed = false; // it held a checksum, and the file matches it
};

// Calls `first` with the footer's contents (columns, metadata, row count),
// then `row` with the column names and every row, in order, one row group
// in memory at a time; returns the footer's contents. Without `row`, only
// the footer is read.
using RowCallback = std::function<void(const std::vector<std::string> & columns, const std::vector<Cell> & row)>;
using ContentsCallback = std::function<void(const ParquetContents &)>;
ParquetContents readParquet(const std::string & path, const RowCallback & row,
                            const ContentsCallback & first = {});

} // namespace evolive::results
