// The store Hydra's machine uses (whatever NIX_REMOTE and nix.conf say), as
// Hydra's script uses it: through Nix's own commands, so that a daemon, a
// chroot store (`local?root=...`) or a remote one behave as for Hydra.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::hydra {

struct StoreError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

// `nix-store --add PATH`: the store path.
std::string addToStore(const std::string & path);

// `nix-store --add-fixed --recursive sha256 DIR` (what nix-prefetch-git
// does with a checkout): the store path, named by DIR's last component.
std::string addFixedRecursive(const std::string & dir);

// The NAR hash as Nix prints it: "sha256:<base-32>".
std::string narHash(const std::string & storePath);

bool isValidPath(const std::string & storePath);

// Those of `paths` that are not valid in the store.
std::set<std::string> invalidPaths(const std::vector<std::string> & paths);

// `nix copy --from FROM` of `paths` (with `--derivation`: the .drv files
// and their closure, not their outputs). Throws StoreError.
void copyFrom(const std::string & from, const std::vector<std::string> & paths, bool derivations,
              std::chrono::seconds timeout = std::chrono::seconds(3600));

// A GC root for `storePath` in `dir` the way Hydra's registerRoot makes
// one: an empty file named by the path's base name (Nix's collector counts
// such files in its roots directories). An existing root is kept.
void registerRoot(const std::string & dir, const std::string & storePath);

// "/nix/store/abc-name" -> "abc-name".
std::string baseName(const std::string & storePath);

} // namespace evolive::hydra
