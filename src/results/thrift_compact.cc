#include "thrift_compact.hh"

namespace evolive::results {

void ThriftWriter::varint(uint64_t n)
{
    while (n >= 0x80) {
        out_ += char((n & 0x7f) | 0x80);
        n >>= 7;
    }
    out_ += char(n);
}

void ThriftWriter::fieldHeader(int16_t field, Type type)
{
    int delta = field - lastField_.back();
    if (delta > 0 && delta <= 15) {
        out_ += char(delta << 4 | type);
    } else {
        out_ += char(type);
        varint(zigzag(field));
    }
    lastField_.back() = field;
}

void ThriftWriter::i32(int16_t field, int32_t value)
{
    fieldHeader(field, I32);
    varint(zigzag(value));
}

void ThriftWriter::i64(int16_t field, int64_t value)
{
    fieldHeader(field, I64);
    varint(zigzag(value));
}

void ThriftWriter::binary(int16_t field, const std::string & value)
{
    fieldHeader(field, Binary);
    listBinary(value);
}

void ThriftWriter::listBinary(const std::string & value)
{
    varint(value.size());
    out_ += value;
}

void ThriftWriter::boolean(int16_t field, bool value)
{
    fieldHeader(field, value ? True : False);
}

void ThriftWriter::beginStruct(int16_t field)
{
    fieldHeader(field, Struct);
    lastField_.push_back(0);
}

void ThriftWriter::endStruct()
{
    out_ += char(0); // stop
    lastField_.pop_back();
    if (lastField_.empty()) lastField_.push_back(0);
}

void ThriftWriter::beginList(int16_t field, Type elements, size_t size)
{
    fieldHeader(field, List);
    if (size < 15) {
        out_ += char(size << 4 | elements);
    } else {
        out_ += char(0xf0 | elements);
        varint(size);
    }
}

} // namespace evolive::results
