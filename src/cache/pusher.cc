#include "pusher.hh"

#include "compression.hh"
#include "fd_io.hh"
#include "hash.hh"
#include "nar_writer.hh"
#include "narinfo.hh"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>

namespace evolive::cache {

// One call of push(): the paths it uploads or waits for, each waiting for
// the paths it references, filled in by the closure walk while uploads go
// on. Guarded by Pusher::mutex_, because the end of an upload by one push
// moves the pushes that wait for it.
struct Pusher::Schedule
{
    std::deque<nix::PathInfo> order;                  // as the walk finds them (stable references)
    std::vector<size_t> waitingOn;                    // per path: references not in the cache yet
    std::map<std::string, std::vector<size_t>> waiters; // a path not in the cache yet: who waits for it
    std::set<std::string> inCache;                    // found present, or uploaded since
    std::vector<size_t> ready;                        // every reference in the cache
    bool walking = true;                              // the walk may still add paths
    size_t uploading = 0;                             // by this push, under way
    size_t awaiting = 0;                              // paths another push uploads
    size_t idle = 0;                                  // uploading threads waiting for a path
    std::vector<std::thread> threads;                 // uploading threads
    std::exception_ptr failure;
    PushSummary summary;
    PushProgress * progress = nullptr;
    std::condition_variable changed;
};

// A path that one push is uploading, and the pushes that wait for it.
struct Pusher::InFlight
{
    std::vector<std::pair<Schedule *, size_t>> waiters; // and the path's index in each
};

// One closure walk: a queue of paths to check, taken in the order they were
// found (breadth-first) by up to `checks` threads.
struct Pusher::Walk
{
    std::mutex mutex;
    std::condition_variable changed;
    std::set<std::string> seen;    // queued once, checked once
    std::deque<std::string> todo;  // found, not yet taken
    size_t checkers = 1;           // the calling thread, and the threads started
    size_t busy = 0;               // paths being checked
    std::vector<std::string> present;
    std::exception_ptr failure;
    std::vector<std::thread> threads;
    PushProgress * progress = nullptr;
    Schedule * schedule = nullptr; // where the paths found go, as they are found
};

Pusher::Pusher(DaemonPool & daemons, BinaryCache & cache, PresenceCache & presence, std::optional<nix::SigningKey> key,
               NarCompression compression, size_t uploads, size_t closures, size_t checks, size_t listLimit, std::string storeRoot)
    : daemons_(daemons), cache_(cache), presence_(presence), key_(std::move(key)), compression_(std::move(compression)),
      uploads_(uploads ? uploads : std::max(1u, std::thread::hardware_concurrency())), checks_(checks ? checks : 1),
      listLimit_(listLimit), storeRoot_(std::move(storeRoot)), closureTurns_(closures ? closures : 1),
      uploadSlots_(uploads_)
{
    checkCompression(compression_);
}

void Pusher::listOnce()
{
    std::call_once(listOnce_, [&] {
        try {
            auto keys = cache_.narinfoKeys(listLimit_);
            if (!keys) return; // too many, or no listing: a check per path
            for (auto & key : *keys) listedHashes_.insert(key.substr(0, key.size() - 8)); // less `.narinfo`
            listed_ = true;
        } catch (std::exception & e) {
            // Without the right to list, say: a check per path.
            listedHashes_.clear();
            fprintf(stderr, "evolive: cannot list %s (%s); checking each path there instead\n",
                    cache_.describe().c_str(), e.what());
        }
    });
}

bool Pusher::inCache(const std::string & path)
{
    if (listed_ && listedHashes_.count(nix::hashPart(path))) return true;
    if (presence_.known(path)) return true;
    // Neither listed nor uploaded since: missing (see pusher.hh).
    if (listed_) return false;
    if (!cache_.exists(nix::hashPart(path) + ".narinfo")) return false;
    presence_.remember(path);
    return true;
}

void Pusher::widen(Walk & w)
{
    // A thread per path waiting that no idle checker would take at once.
    while (!w.failure && w.checkers < checks_ && w.todo.size() > w.checkers - w.busy) {
        try {
            w.threads.emplace_back([this, &w] { check(w); });
        } catch (std::system_error &) {
            return; // no thread to spare: the checkers there are go on
        }
        ++w.checkers;
    }
}

void Pusher::check(Walk & w)
{
    std::unique_lock lock(w.mutex);
    while (true) {
        // Done when nothing is queued and nothing being checked could
        // queue more.
        w.changed.wait(lock, [&] { return w.failure || !w.todo.empty() || w.busy == 0; });
        if (w.failure || w.todo.empty()) return;
        auto path = std::move(w.todo.front());
        w.todo.pop_front();
        ++w.busy;
        lock.unlock();

        bool present = false;
        std::optional<nix::PathInfo> info;
        std::exception_ptr error;
        try {
            // A path in the cache has all its references there: they are
            // not looked at.
            present = inCache(path);
            if (!present) {
                info = daemons_.acquire()->queryPathInfo(path);
                if (!info) throw std::runtime_error("'" + path + "' is not in the store");
            }
        } catch (...) {
            error = std::current_exception();
        }

        if (w.progress && !error) ++w.progress->checked;
        // What is known now may let uploads start while the walk goes on.
        if (!error && present) foundPresent(*w.schedule, path);
        else if (!error) foundMissing(*w.schedule, *info);
        lock.lock();
        --w.busy;
        size_t queued = 0;
        if (error) {
            if (!w.failure) w.failure = error;
        } else if (present) {
            w.present.push_back(path);
        } else {
            for (auto & ref : info->references)
                if (w.seen.insert(ref).second) {
                    w.todo.push_back(ref);
                    ++queued;
                }
            widen(w);
        }
        if (w.failure || (w.busy == 0 && w.todo.empty()) || queued > 1)
            w.changed.notify_all();
        else if (queued == 1)
            w.changed.notify_one();
    }
}

void Pusher::walk(const std::vector<std::string> & roots, Schedule & s)
{
    listOnce();
    Walk w;
    w.progress = s.progress;
    w.schedule = &s;
    for (auto & r : roots) {
        if (auto why = nix::whyNotStorePath(r); !why.empty())
            throw std::runtime_error("'" + r + "' is not a store path: " + why);
        if (w.seen.insert(r).second) w.todo.push_back(r);
    }
    {
        std::lock_guard lock(w.mutex);
        widen(w);
    }
    check(w);
    std::vector<std::thread> threads;
    {
        // After a failure, the other checkers finish their paths and take
        // no more; once none is busy, none starts another thread.
        std::unique_lock lock(w.mutex);
        w.changed.wait(lock, [&] { return w.busy == 0; });
        threads = std::move(w.threads);
    }
    for (auto & t : threads) t.join();
    if (w.failure) std::rethrow_exception(w.failure);
    std::lock_guard lock(mutex_);
    s.summary.present.insert(s.summary.present.end(), w.present.begin(), w.present.end());
}

void Pusher::foundPresent(Schedule & s, const std::string & path)
{
    std::lock_guard lock(mutex_);
    inCacheNow(s, path);
}

void Pusher::foundMissing(Schedule & s, const nix::PathInfo & info)
{
    std::lock_guard lock(mutex_);
    size_t i = s.order.size();
    s.order.push_back(info);
    s.waitingOn.push_back(0);
    // Self-references are not waited for.
    for (auto & ref : info.references)
        if (ref != info.path && !s.inCache.count(ref)) {
            ++s.waitingOn[i];
            s.waiters[ref].push_back(i);
        }
    if (s.progress) ++s.progress->missing;
    if (s.waitingOn[i] == 0) becameReady(s, i);
}

void Pusher::becameReady(Schedule & s, size_t i)
{
    s.ready.push_back(i);
    // A thread per ready path that no idle one would take, up to `uploads`.
    if (s.idle >= s.ready.size() || s.threads.size() >= uploads_) {
        s.changed.notify_one();
        return;
    }
    try {
        s.threads.emplace_back([this, &s] { work(s); });
    } catch (std::system_error &) {
        if (s.threads.empty()) throw; // no thread at all: nothing would upload
    }
}

namespace {

// NARs up to this size are built and compressed in memory (fast for the
// many small .drv files); larger ones (big sources) stream through the
// compressor into a temporary file, so that memory does not grow with the
// size of the paths pushed.
constexpr uint64_t inMemoryNarLimit = 16u << 20;

// A temporary file in $TMPDIR (else /tmp) without a name: removed as soon
// as it is made, so that nothing is left behind even by a killed push, and
// read back through /proc/self/fd.
class SpoolFile
{
public:
    SpoolFile()
    {
        auto name = (std::filesystem::temp_directory_path() / "evolive-nar-XXXXXX").string();
        fd_ = mkostemp(name.data(), O_CLOEXEC);
        if (fd_ < 0) throw std::runtime_error("cannot create a temporary file " + name + ": " + strerror(errno));
        unlink(name.c_str());
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~SpoolFile() { ::close(fd_); }
    SpoolFile(const SpoolFile &) = delete;
    SpoolFile & operator=(const SpoolFile &) = delete;

    void write(std::string_view data) { writeAll(fd_, data, "cannot write a temporary file"); }
    // A path to read the file from, while this object lives.
    const std::string & path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace

std::pair<uint64_t, uint64_t> Pusher::upload(const nix::PathInfo & info)
{
    nix::Sha256Sink narHasher, fileHasher;
    uint64_t narSize = 0, fileSize = 0;
    std::string file;                // the compressed NAR, when in memory,
    std::optional<SpoolFile> spool; // or else in a temporary file
    if (info.narSize <= inMemoryNarLimit) {
        std::string nar;
        nix::writeNar(storeRoot_ + info.path, [&](std::string_view data) {
            nar.append(data);
            narHasher(data);
        });
        narSize = nar.size();
        file = compress(compression_, nar);
        fileHasher(file);
        fileSize = file.size();
    } else {
        spool.emplace();
        Compressor compressor(compression_, [&](std::string_view out) {
            spool->write(out);
            fileHasher(out);
            fileSize += out.size();
        });
        nix::writeNar(storeRoot_ + info.path, [&](std::string_view data) {
            narHasher(data);
            narSize += data.size();
            compressor.add(data);
        });
        compressor.finish();
    }
    auto narHash = narHasher.finish();
    // What we serialised must be what the store registered, or we would
    // publish a NAR that no client can verify.
    if (narSize != info.narSize || nix::toBase16(narHash) != info.narHash)
        throw std::runtime_error("'" + info.path + "' does not match its registered NAR hash and size " +
                                 "(it was modified on disk); not uploaded");
    auto fileHash = nix::toNixBase32(fileHasher.finish());

    nix::NarInfo narinfo;
    narinfo.storePath = info.path;
    narinfo.url = "nar/" + fileHash + ".nar" + compressionExtension(compression_.method);
    narinfo.compression = compression_.method;
    narinfo.fileHash = "sha256:" + fileHash;
    narinfo.fileSize = fileSize;
    narinfo.narHash = "sha256:" + nix::toNixBase32(narHash);
    narinfo.narSize = narSize;
    narinfo.references = info.references;
    narinfo.deriver = info.deriver;
    narinfo.ca = info.ca;
    if (key_) narinfo.sign(*key_);

    // The NAR first: a reader never sees a narinfo whose NAR is missing.
    if (spool)
        cache_.putFile(narinfo.url, spool->path(), "application/x-nix-nar");
    else
        cache_.put(narinfo.url, file, "application/x-nix-nar");
    cache_.put(nix::hashPart(info.path) + ".narinfo", narinfo.render(), "text/x-nix-narinfo");
    presence_.remember(info.path);
    return {narSize, fileSize};
}

void Pusher::inCacheNow(Schedule & s, const std::string & path)
{
    if (!s.inCache.insert(path).second) return;
    auto waiting = s.waiters.find(path);
    if (waiting == s.waiters.end()) return;
    for (auto d : waiting->second)
        if (--s.waitingOn[d] == 0) becameReady(s, d);
    s.waiters.erase(waiting);
}

void Pusher::arrived(Schedule & s, size_t i)
{
    if (s.progress) ++s.progress->done;
    inCacheNow(s, s.order[i].path);
}

void Pusher::work(Schedule & s)
{
    std::unique_lock lock(mutex_);
    while (true) {
        // Wait for a ready path; stop on a failure, or when nothing is
        // ready and nothing under way could make anything ready.
        ++s.idle;
        s.changed.wait(lock, [&] {
            return !s.ready.empty() || s.failure || (!s.walking && s.uploading == 0 && s.awaiting == 0);
        });
        --s.idle;
        if (s.failure || s.ready.empty()) {
            s.changed.notify_all(); // the others stop too
            return;
        }
        size_t i = s.ready.back();
        s.ready.pop_back();
        // A reference into the deque stays valid while the walk adds to it;
        // indexing it outside mutex_ would not be safe.
        const nix::PathInfo & info = s.order[i];
        const auto & path = info.path;
        auto [entry, first] = inFlight_.try_emplace(path);
        if (!first) {
            // Another push is uploading it: its end moves this push on.
            entry->second->waiters.emplace_back(&s, i);
            ++s.awaiting;
            ++awaited_;
            continue;
        }
        auto flight = entry->second = std::make_shared<InFlight>();
        ++s.uploading;
        lock.unlock();

        std::exception_ptr error;
        std::optional<std::pair<uint64_t, uint64_t>> sizes;
        try {
            // A push that uploaded it since this one's walk remembered it
            // before leaving inFlight_, so memory is enough to tell.
            if (!presence_.knownHere(path)) {
                FifoSemaphore::Hold slot(uploadSlots_);
                sizes = upload(info);
            }
        } catch (...) {
            error = std::current_exception();
        }

        lock.lock();
        --s.uploading;
        inFlight_.erase(path);
        if (error) {
            if (!s.failure) s.failure = error;
        } else {
            if (sizes) {
                s.summary.uploaded.push_back(path);
                s.summary.narBytes += sizes->first;
                s.summary.fileBytes += sizes->second;
                if (s.progress) s.progress->fileBytes += sizes->second;
            } else {
                s.summary.present.push_back(path);
            }
            arrived(s, i);
        }
        for (auto [w, j] : flight->waiters) {
            --w->awaiting;
            --awaited_;
            if (error) {
                if (!w->failure) w->failure = error;
            } else {
                w->summary.present.push_back(path);
                arrived(*w, j);
            }
            w->changed.notify_all();
        }
        s.changed.notify_all();
    }
}

PushSummary Pusher::push(const std::vector<std::string> & roots, PushProgress * progress)
{
    FifoSemaphore::Hold turn(closureTurns_);
    {
        std::lock_guard lock(mutex_);
        ++pushes_;
    }
    struct Leave
    {
        Pusher & p;
        ~Leave()
        {
            std::lock_guard lock(p.mutex_);
            --p.pushes_;
        }
    } leave{*this};
    Schedule s;
    s.progress = progress;
    // The walk and the uploads at once: a path goes up as soon as every
    // path it references is known to be in the cache.
    std::exception_ptr walkFailure;
    try {
        walk(roots, s);
    } catch (...) {
        walkFailure = std::current_exception();
    }
    std::vector<std::thread> threads;
    {
        std::unique_lock lock(mutex_);
        if (walkFailure && !s.failure) s.failure = walkFailure;
        s.walking = false;
        if (progress) progress->walked = true;
        s.changed.notify_all();
        // Threads start only under mutex_ and while the schedule grows; the
        // last of them sees `walking` false and the rest done.
        s.changed.wait(lock, [&] { return s.failure || (s.ready.empty() && s.uploading == 0 && s.awaiting == 0); });
        s.changed.notify_all();
        threads = std::move(s.threads);
    }
    for (auto & t : threads) t.join();
    std::lock_guard lock(mutex_);
    if (s.awaiting) {
        // Failed while waiting for other pushes' uploads: their ends must
        // not reach `s` any more.
        for (auto & [_, flight] : inFlight_)
            std::erase_if(flight->waiters, [&](auto & w) { return w.first == &s; });
        awaited_ -= s.awaiting;
    }
    if (s.failure) std::rethrow_exception(s.failure);
    if (!s.waiters.empty())
        throw std::logic_error("a push ended with paths waiting for references that were never found");
    return std::move(s.summary);
}

PusherLoad Pusher::load()
{
    PusherLoad l;
    l.queuedPushes = closureTurns_.waiting();
    l.uploads = uploadSlots_.held();
    std::lock_guard lock(mutex_);
    l.pushes = pushes_;
    l.awaited = awaited_;
    return l;
}

} // namespace evolive::cache
