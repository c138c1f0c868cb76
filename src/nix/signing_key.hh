// Ed25519 keys in Nix's `name:base64` format, as made by
// `nix-store --generate-binary-cache-key`, and narinfo signatures.
#pragma once

#include <string>

namespace evolive::nix {

class SigningKey
{
public:
    // Parses `name:base64(64-byte secret key)`. Throws std::invalid_argument.
    static SigningKey parse(const std::string & text);
    // Reads and parses a key file (whitespace around the key is ignored).
    static SigningKey fromFile(const std::string & path);

    const std::string & name() const { return name_; }
    // `name:base64(signature)` over `message`.
    std::string sign(const std::string & message) const;
    // The public key, `name:base64(32 bytes)`, as `trusted-public-keys` takes it.
    std::string publicKey() const;

private:
    std::string name_;
    std::string secret_; // 64 bytes
};

} // namespace evolive::nix
