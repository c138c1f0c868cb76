#include "signing_key.hh"

#include "hash.hh"

#include <fstream>
#include <sodium.h>
#include <sstream>
#include <stdexcept>

namespace evolive::nix {

SigningKey SigningKey::parse(const std::string & text)
{
    auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0)
        throw std::invalid_argument("a signing key must look like NAME:BASE64");
    SigningKey key;
    key.name_ = text.substr(0, colon);
    try {
        key.secret_ = fromBase64(text.substr(colon + 1));
    } catch (std::invalid_argument &) {
        throw std::invalid_argument("signing key '" + key.name_ + "': not valid base64");
    }
    if (key.secret_.size() != crypto_sign_SECRETKEYBYTES)
        throw std::invalid_argument("signing key '" + key.name_ + "' is not an ed25519 secret key");
    return key;
}

SigningKey SigningKey::fromFile(const std::string & path)
{
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot read signing key file '" + path + "'");
    std::string text;
    in >> text;
    return parse(text);
}

std::string SigningKey::sign(const std::string & message) const
{
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, (const unsigned char *) message.data(), message.size(),
                         (const unsigned char *) secret_.data());
    return name_ + ":" + toBase64({(const char *) sig, sizeof sig});
}

std::string SigningKey::publicKey() const
{
    // The second half of an ed25519 secret key is its public key.
    return name_ + ":" + toBase64(secret_.substr(crypto_sign_SECRETKEYBYTES - crypto_sign_PUBLICKEYBYTES));
}

} // namespace evolive::nix
