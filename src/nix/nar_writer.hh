// Serialises a file-system tree as a NAR (Nix ARchive), streaming, in the
// exact bytes `nix-store --dump` produces: regular files (with the
// executable flag), directories with entries in byte order, symlinks.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace evolive::nix {

using Sink = std::function<void(std::string_view)>;

// Writes the NAR of `path` to `sink`. Throws std::runtime_error for file
// types a NAR cannot hold (sockets, devices) and for I/O errors.
void writeNar(const std::string & path, const Sink & sink);

} // namespace evolive::nix
