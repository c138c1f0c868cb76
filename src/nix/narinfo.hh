// A binary cache's description of one store path (`<hash>.narinfo`), in
// the format Nix reads (src/libstore/nar-info.cc).
#pragma once

#include "signing_key.hh"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace evolive::nix {

struct NarInfo
{
    std::string storePath;           // /nix/store/<hash>-<name>
    std::string url;                 // nar/<filehash>.nar.zst
    std::string compression;         // zstd, xz or none
    std::string fileHash;            // sha256:<nix base32> of the compressed file
    uint64_t fileSize = 0;
    std::string narHash;             // sha256:<nix base32>
    uint64_t narSize = 0;
    std::set<std::string> references; // full store paths
    std::string deriver;             // full store path, or ""
    std::string ca;                  // content address, or ""
    std::vector<std::string> sigs;

    // The text Nix signs: 1;<path>;<narHash>;<narSize>;<refs, comma-separated>
    std::string fingerprint() const;
    void sign(const SigningKey & key) { sigs.push_back(key.sign(fingerprint())); }
    std::string render() const;
};

// /nix/store/abc...-name -> abc... (the name of the narinfo file, minus .narinfo)
std::string hashPart(const std::string & storePath);
std::string baseName(const std::string & storePath);

// Why `path` is not a store path, /nix/store/<32 nix-base32 characters>-<name>
// ("" when it is one): checked before any daemon or cache is asked.
std::string whyNotStorePath(const std::string & path);

} // namespace evolive::nix
