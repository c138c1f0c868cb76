// NAR compression for binary caches: zstd (default), xz, or none.
#pragma once

#include <string>
#include <string_view>

namespace evolive::cache {

// Throws std::invalid_argument for an unknown method.
void checkCompression(const std::string & method);
// The file extension Nix's layout uses: .zst, .xz, or "".
std::string compressionExtension(const std::string & method);
std::string compress(const std::string & method, std::string_view data);

} // namespace evolive::cache
