// Writes a Parquet file of nullable UTF-8 string columns (nested values go
// in as JSON text), ZSTD-compressed, with key-value metadata. Rows are
// written in row groups as they come; the file appears under its name only
// when finish() has written the footer (a temporary file is renamed), so a
// crash never leaves a file that looks complete. The subset of the format
// written is described in docs/results.md; DuckDB reads it in the tests.
//
// Integrity: the key-value metadata holds `evolive.sha256`, the SHA-256 of
// the whole file as it would be with that value's 64 hex digits all '0'
// (so the digest covers every page, every offset and all other metadata);
// readParquet checks it.
#pragma once

#include "hash.hh"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace evolive::results {

using Cell = std::optional<std::string>;

// The key-value metadata entry holding the file's SHA-256 (see above).
inline const std::string checksumKey = "evolive.sha256";

class ParquetWriter
{
public:
    ParquetWriter(std::string path, std::vector<std::string> columns, size_t rowGroupSize = 10000);
    ~ParquetWriter(); // removes the temporary file when finish() was not called

    void addRow(const std::vector<Cell> & row);
    void setMetadata(const std::string & key, const std::string & value) { metadata_[key] = value; }
    void finish();

private:
    struct ChunkInfo
    {
        int64_t offset, compressedSize, uncompressedSize, values;
    };
    struct RowGroupInfo
    {
        std::vector<ChunkInfo> chunks;
        int64_t rows, bytes;
    };
    void flushRowGroup();
    void write(const std::string & bytes);

    std::string path_, tmp_;
    std::vector<std::string> columns_;
    size_t rowGroupSize_;
    std::vector<std::vector<Cell>> pending_; // column-major, the current row group
    std::vector<RowGroupInfo> rowGroups_;
    std::map<std::string, std::string> metadata_;
    int fd_ = -1;
    int64_t offset_ = 0;
    uint64_t totalRows_ = 0;
    nix::Sha256Sink digest_; // of everything written so far
    bool finished_ = false;
};

} // namespace evolive::results
