#include "pusher.hh"

#include "compression.hh"
#include "hash.hh"
#include "nar_writer.hh"
#include "narinfo.hh"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <map>
#include <stdexcept>

namespace evolive::cache {

Pusher::Pusher(nix::DaemonConnection & daemon, BinaryCache & cache, PresenceCache & presence,
               std::optional<nix::SigningKey> key, std::string compression, size_t uploads)
    : daemon_(daemon), cache_(cache), presence_(presence), key_(std::move(key)), compression_(std::move(compression)),
      uploads_(uploads ? uploads : std::max(1u, std::thread::hardware_concurrency()))
{
    checkCompression(compression_);
}

bool Pusher::inCache(const std::string & path)
{
    if (presence_.known(path)) return true;
    if (!cache_.exists(nix::hashPart(path) + ".narinfo")) return false;
    presence_.remember(path);
    return true;
}

std::vector<nix::PathInfo> Pusher::missing(const std::vector<std::string> & roots, std::vector<std::string> & present)
{
    std::map<std::string, nix::PathInfo> infos;
    std::set<std::string> seen;
    std::vector<std::string> todo;
    for (auto & r : roots) {
        if (r.rfind("/nix/store/", 0) != 0 || r.find('/', 11) != std::string::npos || r.size() < 11 + 33)
            throw std::runtime_error("'" + r + "' is not a store path");
        todo.push_back(r);
    }
    while (!todo.empty()) {
        auto path = todo.back();
        todo.pop_back();
        if (!seen.insert(path).second) continue;
        if (inCache(path)) {
            present.push_back(path);
            continue;
        }
        auto info = daemon_.queryPathInfo(path);
        if (!info) throw std::runtime_error("'" + path + "' is not in the store");
        for (auto & ref : info->references)
            if (!seen.count(ref)) todo.push_back(ref);
        infos.emplace(path, std::move(*info));
    }

    // Depth-first, references first (self-references are skipped).
    std::vector<nix::PathInfo> order;
    std::set<std::string> done;
    std::function<void(const std::string &)> visit = [&](const std::string & path) {
        if (!done.insert(path).second) return;
        auto & info = infos.at(path);
        for (auto & ref : info.references)
            if (ref != path && infos.count(ref)) visit(ref);
        order.push_back(info);
    };
    for (auto & [path, _] : infos) visit(path);
    return order;
}

std::pair<uint64_t, uint64_t> Pusher::upload(const nix::PathInfo & info)
{
    std::string nar;
    nix::Sha256Sink narHasher;
    nix::writeNar(info.path, [&](std::string_view data) {
        nar.append(data);
        narHasher(data);
    });
    auto narHash = narHasher.finish();
    // What we serialised must be what the store registered, or we would
    // publish a NAR that no client can verify.
    if (nar.size() != info.narSize || nix::toBase16(narHash) != info.narHash)
        throw std::runtime_error("'" + info.path + "' does not match its registered NAR hash and size " +
                                 "(it was modified on disk); not uploaded");

    auto file = compress(compression_, nar);
    nix::Sha256Sink fileHasher;
    fileHasher(file);
    auto fileHash = nix::toNixBase32(fileHasher.finish());

    nix::NarInfo narinfo;
    narinfo.storePath = info.path;
    narinfo.url = "nar/" + fileHash + ".nar" + compressionExtension(compression_);
    narinfo.compression = compression_;
    narinfo.fileHash = "sha256:" + fileHash;
    narinfo.fileSize = file.size();
    narinfo.narHash = "sha256:" + nix::toNixBase32(narHash);
    narinfo.narSize = nar.size();
    narinfo.references = info.references;
    narinfo.deriver = info.deriver;
    narinfo.ca = info.ca;
    if (key_) narinfo.sign(*key_);

    // The NAR first: a reader never sees a narinfo whose NAR is missing.
    cache_.put(narinfo.url, file, "application/x-nix-nar");
    cache_.put(nix::hashPart(info.path) + ".narinfo", narinfo.render(), "text/x-nix-narinfo");
    presence_.remember(info.path);
    return {nar.size(), file.size()};
}

PushSummary Pusher::push(const std::vector<std::string> & roots)
{
    PushSummary summary;
    auto order = missing(roots, summary.present);

    // A path is ready once every path it references (among those to upload)
    // is uploaded; ready paths are uploaded `uploads_` at a time.
    std::map<std::string, size_t> waitingOn;
    std::map<std::string, std::vector<size_t>> dependents;
    std::vector<size_t> ready;
    std::set<std::string> toUpload;
    for (auto & info : order) toUpload.insert(info.path);
    for (size_t i = 0; i < order.size(); ++i) {
        size_t n = 0;
        for (auto & ref : order[i].references)
            if (ref != order[i].path && toUpload.count(ref)) {
                dependents[ref].push_back(i);
                ++n;
            }
        waitingOn[order[i].path] = n;
        if (n == 0) ready.push_back(i);
    }

    std::mutex mutex;
    std::condition_variable changed;
    size_t running = 0, finished = 0;
    std::exception_ptr failure;
    auto work = [&]() {
        std::unique_lock lock(mutex);
        while (true) {
            // Wait for a ready path; stop on a failure, or when nothing is
            // ready and nothing under way could make anything ready.
            changed.wait(lock, [&] { return !ready.empty() || failure || running == 0; });
            if (failure || ready.empty()) return;
            size_t i = ready.back();
            ready.pop_back();
            ++running;
            lock.unlock();
            std::exception_ptr error;
            std::pair<uint64_t, uint64_t> sizes{};
            try {
                sizes = upload(order[i]);
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            --running;
            ++finished;
            if (error) {
                if (!failure) failure = error;
            } else {
                summary.uploaded.push_back(order[i].path);
                summary.narBytes += sizes.first;
                summary.fileBytes += sizes.second;
                for (auto d : dependents[order[i].path])
                    if (--waitingOn[order[d].path] == 0) ready.push_back(d);
            }
            changed.notify_all();
        }
    };
    std::vector<std::thread> threads;
    for (size_t t = 0; t < std::min(uploads_, std::max<size_t>(order.size(), 1)); ++t) threads.emplace_back(work);
    for (auto & t : threads) t.join();
    if (failure) std::rethrow_exception(failure);
    return summary;
}

} // namespace evolive::cache
