#include "compression.hh"

#include <lzma.h>
#include <stdexcept>
#include <zstd.h>

namespace evolive::cache {

void checkCompression(const std::string & method)
{
    if (method != "zstd" && method != "xz" && method != "none")
        throw std::invalid_argument("unknown compression '" + method + "' (expected zstd, xz or none)");
}

std::string compressionExtension(const std::string & method)
{
    checkCompression(method);
    return method == "zstd" ? ".zst" : method == "xz" ? ".xz" : "";
}

std::string compress(const std::string & method, std::string_view data)
{
    checkCompression(method);
    if (method == "none") return std::string(data);
    if (method == "zstd") {
        std::string out(ZSTD_compressBound(data.size()), '\0');
        size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
        if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
        out.resize(n);
        return out;
    }
    std::string out(lzma_stream_buffer_bound(data.size()), '\0');
    size_t pos = 0;
    if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr, (const uint8_t *) data.data(), data.size(),
                                (uint8_t *) out.data(), &pos, out.size()) != LZMA_OK)
        throw std::runtime_error("xz compression failed");
    out.resize(pos);
    return out;
}

} // namespace evolive::cache
