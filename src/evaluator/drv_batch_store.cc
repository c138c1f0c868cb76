#include "drv_batch_store.hh"

#include <nix/archive.hh>
#include <nix/callback.hh>
#include <nix/derived-path.hh>
#include <nix/globals.hh>
#include <nix/pathlocks.hh>

#include <functional>
#include <set>

namespace evolive {

using nlohmann::json;

DrvBatchStore::DrvBatchStore(const Params & params)
    : StoreConfig(params), LocalFSStoreConfig(params), LocalStoreConfig(params), Store(params), LocalFSStore(params),
      LocalStore(params)
{
}

nix::ref<nix::Store> DrvBatchStore::open()
{
    auto store = nix::openStore();
    if (nix::settings.readOnlyMode || !store.dynamic_pointer_cast<nix::LocalStore>()) return store;
    auto [uri, params] = nix::splitUriAndParams(nix::settings.storeUri.get());
    auto batching = nix::make_ref<DrvBatchStore>(params);
    batching->init();
    return batching;
}

nix::StorePath DrvBatchStore::addTextToStore(std::string_view name, std::string_view s,
                                             const nix::StorePathSet & references, nix::RepairFlag repair)
{
    // Only .drv files wait: other text (builtins.toFile) may be read back
    // from disk by the evaluator right away.
    if (repair || !nix::hasSuffix(name, nix::drvExtension))
        return LocalStore::addTextToStore(name, s, references, repair);

    auto path = makeTextPath(name, nix::hashString(nix::htSHA256, s), references);
    if (unwritten(path)) return path;
    addTempRoot(path);
    if (!LocalStore::isValidPathUncached(path))
        drvs_.emplace(path, DrvText{std::string(name), std::string(s), references});
    return path;
}

namespace {

// Whether `s` is UTF-8 that a JSON string can carry. A .drv holds its
// attributes' bytes, which need not be.
bool isUtf8(std::string_view s)
{
    for (size_t i = 0; i < s.size();) {
        auto c = (unsigned char) s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if (((unsigned char) s[i + k] >> 6) != 0x2) return false;
        i += n;
    }
    return true;
}

// A .drv's text as it travels in a JSON message: a string, or {"hex": ...}
// when it is not UTF-8.
json textMessage(const std::string & text)
{
    if (isUtf8(text)) return text;
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : text) hex += {digits[c >> 4], digits[c & 0xf]};
    return json{{"hex", hex}};
}

std::string textOf(const json & message)
{
    if (message.is_string()) return message.get<std::string>();
    auto hex = message.at("hex").get<std::string>();
    std::string text;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) text += (char) std::stoi(hex.substr(i, 2), nullptr, 16);
    return text;
}

} // namespace

json DrvBatchStore::handOff()
{
    ++handOffs_;
    json out = json::array();
    for (auto & [path, drv] : drvs_) {
        if (drv.handOff) continue;
        drv.handOff = handOffs_;
        json refs = json::array();
        for (auto & r : drv.references) refs.push_back(printStorePath(r));
        out.push_back(json::array({drv.name, textMessage(drv.text), refs}));
    }
    return out;
}

void DrvBatchStore::confirmWritten(uint64_t handOffs)
{
    for (auto i = drvs_.begin(); i != drvs_.end();)
        i = i->second.handOff && i->second.handOff <= handOffs ? drvs_.erase(i) : std::next(i);
}

void DrvBatchStore::writeHandedOff(const json & drvs)
{
    std::map<nix::StorePath, DrvText> batch;
    for (auto & d : drvs) {
        DrvText drv{d.at(0).get<std::string>(), textOf(d.at(1)), {}};
        for (auto & r : d.at(2)) drv.references.insert(parseStorePath(r.get<std::string>()));
        // The path is computed here, not trusted from the message.
        auto path = makeTextPath(drv.name, nix::hashString(nix::htSHA256, drv.text), drv.references);
        batch.emplace(path, std::move(drv));
    }
    write(std::move(batch));
}

void DrvBatchStore::flush()
{
    // Registering reads the .drv files back through getFSAccessor(), which
    // flushes: taking them out first makes that inner call a no-op.
    auto drvs = std::move(drvs_);
    drvs_.clear();
    write(std::move(drvs));
}

void DrvBatchStore::write(std::map<nix::StorePath, DrvText> drvs)
{
    // In chunks (a lock file is open per path), each after the ones it
    // references: registering a path needs its references valid.
    std::vector<const nix::StorePath *> order;
    std::set<nix::StorePath> visited;
    std::function<void(const nix::StorePath &)> visit = [&](const nix::StorePath & path) {
        if (!visited.insert(path).second) return;
        auto & drv = drvs.at(path);
        for (auto & ref : drv.references)
            if (drvs.count(ref)) visit(ref);
        order.push_back(&drvs.find(path)->first);
    };
    for (auto & [path, _] : drvs) visit(path);

    constexpr size_t chunkSize = 256;
    for (size_t start = 0; start < order.size(); start += chunkSize) {
        std::vector<const nix::StorePath *> chunk(order.begin() + start,
                                                  order.begin() + std::min(order.size(), start + chunkSize));
        nix::PathSet realPaths;
        for (auto path : chunk) realPaths.insert(Store::toRealPath(*path));
        // Locks are taken in sorted order, so writers cannot deadlock.
        nix::PathLocks locks(realPaths);

        nix::ValidPathInfos infos;
        for (auto path : chunk) {
            auto & drv = drvs.at(*path);
            addTempRoot(*path);
            // Another process may have written it since.
            if (LocalStore::isValidPathUncached(*path)) continue;
            auto realPath = Store::toRealPath(*path);
            nix::deletePath(realPath);
            nix::writeFile(realPath, drv.text);
            nix::canonicalisePathMetaData(realPath, -1);

            nix::StringSink nar;
            nix::dumpString(drv.text, nar);
            nix::ValidPathInfo info{*path, nix::hashString(nix::htSHA256, nar.s)};
            info.narSize = nar.s.size();
            info.references = drv.references;
            info.ca = nix::TextHash{.hash = nix::hashString(nix::htSHA256, drv.text)};
            infos.emplace(*path, std::move(info));
        }
        if (!infos.empty()) registerValidPaths(infos);
        locks.setDeletion(true);
    }
}

bool DrvBatchStore::isValidPathUncached(const nix::StorePath & path)
{
    return unwritten(path) || LocalStore::isValidPathUncached(path);
}

void DrvBatchStore::queryPathInfoUncached(const nix::StorePath & path,
                                          nix::Callback<std::shared_ptr<const nix::ValidPathInfo>> callback) noexcept
{
    if (unwritten(path)) {
        try {
            flush();
        } catch (...) {
            callback.rethrow();
            return;
        }
    }
    LocalStore::queryPathInfoUncached(path, std::move(callback));
}

nix::ref<nix::FSAccessor> DrvBatchStore::getFSAccessor()
{
    flush();
    return LocalStore::getFSAccessor();
}

void DrvBatchStore::buildPaths(const std::vector<nix::DerivedPath> & paths, nix::BuildMode buildMode,
                               std::shared_ptr<nix::Store> evalStore)
{
    flush();
    LocalStore::buildPaths(paths, buildMode, evalStore);
}

void DrvBatchStore::queryMissing(const std::vector<nix::DerivedPath> & targets, nix::StorePathSet & willBuild,
                                 nix::StorePathSet & willSubstitute, nix::StorePathSet & unknown,
                                 uint64_t & downloadSize, uint64_t & narSize)
{
    flush();
    LocalStore::queryMissing(targets, willBuild, willSubstitute, unknown, downloadSize, narSize);
}

} // namespace evolive
