// NAR compression for binary caches: zstd (default), xz, or none.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace evolive::cache {

// Throws std::invalid_argument for an unknown method.
void checkCompression(const std::string & method);
// The file extension Nix's layout uses: .zst, .xz, or "".
std::string compressionExtension(const std::string & method);
std::string compress(const std::string & method, std::string_view data);

// Compresses a stream with bounded memory: input goes in piece by piece
// with add(), output leaves through `sink` as it is produced, and finish()
// ends the stream. For NARs too large to hold in memory.
class Compressor
{
public:
    Compressor(const std::string & method, std::function<void(std::string_view)> sink);
    ~Compressor();
    void add(std::string_view data);
    void finish();

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace evolive::cache
