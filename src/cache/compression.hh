// NAR compression for binary caches: zstd (default), xz, or none, at a
// level (Nix's compression-level; -1: zstd 3, xz 6, as Nix uses) and, for
// NARs streamed through a Compressor, on several threads when `parallel`
// (Nix's parallel-compression).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace evolive::cache {

struct NarCompression
{
    std::string method = "zstd";
    int level = -1;        // zstd 1-19, xz 0-9; -1 the default
    bool parallel = false; // a streamed NAR on one thread per core

    NarCompression() = default;
    NarCompression(std::string m) : method(std::move(m)) {}
    NarCompression(const char * m) : method(m) {}
};

// Throws std::invalid_argument for an unknown method or a level out of its range.
void checkCompression(const NarCompression & compression);
// The file extension Nix's layout uses: .zst, .xz, or "".
std::string compressionExtension(const std::string & method);
std::string compress(const NarCompression & compression, std::string_view data);

// Compresses a stream with bounded memory: input goes in piece by piece
// with add(), output leaves through `sink` as it is produced, and finish()
// ends the stream. For NARs too large to hold in memory.
class Compressor
{
public:
    Compressor(const NarCompression & compression, std::function<void(std::string_view)> sink);
    ~Compressor();
    void add(std::string_view data);
    void finish();

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace evolive::cache
