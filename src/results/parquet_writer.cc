#include "parquet_writer.hh"

#include "fd_io.hh"
#include "thrift_compact.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>
#include <zstd.h>

namespace evolive::results {

namespace {

// Parquet's enumerations, as parquet.thrift numbers them.
constexpr int32_t typeByteArray = 6, repetitionOptional = 1, convertedUtf8 = 0;
constexpr int32_t encodingPlain = 0, encodingRle = 3, codecZstd = 6, pageData = 0;

void appendU32(std::string & out, uint32_t n)
{
    for (int i = 0; i < 4; ++i) out += char((n >> (8 * i)) & 0xff);
}

void appendVarint(std::string & out, uint64_t n)
{
    while (n >= 0x80) {
        out += char((n & 0x7f) | 0x80);
        n >>= 7;
    }
    out += char(n);
}

// Definition levels (1 = present, 0 = null) in the RLE/bit-packing hybrid
// with bit width 1, as runs only, preceded by their byte length.
std::string definitionLevels(const std::vector<Cell> & cells)
{
    std::string runs;
    for (size_t i = 0; i < cells.size();) {
        bool present = cells[i].has_value();
        size_t j = i;
        while (j < cells.size() && cells[j].has_value() == present) ++j;
        appendVarint(runs, (j - i) << 1);
        runs += char(present ? 1 : 0);
        i = j;
    }
    std::string out;
    appendU32(out, runs.size());
    return out + runs;
}

std::string zstd(const std::string & data)
{
    std::string out(ZSTD_compressBound(data.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
    if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

} // namespace

ParquetWriter::ParquetWriter(std::string path, std::vector<std::string> columns, size_t rowGroupSize)
    : path_(std::move(path)), columns_(std::move(columns)), rowGroupSize_(rowGroupSize), pending_(columns_.size())
{
    tmp_ = path_ + ".tmp-" + std::to_string(getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot write " + tmp_ + ": " + strerror(errno));
    write("PAR1");
}

ParquetWriter::~ParquetWriter()
{
    if (fd_ >= 0) ::close(fd_);
    if (!finished_) ::unlink(tmp_.c_str());
}

void ParquetWriter::write(const std::string & bytes)
{
    writeAll(fd_, bytes, "cannot write " + tmp_);
    digest_(bytes);
    offset_ += bytes.size();
}

void ParquetWriter::addRow(const std::vector<Cell> & row)
{
    if (row.size() != columns_.size()) throw std::invalid_argument("a row needs one cell per column");
    for (size_t c = 0; c < row.size(); ++c) pending_[c].push_back(row[c]);
    ++totalRows_;
    if (pending_[0].size() >= rowGroupSize_) flushRowGroup();
}

void ParquetWriter::flushRowGroup()
{
    if (pending_.empty() || pending_[0].empty()) return;
    RowGroupInfo group{{}, (int64_t) pending_[0].size(), 0};
    for (auto & cells : pending_) {
        // One data page (v1) per column chunk: definition levels, then the
        // present values, PLAIN (4-byte length + bytes).
        std::string page = definitionLevels(cells);
        for (auto & cell : cells)
            if (cell) {
                appendU32(page, cell->size());
                page += *cell;
            }
        auto compressed = zstd(page);
        ThriftWriter header;
        header.i32(1, pageData);
        header.i32(2, (int32_t) page.size());
        header.i32(3, (int32_t) compressed.size());
        header.beginStruct(5);
        header.i32(1, (int32_t) cells.size());
        header.i32(2, encodingPlain);
        header.i32(3, encodingRle);
        header.i32(4, encodingRle);
        header.endStruct();
        header.endStruct();
        ChunkInfo chunk{offset_, (int64_t) (header.bytes().size() + compressed.size()),
                        (int64_t) (header.bytes().size() + page.size()), (int64_t) cells.size()};
        write(header.bytes());
        write(compressed);
        group.bytes += chunk.uncompressedSize;
        group.chunks.push_back(chunk);
        cells.clear();
    }
    rowGroups_.push_back(group);
}

void ParquetWriter::finish()
{
    flushRowGroup();
    ThriftWriter meta;
    meta.i32(1, 1); // version
    meta.beginList(2, ThriftWriter::Struct, columns_.size() + 1);
    meta.beginListStruct(); // the root of the schema
    meta.binary(4, "schema");
    meta.i32(5, (int32_t) columns_.size());
    meta.endStruct();
    for (auto & name : columns_) {
        meta.beginListStruct();
        meta.i32(1, typeByteArray);
        meta.i32(3, repetitionOptional);
        meta.binary(4, name);
        meta.i32(6, convertedUtf8);
        meta.endStruct();
    }
    meta.i64(3, (int64_t) totalRows_);
    meta.beginList(4, ThriftWriter::Struct, rowGroups_.size());
    for (auto & group : rowGroups_) {
        meta.beginListStruct();
        meta.beginList(1, ThriftWriter::Struct, group.chunks.size());
        for (size_t c = 0; c < group.chunks.size(); ++c) {
            auto & chunk = group.chunks[c];
            meta.beginListStruct();
            meta.i64(2, chunk.offset);
            meta.beginStruct(3);
            meta.i32(1, typeByteArray);
            meta.beginList(2, ThriftWriter::I32, 2);
            meta.listI32(encodingPlain);
            meta.listI32(encodingRle);
            meta.beginList(3, ThriftWriter::Binary, 1);
            meta.listBinary(columns_[c]);
            meta.i32(4, codecZstd);
            meta.i64(5, chunk.values);
            meta.i64(6, chunk.uncompressedSize);
            meta.i64(7, chunk.compressedSize);
            meta.i64(9, chunk.offset);
            meta.endStruct();
            meta.endStruct();
        }
        meta.i64(2, group.bytes);
        meta.i64(3, group.rows);
        meta.endStruct();
    }
    // The checksum comes last in the list, as 64 '0' digits for now: the
    // last such run in the footer (only the created_by field follows it).
    const std::string placeholder(64, '0');
    metadata_.erase(checksumKey);
    meta.beginList(5, ThriftWriter::Struct, metadata_.size() + 1);
    for (auto & [k, v] : metadata_) {
        meta.beginListStruct();
        meta.binary(1, k);
        meta.binary(2, v);
        meta.endStruct();
    }
    meta.beginListStruct();
    meta.binary(1, checksumKey);
    meta.binary(2, placeholder);
    meta.endStruct();
    meta.binary(6, "evolive");
    meta.endStruct();

    std::string footer = meta.bytes();
    appendU32(footer, meta.bytes().size());
    footer += "PAR1";
    digest_(footer);
    footer.replace(footer.rfind(placeholder), placeholder.size(), nix::toBase16(digest_.finish()));
    writeAll(fd_, footer, "cannot write " + tmp_);
    if (fsync(fd_) != 0 || ::close(fd_) != 0) throw std::runtime_error("cannot write " + tmp_ + ": " + strerror(errno));
    fd_ = -1;
    if (rename(tmp_.c_str(), path_.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp_ + ": " + strerror(errno));
    finished_ = true;
}

} // namespace evolive::results
