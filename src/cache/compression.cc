#include "compression.hh"

#include <lzma.h>
#include <algorithm>
#include <stdexcept>
#include <thread>
#include <zstd.h>

namespace evolive::cache {

namespace {

int zstdLevel(const NarCompression & c)
{
    return c.level < 0 ? 3 : c.level;
}

uint32_t xzPreset(const NarCompression & c)
{
    return c.level < 0 ? 6 : (uint32_t) c.level;
}

} // namespace

void checkCompression(const NarCompression & c)
{
    auto & method = c.method;
    if (method != "zstd" && method != "xz" && method != "none")
        throw std::invalid_argument("unknown compression '" + method + "' (expected zstd, xz or none)");
    int top = method == "zstd" ? 19 : method == "xz" ? 9 : 0;
    if (c.level != -1 && (c.level < (method == "zstd" ? 1 : 0) || c.level > top))
        throw std::invalid_argument("compression-level " + std::to_string(c.level) + " is out of range for " + method +
                                    (method == "none" ? " (it has no levels)"
                                                      : " (" + std::string(method == "zstd" ? "1" : "0") + " to " +
                                                            std::to_string(top) + ", or -1 for the default)"));
}

std::string compressionExtension(const std::string & method)
{
    checkCompression(method);
    return method == "zstd" ? ".zst" : method == "xz" ? ".xz" : "";
}

std::string compress(const NarCompression & c, std::string_view data)
{
    checkCompression(c);
    auto & method = c.method;
    if (method == "none") return std::string(data);
    if (method == "zstd") {
        std::string out(ZSTD_compressBound(data.size()), '\0');
        size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), zstdLevel(c));
        if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
        out.resize(n);
        return out;
    }
    std::string out(lzma_stream_buffer_bound(data.size()), '\0');
    size_t pos = 0;
    if (lzma_easy_buffer_encode(xzPreset(c), LZMA_CHECK_CRC64, nullptr, (const uint8_t *) data.data(), data.size(),
                                (uint8_t *) out.data(), &pos, out.size()) != LZMA_OK)
        throw std::runtime_error("xz compression failed");
    out.resize(pos);
    return out;
}

// One of the two libraries' streams, or none: a pass-through.
struct Compressor::State
{
    std::string method;
    std::function<void(std::string_view)> sink;
    ZSTD_CCtx * zstd = nullptr;
    lzma_stream xz = LZMA_STREAM_INIT;
    std::string buffer = std::string(1 << 17, '\0');

    ~State()
    {
        if (zstd) ZSTD_freeCCtx(zstd);
        lzma_end(&xz);
    }

    // Feeds `data` (empty when ending) through the encoder until it has
    // taken all of it (and, when ending, written everything out).
    void run(std::string_view data, bool end)
    {
        if (method == "zstd") {
            ZSTD_inBuffer in{data.data(), data.size(), 0};
            while (true) {
                ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
                size_t left = ZSTD_compressStream2(zstd, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
                if (ZSTD_isError(left)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(left));
                if (out.pos) sink({buffer.data(), out.pos});
                if (end ? left == 0 : in.pos == in.size) return;
            }
        }
        xz.next_in = (const uint8_t *) data.data();
        xz.avail_in = data.size();
        while (true) {
            xz.next_out = (uint8_t *) buffer.data();
            xz.avail_out = buffer.size();
            lzma_ret r = lzma_code(&xz, end ? LZMA_FINISH : LZMA_RUN);
            if (r != LZMA_OK && r != LZMA_STREAM_END) throw std::runtime_error("xz compression failed");
            if (size_t n = buffer.size() - xz.avail_out) sink({buffer.data(), n});
            if (end ? r == LZMA_STREAM_END : xz.avail_in == 0) return;
        }
    }
};

Compressor::Compressor(const NarCompression & c, std::function<void(std::string_view)> sink)
    : state_(std::make_unique<State>())
{
    checkCompression(c);
    state_->method = c.method;
    state_->sink = std::move(sink);
    unsigned threads = c.parallel ? std::max(1u, std::thread::hardware_concurrency()) : 1;
    if (c.method == "zstd") {
        state_->zstd = ZSTD_createCCtx();
        if (!state_->zstd || ZSTD_isError(ZSTD_CCtx_setParameter(state_->zstd, ZSTD_c_compressionLevel, zstdLevel(c))))
            throw std::runtime_error("zstd: cannot create a compression context");
        // Without zstd's threads built in, this fails: one thread, as without parallel.
        if (threads > 1) ZSTD_CCtx_setParameter(state_->zstd, ZSTD_c_nbWorkers, (int) threads);
    } else if (c.method == "xz") {
        lzma_mt mt{};
        mt.threads = threads;
        mt.preset = xzPreset(c);
        mt.check = LZMA_CHECK_CRC64;
        if ((threads > 1 ? lzma_stream_encoder_mt(&state_->xz, &mt)
                         : lzma_easy_encoder(&state_->xz, xzPreset(c), LZMA_CHECK_CRC64)) != LZMA_OK)
            throw std::runtime_error("xz: cannot create an encoder");
    }
}

Compressor::~Compressor() = default;

void Compressor::add(std::string_view data)
{
    if (data.empty()) return;
    if (state_->method == "none") return state_->sink(data);
    state_->run(data, false);
}

void Compressor::finish()
{
    if (state_->method != "none") state_->run({}, true);
}

} // namespace evolive::cache
