#include "parquet_reader.hh"

#include "hash.hh"

#include <fstream>
#include <stdexcept>
#include <zstd.h>

namespace evolive::results {

namespace {

[[noreturn]] void damaged(const std::string & what)
{
    throw std::runtime_error("not a readable evolive result file: " + what);
}

// Thrift compact protocol, reading side: what the footer and page headers
// need, skipping fields it does not know.
class ThriftReader
{
public:
    ThriftReader(const char * data, size_t size) : p_(data), end_(data + size) {}

    size_t consumed(const char * start) const { return p_ - start; }
    const char * position() const { return p_; }

    // The next field of the current struct: false at its end.
    bool field(int & id, int & type)
    {
        uint8_t b = byte();
        if (b == 0) return false;
        type = b & 0x0f;
        int delta = b >> 4;
        id = delta ? last_.back() + delta : (int) unzigzag(varint());
        last_.back() = id;
        return true;
    }
    void enter() { last_.push_back(0); }
    void leave() { last_.pop_back(); }

    int64_t integer() { return unzigzag(varint()); }
    std::string binary()
    {
        auto n = varint();
        if ((uint64_t) (end_ - p_) < n) damaged("truncated string");
        std::string s(p_, n);
        p_ += n;
        return s;
    }
    // A list header: element type and count.
    size_t list(int & elementType)
    {
        uint8_t b = byte();
        elementType = b & 0x0f;
        size_t n = b >> 4;
        return n == 15 ? varint() : n;
    }
    void skip(int type)
    {
        switch (type) {
        case 1: case 2: return;                       // booleans live in the header
        case 3: byte(); return;                        // byte
        case 4: case 5: case 6: varint(); return;      // i16, i32, i64
        case 7: need(8); p_ += 8; return;              // double
        case 8: binary(); return;
        case 9: case 10: {                             // list, set
            int t;
            for (size_t n = list(t); n > 0; --n) skipElement(t);
            return;
        }
        case 11: {                                     // map
            auto n = varint();
            if (n == 0) return;
            uint8_t kv = byte();
            for (; n > 0; --n) {
                skipElement(kv >> 4);
                skipElement(kv & 0x0f);
            }
            return;
        }
        case 12: {
            enter();
            int id, t;
            while (field(id, t)) skip(t);
            leave();
            return;
        }
        default: damaged("unknown Thrift type");
        }
    }

private:
    void skipElement(int type)
    {
        if (type == 1 || type == 2) byte(); // a boolean element is a byte
        else skip(type);
    }
    void need(size_t n)
    {
        if ((size_t) (end_ - p_) < n) damaged("truncated metadata");
    }
    uint8_t byte()
    {
        need(1);
        return (uint8_t) *p_++;
    }
    uint64_t varint()
    {
        uint64_t n = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            uint8_t b = byte();
            n |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return n;
        }
        damaged("bad varint");
    }
    static int64_t unzigzag(uint64_t n) { return int64_t(n >> 1) ^ -int64_t(n & 1); }

    const char * p_;
    const char * end_;
    std::vector<int> last_{0};
};

struct Chunk
{
    int64_t offset = 0, compressedSize = 0, values = 0;
    int codec = 0;
};

struct Footer
{
    ParquetContents contents;
    std::vector<std::vector<Chunk>> rowGroups;
    std::vector<size_t> checksumAt; // where each checksum entry's value is in the file
};

uint32_t u32(const char * p)
{
    return (uint8_t) p[0] | (uint8_t) p[1] << 8 | (uint8_t) p[2] << 16 | (uint32_t) (uint8_t) p[3] << 24;
}

Footer parseFooter(const std::string & file)
{
    if (file.size() < 12 || file.compare(0, 4, "PAR1") || file.compare(file.size() - 4, 4, "PAR1"))
        damaged("no PAR1 magic");
    uint32_t len = u32(file.data() + file.size() - 8);
    if (len > file.size() - 12) damaged("bad footer length");
    ThriftReader r(file.data() + file.size() - 8 - len, len);
    Footer f;
    int id, type, t;
    while (r.field(id, type)) {
        if (id == 2 && type == 9) { // schema
            size_t n = r.list(t);
            for (size_t i = 0; i < n; ++i) {
                r.enter();
                std::string name;
                bool leaf = false;
                while (r.field(id, type)) {
                    if (id == 4) name = r.binary();
                    else if (id == 1) leaf = true, r.skip(type);
                    else r.skip(type);
                }
                r.leave();
                if (leaf) f.contents.columns.push_back(name);
            }
        } else if (id == 3 && type == 6) {
            f.contents.rows = r.integer();
        } else if (id == 4 && type == 9) { // row groups
            size_t groups = r.list(t);
            for (size_t g = 0; g < groups; ++g) {
                r.enter();
                std::vector<Chunk> chunks;
                while (r.field(id, type)) {
                    if (id != 1) {
                        r.skip(type);
                        continue;
                    }
                    size_t n = r.list(t);
                    for (size_t c = 0; c < n; ++c) {
                        r.enter();
                        Chunk chunk;
                        while (r.field(id, type)) {
                            if (id != 3) {
                                r.skip(type);
                                continue;
                            }
                            r.enter();
                            while (r.field(id, type)) {
                                if (id == 4) chunk.codec = (int) r.integer();
                                else if (id == 5) chunk.values = r.integer();
                                else if (id == 7) chunk.compressedSize = r.integer();
                                else if (id == 9) chunk.offset = r.integer();
                                else r.skip(type);
                            }
                            r.leave();
                        }
                        r.leave();
                        chunks.push_back(chunk);
                    }
                }
                r.leave();
                f.rowGroups.push_back(chunks);
            }
        } else if (id == 5 && type == 9) { // key-value metadata
            size_t n = r.list(t);
            for (size_t i = 0; i < n; ++i) {
                r.enter();
                std::string k, v;
                size_t valueAt = 0;
                while (r.field(id, type)) {
                    if (id == 1) k = r.binary();
                    else if (id == 2) {
                        v = r.binary();
                        valueAt = r.position() - file.data() - v.size();
                    } else r.skip(type);
                }
                r.leave();
                if (k == checksumKey) f.checksumAt.push_back(valueAt);
                f.contents.metadata[k] = v;
            }
        } else {
            r.skip(type);
        }
    }
    return f;
}

// The file's own SHA-256 (see parquet_writer.hh) against the one it holds.
void verifyChecksum(const std::string & file, Footer & footer)
{
    if (footer.checksumAt.empty()) return;
    auto & stored = footer.contents.metadata[checksumKey];
    if (footer.checksumAt.size() != 1 || stored.size() != 64) damaged("malformed checksum");
    auto zeroed = file;
    zeroed.replace(footer.checksumAt[0], 64, std::string(64, '0'));
    if (nix::sha256Hex(zeroed) != stored) damaged("checksum mismatch (the file was changed after it was written)");
    footer.contents.checksummed = true;
}

std::string readWhole(const std::string & path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The cells of one column chunk (a single data page, as written here).
std::vector<Cell> readChunk(const std::string & file, const Chunk & chunk)
{
    if (chunk.offset < 4 || chunk.offset + chunk.compressedSize > (int64_t) file.size()) damaged("bad chunk offset");
    const char * start = file.data() + chunk.offset;
    ThriftReader r(start, chunk.compressedSize);
    int id, type;
    int64_t uncompressed = 0, compressed = 0, values = 0;
    while (r.field(id, type)) {
        if (id == 2) uncompressed = r.integer();
        else if (id == 3) compressed = r.integer();
        else if (id == 5) {
            r.enter();
            while (r.field(id, type)) {
                if (id == 1) values = r.integer();
                else r.skip(type);
            }
            r.leave();
        } else r.skip(type);
    }
    size_t headerSize = r.consumed(start);
    if ((int64_t) headerSize + compressed > chunk.compressedSize) damaged("page larger than its chunk");
    std::string page;
    if (chunk.codec == 6) {
        page.resize(uncompressed);
        size_t n = ZSTD_decompress(page.data(), page.size(), start + headerSize, compressed);
        if (ZSTD_isError(n) || (int64_t) n != uncompressed) damaged("zstd page");
    } else if (chunk.codec == 0) {
        page.assign(start + headerSize, compressed);
    } else {
        damaged("unsupported compression");
    }

    // Definition levels: RLE runs and bit-packed groups, bit width 1.
    if (page.size() < 4) damaged("short page");
    uint32_t levelsSize = u32(page.data());
    if (4 + levelsSize > page.size()) damaged("bad definition levels");
    std::vector<bool> present;
    size_t p = 4, end = 4 + levelsSize;
    while (p < end && (int64_t) present.size() < values) {
        uint64_t header = 0;
        for (int shift = 0; p < end; shift += 7) {
            uint8_t b = page[p++];
            header |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
        }
        if (header & 1) { // bit-packed: (header >> 1) groups of 8 values, one byte each
            for (uint64_t g = 0; g < (header >> 1) && p < end; ++g, ++p)
                for (int bit = 0; bit < 8; ++bit) present.push_back((page[p] >> bit) & 1);
        } else {
            if (p >= end) damaged("truncated RLE run");
            bool v = page[p++] & 1;
            present.insert(present.end(), header >> 1, v);
        }
    }
    present.resize(values);

    std::vector<Cell> cells;
    cells.reserve(values);
    p = end;
    for (bool isPresent : present) {
        if (!isPresent) {
            cells.emplace_back();
            continue;
        }
        if (p + 4 > page.size()) damaged("truncated value");
        uint32_t n = u32(page.data() + p);
        p += 4;
        if (p + n > page.size()) damaged("truncated value");
        cells.emplace_back(page.substr(p, n));
        p += n;
    }
    return cells;
}

} // namespace

ParquetContents readParquet(const std::string & path, const RowCallback & row, const ContentsCallback & first)
{
    auto file = readWhole(path);
    auto footer = parseFooter(file);
    verifyChecksum(file, footer);
    if (first) first(footer.contents);
    if (!row) return footer.contents;
    for (auto & group : footer.rowGroups) {
        std::vector<std::vector<Cell>> columns;
        for (auto & chunk : group) columns.push_back(readChunk(file, chunk));
        size_t rows = columns.empty() ? 0 : columns[0].size();
        for (size_t i = 0; i < rows; ++i) {
            std::vector<Cell> cells;
            for (auto & column : columns) cells.push_back(i < column.size() ? column[i] : Cell());
            row(footer.contents.columns, cells);
        }
    }
    return footer.contents;
}

} // namespace evolive::results
