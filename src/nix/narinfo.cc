#include "narinfo.hh"

#include "hash.hh"

#include <stdexcept>

namespace evolive::nix {

std::string baseName(const std::string & storePath)
{
    auto slash = storePath.rfind('/');
    return slash == std::string::npos ? storePath : storePath.substr(slash + 1);
}

std::string hashPart(const std::string & storePath)
{
    auto base = baseName(storePath);
    if (base.size() < 33 || base[32] != '-') throw std::invalid_argument("not a store path: " + storePath);
    return base.substr(0, 32);
}

std::string whyNotStorePath(const std::string & path)
{
    static const std::string store = "/nix/store/";
    if (path.rfind(store, 0) != 0) return "not in the Nix store (" + store + ")";
    auto base = path.substr(store.size());
    if (base.find('/') != std::string::npos) return "it names a file inside a store path";
    if (base.size() < 34 || base[32] != '-' || base.find_first_not_of(nixBase32Chars) < 32)
        return "no 32-character nix-base32 hash followed by '-'";
    return "";
}

std::string NarInfo::fingerprint() const
{
    std::string refs;
    for (auto & r : references) refs += (refs.empty() ? "" : ",") + r;
    return "1;" + storePath + ";" + narHash + ";" + std::to_string(narSize) + ";" + refs;
}

std::string NarInfo::render() const
{
    std::string out = "StorePath: " + storePath + "\n";
    out += "URL: " + url + "\n";
    out += "Compression: " + compression + "\n";
    out += "FileHash: " + fileHash + "\n";
    out += "FileSize: " + std::to_string(fileSize) + "\n";
    out += "NarHash: " + narHash + "\n";
    out += "NarSize: " + std::to_string(narSize) + "\n";
    std::string refs;
    for (auto & r : references) refs += (refs.empty() ? "" : " ") + baseName(r);
    out += "References: " + refs + "\n";
    if (!deriver.empty()) out += "Deriver: " + baseName(deriver) + "\n";
    for (auto & s : sigs) out += "Sig: " + s + "\n";
    if (!ca.empty()) out += "CA: " + ca + "\n";
    return out;
}

} // namespace evolive::nix
