// Pushes the closures of .drv files into a binary cache, dependencies
// before dependents, so that the cache is consistent at every moment: a
// path's narinfo is written only after its NAR and after every path it
// references is in the cache. A path already in the cache is never
// uploaded again; what was seen present is remembered (PresenceCache).
//
// Presence from one listing: at its first push, a Pusher lists the cache's
// narinfo keys once (BinaryCache::narinfoKeys, up to `listLimit`). When the
// listing is complete, a path is present if it was listed or remembered
// since, and missing otherwise, without asking the cache (no HEAD per
// path). A path another writer added after the listing is then uploaded
// again: with the same content (same NAR, compression and narinfo), so
// nothing changes for readers. And since a path is only ever in the cache
// after its references, the listing is closed under references: what it
// shows present needs nothing more, and what it misses is uploaded in
// dependency order as usual. When the listing is too long or fails (or the
// backend cannot list), each path is checked in the cache as before.
#pragma once

#include "binary_cache.hh"
#include "compression.hh"
#include "daemon_pool.hh"
#include "fifo_semaphore.hh"
#include "signing_key.hh"

#include <atomic>
#include <map>
#include <memory>
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
// Safe to use from several threads.
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
    // Known to this process: memory only, no round trip to Redis.
    bool knownHere(const std::string & path);
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
    std::vector<std::string> uploaded; // by this push, in upload order
    // Already in the cache: found there by the closure walk (their closures
    // are not looked into), or uploaded meanwhile by another push (one this
    // push waited for, or one that had just finished it).
    std::vector<std::string> present;
    uint64_t narBytes = 0;  // uncompressed, of the uploaded paths
    uint64_t fileBytes = 0; // compressed, as stored
};

// How far one push has come, for its caller to show while it runs (read
// from any thread).
struct PushProgress
{
    std::atomic<size_t> checked{0};    // closure paths checked (in the cache, else with the daemon)
    std::atomic<bool> walked{false};   // the walk is done: `missing` is known
    std::atomic<size_t> missing{0};    // paths to upload or to wait for
    std::atomic<size_t> done{0};       // of those, in the cache now
    std::atomic<uint64_t> fileBytes{0}; // uploaded by this push, compressed
};

// What a Pusher is doing now (for metrics, and for tests to wait on).
struct PusherLoad
{
    size_t pushes = 0;       // calls of push() walking or uploading
    size_t queuedPushes = 0; // calls of push() waiting for their turn
    size_t uploads = 0;      // paths being uploaded
    size_t awaited = 0;      // paths some push waits for another push to upload
};

// Safe to call from many threads at once: at most `closures` pushes run at
// once (the others wait their turn, first come first served), at most
// `uploads` paths are uploaded at once by all of them together, and a path
// two pushes need at the same time is uploaded once (see push()).
class Pusher
{
public:
    // `uploads`: paths uploaded at once, each on its own thread, shared by
    // all pushes; 0 means one per core. `closures`: pushes at once; 0 means 1.
    // `storeRoot`: for a chroot store (Nix's `local?root=DIR`), the directory
    // the daemon's store lives under; "" for /nix/store itself.
    // `checks`: paths each push's closure walk checks at once (presence in
    // the cache, then the daemon's path info), each on its own thread; 0
    // means 1. The daemon pool should hold max(`closures`, `checks`)
    // connections: each check borrows one for its query.
    Pusher(DaemonPool & daemons, BinaryCache & cache, PresenceCache & presence, std::optional<nix::SigningKey> key,
           NarCompression compression = "zstd", size_t uploads = 0, size_t closures = 4, size_t checks = 16,
           size_t listLimit = 200000, std::string storeRoot = "");

    // Pushes the closure of `roots`, once its turn comes: the paths not in
    // the cache yet (a path in the cache has all its references there, so
    // those are not looked at), each after the paths it references.
    //
    // The closure is walked breadth-first, up to `checks` paths at once
    // (the calling thread and threads started as the walk widens), each path
    // checked once (in the cache, then its path info from the daemon, through
    // a borrowed connection); uploads go on at the same time: a path is
    // uploaded as soon as every path it references is known to be in the
    // cache (found there, or uploaded since), so that leaves go up while the
    // walk is still looking at the rest. Throws std::runtime_error for a
    // path that is not in the store (or not a store path). A path that
    // another push is uploading is not uploaded again: this push waits for
    // that upload, counts the path as present, and then goes on with the
    // paths that reference it; if that upload fails, this push fails with
    // the same error (a later push tries the path again). Throws on the
    // first failure, after this push's uploads under way have finished;
    // what was uploaded stays valid (its references are all there).
    // `progress`, when given, is kept up to date while the push runs.
    PushSummary push(const std::vector<std::string> & roots, PushProgress * progress = nullptr);

    PusherLoad load();

private:
    struct Schedule;
    struct InFlight;
    struct Walk;

    // Walks the closure of `roots`, handing what it finds to `s` as it goes.
    void walk(const std::vector<std::string> & roots, Schedule & s);
    // A checking thread of one closure walk.
    void check(Walk & w);
    // Starts checking threads while paths wait and the cap allows. Under w.mutex.
    void widen(Walk & w);

    // Lists the cache's narinfos, once per Pusher (see the top of this file).
    void listOnce();

    // Uploads one path; returns its NAR and file sizes.
    std::pair<uint64_t, uint64_t> upload(const nix::PathInfo & info);
    bool inCache(const std::string & path);
    // The uploading threads of one push.
    void work(Schedule & s);
    // What the walk found, for `s`: a path in the cache, or one to upload
    // once its references are. Take mutex_.
    void foundPresent(Schedule & s, const std::string & path);
    void foundMissing(Schedule & s, const nix::PathInfo & info);
    // Under mutex_: `path` is in the cache now: what waited for it may go.
    void inCacheNow(Schedule & s, const std::string & path);
    // Under mutex_: path `i` of `s` is uploaded (by this push or another).
    void arrived(Schedule & s, size_t i);
    // Under mutex_: path `i` may be uploaded; starts an uploading thread
    // when no idle one would take it (up to `uploads`).
    void becameReady(Schedule & s, size_t i);

    DaemonPool & daemons_;
    BinaryCache & cache_;
    PresenceCache & presence_;
    std::optional<nix::SigningKey> key_;
    NarCompression compression_;
    size_t uploads_;
    size_t checks_;
    size_t listLimit_;
    std::string storeRoot_; // "" or a chroot store's root: /nix/store/X is read at ROOT/nix/store/X
    // Set once by listOnce(), read-only afterwards.
    std::once_flag listOnce_;
    bool listed_ = false;               // the listing is complete: unlisted means missing
    std::set<std::string> listedHashes_; // the hash parts of the listed narinfos
    FifoSemaphore closureTurns_;
    FifoSemaphore uploadSlots_;

    // Guards inFlight_ and the schedules of all running pushes, so that an
    // upload's end reaches every push waiting for it.
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<InFlight>> inFlight_; // by store path
    size_t pushes_ = 0, awaited_ = 0;
};

} // namespace evolive::cache
