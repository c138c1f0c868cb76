// Pushes the closures of .drv files into a binary cache, dependencies
// before dependents, so that the cache is consistent at every moment: a
// path's narinfo is written only after its NAR and after every path it
// references is in the cache. A path already in the cache is never
// uploaded again; what was seen present is remembered (PresenceCache).
#pragma once

#include "binary_cache.hh"
#include "daemon_client.hh"
#include "signing_key.hh"

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace evolive::cache {

// Paths known to be in the cache (their narinfo written or seen): in
// memory, and in Redis when configured, so that several evolive processes
// share what they know. A path is remembered only after its narinfo is
// written. Redis failing is not fatal: the cache itself is asked instead.
class PresenceCache
{
public:
    PresenceCache() = default;
    // `redis`: "redis://HOST:PORT" or "unix:///path/to/socket"; `scope`
    // names the binary cache, so that caches do not share entries.
    PresenceCache(const std::string & redis, const std::string & scope);
    ~PresenceCache();
    PresenceCache(const PresenceCache &) = delete;
    PresenceCache & operator=(const PresenceCache &) = delete;

    bool known(const std::string & path);
    void remember(const std::string & path);

private:
    void redisFailed(const std::string & what);
    std::mutex mutex_; // uploads run on several threads
    std::set<std::string> present_;
    void * redis_ = nullptr; // redisContext
    std::string key_;
};

struct PushSummary
{
    std::vector<std::string> uploaded;     // in upload order
    std::vector<std::string> present;      // already in the cache
    uint64_t narBytes = 0;                 // uncompressed, of the uploaded paths
    uint64_t fileBytes = 0;                // compressed, as stored
};

class Pusher
{
public:
    // `uploads`: paths uploaded at once (each on its own thread); 0 means
    // one per core.
    Pusher(nix::DaemonConnection & daemon, BinaryCache & cache, PresenceCache & presence,
           std::optional<nix::SigningKey> key, std::string compression = "zstd", size_t uploads = 0);

    // What a push must upload: the closure of `roots` without the paths
    // already in the cache (nor their references: a path is only ever in the
    // cache after all of its references), every path after the paths it
    // references. The paths found present go to `present`. Throws
    // std::runtime_error for a path that is not in the store (or not a
    // store path).
    std::vector<nix::PathInfo> missing(const std::vector<std::string> & roots, std::vector<std::string> & present);

    // Pushes the closure of `roots`. Throws on the first failure, after the
    // uploads under way have finished; what was uploaded stays valid (its
    // references are all there).
    PushSummary push(const std::vector<std::string> & roots);

private:
    // Uploads one path; returns its NAR and file sizes.
    std::pair<uint64_t, uint64_t> upload(const nix::PathInfo & info);
    bool inCache(const std::string & path);

    nix::DaemonConnection & daemon_;
    BinaryCache & cache_;
    PresenceCache & presence_;
    std::optional<nix::SigningKey> key_;
    std::string compression_;
    size_t uploads_;
};

} // namespace evolive::cache
