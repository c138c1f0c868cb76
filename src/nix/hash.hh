// SHA-256 and the encodings Nix prints hashes in: base16, Nix's own
// base32 (its alphabet and bit order), and base64.
#pragma once

#include <array>
#include <sodium.h>
#include <string>
#include <string_view>

namespace evolive::nix {

using Sha256 = std::array<unsigned char, crypto_hash_sha256_BYTES>;

// Incremental SHA-256 (libsodium).
class Sha256Sink
{
public:
    Sha256Sink() { crypto_hash_sha256_init(&state_); }
    void operator()(std::string_view data)
    {
        crypto_hash_sha256_update(&state_, (const unsigned char *) data.data(), data.size());
    }
    Sha256 finish()
    {
        Sha256 out;
        crypto_hash_sha256_final(&state_, out.data());
        return out;
    }

private:
    crypto_hash_sha256_state state_;
};

std::string toBase16(const Sha256 & hash);
// SHA-256 of `data`, in base16.
std::string sha256Hex(std::string_view data);
Sha256 fromBase16(std::string_view hex);    // throws std::invalid_argument
std::string toNixBase32(const Sha256 & hash);
// The characters of Nix's base32, in order.
extern const std::string nixBase32Chars;
std::string toBase64(std::string_view bytes);
std::string fromBase64(std::string_view text); // throws std::invalid_argument

} // namespace evolive::nix
