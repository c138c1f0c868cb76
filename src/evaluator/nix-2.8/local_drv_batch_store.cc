// drv_batch_store.hh on Nix 2.8: derivations reach the store through
// addTextToStore(), and the store is built from its Params.
#include "drv_batch_store.hh"

#include <nix/archive.hh>
#include <nix/callback.hh>
#include <nix/derived-path.hh>
#include <nix/globals.hh>
#include <nix/local-store.hh>
#include <nix/pathlocks.hh>

namespace evolive {

using nlohmann::json;

namespace {

class LocalDrvBatchStore : public nix::LocalStore, public DrvBatchStore
{
public:
    explicit LocalDrvBatchStore(const Params & params)
        : StoreConfig(params), LocalFSStoreConfig(params), LocalStoreConfig(params), Store(params),
          LocalFSStore(params), LocalStore(params)
    {
    }

    json handOff() override;
    void confirmWritten(uint64_t handOffs) override;
    uint64_t handOffCount() const override { return handOffs_; }
    void writeHandedOff(const json & drvs) override;
    void flush() override;

    nix::StorePath addTextToStore(std::string_view name, std::string_view s, const nix::StorePathSet & references,
                                  nix::RepairFlag repair) override;
    bool isValidPathUncached(const nix::StorePath & path) override;
    void queryPathInfoUncached(const nix::StorePath & path,
                               nix::Callback<std::shared_ptr<const nix::ValidPathInfo>> callback) noexcept override;
    nix::ref<nix::FSAccessor> getFSAccessor() override;
    void buildPaths(const std::vector<nix::DerivedPath> & paths, nix::BuildMode buildMode,
                    std::shared_ptr<nix::Store> evalStore) override;
    void queryMissing(const std::vector<nix::DerivedPath> & targets, nix::StorePathSet & willBuild,
                      nix::StorePathSet & willSubstitute, nix::StorePathSet & unknown, uint64_t & downloadSize,
                      uint64_t & narSize) override;

private:
    struct DrvText
    {
        std::string name;
        std::string text;
        nix::StorePathSet references;
        uint64_t handOff = 0; // 0 while not handed off
    };
    bool unwritten(const nix::StorePath & path) const { return drvs_.count(path) > 0; }
    void write(std::map<nix::StorePath, DrvText> drvs);

    std::map<nix::StorePath, DrvText> drvs_; // created here, not known to be on disk
    uint64_t handOffs_ = 0;
};

nix::StorePath LocalDrvBatchStore::addTextToStore(std::string_view name, std::string_view s,
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

json LocalDrvBatchStore::handOff()
{
    ++handOffs_;
    json out = json::array();
    for (auto & [path, drv] : drvs_) {
        if (drv.handOff) continue;
        drv.handOff = handOffs_;
        json refs = json::array();
        for (auto & r : drv.references) refs.push_back(printStorePath(r));
        out.push_back(json::array({drv.name, drvTextMessage(drv.text), refs}));
    }
    return out;
}

void LocalDrvBatchStore::confirmWritten(uint64_t handOffs)
{
    for (auto i = drvs_.begin(); i != drvs_.end();)
        i = i->second.handOff && i->second.handOff <= handOffs ? drvs_.erase(i) : std::next(i);
}

void LocalDrvBatchStore::writeHandedOff(const json & drvs)
{
    std::map<nix::StorePath, DrvText> batch;
    for (auto & d : drvs) {
        DrvText drv{d.at(0).get<std::string>(), drvTextOf(d.at(1)), {}};
        for (auto & r : d.at(2)) drv.references.insert(parseStorePath(r.get<std::string>()));
        // The path is computed here, not trusted from the message.
        auto path = makeTextPath(drv.name, nix::hashString(nix::htSHA256, drv.text), drv.references);
        batch.emplace(path, std::move(drv));
    }
    write(std::move(batch));
}

void LocalDrvBatchStore::flush()
{
    // Registering reads the .drv files back through getFSAccessor(), which
    // flushes: taking them out first makes that inner call a no-op.
    auto drvs = std::move(drvs_);
    drvs_.clear();
    write(std::move(drvs));
}

void LocalDrvBatchStore::write(std::map<nix::StorePath, DrvText> drvs)
{
    std::map<std::string, std::vector<std::string>> references;
    for (auto & [path, drv] : drvs) {
        auto & refs = references[printStorePath(path)];
        for (auto & r : drv.references) refs.push_back(printStorePath(r));
    }
    auto order = referencesFirst(references);

    // In chunks (a lock file is open per path).
    constexpr size_t chunkSize = 256;
    for (size_t start = 0; start < order.size(); start += chunkSize) {
        std::vector<nix::StorePath> chunk;
        for (size_t i = start; i < std::min(order.size(), start + chunkSize); ++i)
            chunk.push_back(parseStorePath(order[i]));
        nix::PathSet realPaths;
        for (auto & path : chunk) realPaths.insert(Store::toRealPath(path));
        // Locks are taken in sorted order, so writers cannot deadlock.
        nix::PathLocks locks(realPaths);

        nix::ValidPathInfos infos;
        for (auto & path : chunk) {
            auto & drv = drvs.at(path);
            addTempRoot(path);
            // Another process may have written it since.
            if (LocalStore::isValidPathUncached(path)) continue;
            auto realPath = Store::toRealPath(path);
            nix::deletePath(realPath);
            nix::writeFile(realPath, drv.text);
            nix::canonicalisePathMetaData(realPath, -1);

            nix::StringSink nar;
            nix::dumpString(drv.text, nar);
            nix::ValidPathInfo info{path, nix::hashString(nix::htSHA256, nar.s)};
            info.narSize = nar.s.size();
            info.references = drv.references;
            info.ca = nix::TextHash{.hash = nix::hashString(nix::htSHA256, drv.text)};
            infos.emplace(path, std::move(info));
        }
        if (!infos.empty()) registerValidPaths(infos);
        locks.setDeletion(true);
    }
}

bool LocalDrvBatchStore::isValidPathUncached(const nix::StorePath & path)
{
    return unwritten(path) || LocalStore::isValidPathUncached(path);
}

void LocalDrvBatchStore::queryPathInfoUncached(const nix::StorePath & path,
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

nix::ref<nix::FSAccessor> LocalDrvBatchStore::getFSAccessor()
{
    flush();
    return LocalStore::getFSAccessor();
}

void LocalDrvBatchStore::buildPaths(const std::vector<nix::DerivedPath> & paths, nix::BuildMode buildMode,
                                    std::shared_ptr<nix::Store> evalStore)
{
    flush();
    LocalStore::buildPaths(paths, buildMode, evalStore);
}

void LocalDrvBatchStore::queryMissing(const std::vector<nix::DerivedPath> & targets, nix::StorePathSet & willBuild,
                                      nix::StorePathSet & willSubstitute, nix::StorePathSet & unknown,
                                      uint64_t & downloadSize, uint64_t & narSize)
{
    flush();
    LocalStore::queryMissing(targets, willBuild, willSubstitute, unknown, downloadSize, narSize);
}

} // namespace

nix::ref<nix::Store> DrvBatchStore::open()
{
    auto store = nix::openStore();
    if (nix::settings.readOnlyMode || !store.dynamic_pointer_cast<nix::LocalStore>()) return store;
    auto [uri, params] = nix::splitUriAndParams(nix::settings.storeUri.get());
    auto batching = nix::make_ref<LocalDrvBatchStore>(params);
    batching->init();
    return batching;
}

} // namespace evolive
