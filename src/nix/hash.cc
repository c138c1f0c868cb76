#include "hash.hh"

#include <stdexcept>

namespace evolive::nix {

std::string toBase16(const Sha256 & hash)
{
    static const char * digits = "0123456789abcdef";
    std::string out;
    for (auto b : hash) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string sha256Hex(std::string_view data)
{
    Sha256Sink h;
    h(data);
    return toBase16(h.finish());
}

Sha256 fromBase16(std::string_view hex)
{
    Sha256 out;
    if (hex.size() != out.size() * 2) throw std::invalid_argument("not a base16 SHA-256: " + std::string(hex));
    auto nibble = [&](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        throw std::invalid_argument("not a base16 SHA-256: " + std::string(hex));
    };
    for (size_t i = 0; i < out.size(); ++i) out[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
    return out;
}

const std::string nixBase32Chars = "0123456789abcdfghijklmnpqrsvwxyz";

// As Nix's printHash32: 5-bit groups taken from the end, no padding.
std::string toNixBase32(const Sha256 & hash)
{
    const auto & chars = nixBase32Chars;
    size_t size = hash.size();
    size_t len = (size * 8 - 1) / 5 + 1;
    std::string out;
    for (int n = (int) len - 1; n >= 0; n--) {
        unsigned b = n * 5, i = b / 8, j = b % 8;
        unsigned c = (hash[i] >> j) | (i >= size - 1 ? 0 : hash[i + 1] << (8 - j));
        out.push_back(chars[c & 0x1f]);
    }
    return out;
}

std::string toBase64(std::string_view bytes)
{
    std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), (const unsigned char *) bytes.data(), bytes.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1); // the terminating NUL
    return out;
}

std::string fromBase64(std::string_view text)
{
    std::string out(text.size(), '\0');
    size_t len = 0;
    if (sodium_base642bin((unsigned char *) out.data(), out.size(), text.data(), text.size(), nullptr, &len, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        throw std::invalid_argument("not valid base64");
    out.resize(len);
    return out;
}

} // namespace evolive::nix
