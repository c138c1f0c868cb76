// Everything pushing needs, opened from its settings: the binary cache,
// connections to the Nix daemon, the presence cache and the pusher. Shared
// by `evolive push` and `evolive eval --push`; its pusher may be used by
// many threads at once.
#pragma once

#include "binary_cache.hh"
#include "daemon_pool.hh"
#include "pusher.hh"

#include <memory>
#include <string>

namespace evolive::cache {

// Uploads at once to an S3 cache unless set: they wait on the network.
constexpr size_t s3Uploads = 8;

struct PushSettings
{
    std::string cache;        // a directory, file://DIR or s3://BUCKET?...
    std::string keyFile;      // "" for unsigned
    std::string compression = "zstd";
    std::string daemonSocket; // "" for DaemonConnection::defaultSocketPath()
    std::string redis;        // "" for presence in memory only
    size_t uploads = 0;       // paths uploaded at once by all pushes; 0: one per core (S3: s3Uploads)
    size_t closures = 4;      // pushes at once (the others wait their turn)
    size_t checks = 16;       // paths each push's closure walk checks at once
    std::string storeRoot;    // "" or the root of the daemon's chroot store (local?root=DIR)
};

// With `settings.storeRoot` set: makes it absolute, and has the evaluators
// this process starts write into that chroot store (NIX_REMOTE=
// local?root=DIR, which they inherit), where the pusher reads their .drv files.
void evaluateIntoStoreRoot(PushSettings & settings);

class PushSession
{
public:
    // Throws for a bad key, an unusable cache or an unreachable daemon.
    explicit PushSession(const PushSettings & settings);

    BinaryCache & cache() { return *cache_; }
    Pusher & pusher() { return *pusher_; }

private:
    std::unique_ptr<BinaryCache> cache_;
    std::unique_ptr<DaemonPool> daemons_;
    std::unique_ptr<PresenceCache> presence_;
    std::unique_ptr<Pusher> pusher_;
};

} // namespace evolive::cache
