// Thrift's compact protocol, the encoding of Parquet's metadata: just the
// writing side, and just the types Parquet's footer uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace evolive::results {

class ThriftWriter
{
public:
    enum Type : uint8_t { True = 1, False = 2, I32 = 5, I64 = 6, Binary = 8, List = 9, Struct = 12 };

    void i32(int16_t field, int32_t value);
    void i64(int16_t field, int64_t value);
    void binary(int16_t field, const std::string & value);
    void boolean(int16_t field, bool value);
    void beginStruct(int16_t field);
    void endStruct(); // also ends the top-level struct
    // A list field; then `size` elements with the element writers below.
    void beginList(int16_t field, Type elements, size_t size);
    void listI32(int32_t value) { varint(zigzag(value)); }
    void listBinary(const std::string & value);
    void beginListStruct() { lastField_.push_back(0); }

    const std::string & bytes() const { return out_; }

private:
    void fieldHeader(int16_t field, Type type);
    void varint(uint64_t n);
    static uint64_t zigzag(int64_t n) { return (uint64_t(n) << 1) ^ uint64_t(n >> 63); }

    std::string out_;
    std::vector<int16_t> lastField_{0};
};

} // namespace evolive::results
