#include "pusher.hh"

#include "compression.hh"
#include "hash.hh"
#include "nar_writer.hh"
#include "narinfo.hh"

#include <functional>
#include <map>
#include <stdexcept>

namespace evolive::cache {

Pusher::Pusher(nix::DaemonConnection & daemon, BinaryCache & cache, PresenceCache & presence,
               std::optional<nix::SigningKey> key, std::string compression)
    : daemon_(daemon), cache_(cache), presence_(presence), key_(std::move(key)), compression_(std::move(compression))
{
    checkCompression(compression_);
}

std::vector<nix::PathInfo> Pusher::closure(const std::vector<std::string> & roots)
{
    std::map<std::string, nix::PathInfo> infos;
    std::vector<std::string> todo;
    for (auto & r : roots) {
        if (r.rfind("/nix/store/", 0) != 0 || r.find('/', 11) != std::string::npos || r.size() < 11 + 33)
            throw std::runtime_error("'" + r + "' is not a store path");
        todo.push_back(r);
    }
    while (!todo.empty()) {
        auto path = todo.back();
        todo.pop_back();
        if (infos.count(path)) continue;
        auto info = daemon_.queryPathInfo(path);
        if (!info) throw std::runtime_error("'" + path + "' is not in the store");
        for (auto & ref : info->references)
            if (!infos.count(ref)) todo.push_back(ref);
        infos.emplace(path, std::move(*info));
    }

    // Depth-first, references first (self-references are skipped).
    std::vector<nix::PathInfo> order;
    std::set<std::string> done;
    std::function<void(const std::string &)> visit = [&](const std::string & path) {
        if (!done.insert(path).second) return;
        auto & info = infos.at(path);
        for (auto & ref : info.references)
            if (ref != path) visit(ref);
        order.push_back(info);
    };
    for (auto & [path, _] : infos) visit(path);
    return order;
}

void Pusher::upload(const nix::PathInfo & info, PushSummary & summary)
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
    summary.uploaded.push_back(info.path);
    summary.narBytes += nar.size();
    summary.fileBytes += file.size();
}

PushSummary Pusher::push(const std::vector<std::string> & roots)
{
    PushSummary summary;
    for (auto & info : closure(roots)) {
        if (presence_.known(info.path) || cache_.exists(nix::hashPart(info.path) + ".narinfo")) {
            presence_.remember(info.path);
            summary.present.push_back(info.path);
            continue;
        }
        upload(info, summary);
    }
    return summary;
}

} // namespace evolive::cache
