// Everything one push needs, opened from its settings: the binary cache,
// a connection to the Nix daemon, the presence cache and the pusher. Shared
// by `evolive push` and `evolive eval --push`.
#pragma once

#include "binary_cache.hh"
#include "daemon_client.hh"
#include "pusher.hh"

#include <memory>
#include <string>

namespace evolive::cache {

struct PushSettings
{
    std::string cache;        // a directory, file://DIR or s3://BUCKET?...
    std::string keyFile;      // "" for unsigned
    std::string compression = "zstd";
    std::string daemonSocket; // "" for DaemonConnection::defaultSocketPath()
    std::string redis;        // "" for presence in memory only
    size_t uploads = 0;       // 0: one per core
};

class PushSession
{
public:
    // Throws for a bad key, an unusable cache or an unreachable daemon.
    explicit PushSession(const PushSettings & settings);

    BinaryCache & cache() { return *cache_; }
    Pusher & pusher() { return *pusher_; }

private:
    std::unique_ptr<BinaryCache> cache_;
    std::unique_ptr<nix::DaemonConnection> daemon_;
    std::unique_ptr<PresenceCache> presence_;
    std::unique_ptr<Pusher> pusher_;
};

} // namespace evolive::cache
