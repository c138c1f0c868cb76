// A local store that lets the coordinator write the .drv files that workers
// create, in batches.
//
// Nix writes every new .drv with its own lock, file and SQLite transaction,
// and registering one parses and hashes it again inside the transaction.
// With two workers those transactions contend for the database's single
// writer lock and serialise: two nix-instantiate processes on a cold store
// take 0.92 of the time of one. Here a worker only computes a .drv's path
// and text; it hands the batch's new .drv files to the coordinator with its
// results, and the coordinator, otherwise idle, writes them (one lock set,
// one transaction) while the workers go on evaluating. The database then
// has one writer, and evaluation never waits for it.
//
// Whatever needs a .drv on disk inside a worker (reading it, building it,
// querying its info, --check-cache-status) writes the worker's not yet
// confirmed .drv files itself first, so the evaluator sees no difference.
#pragma once

#include <nix/local-store.hh>

#include <nlohmann/json.hpp>

#include <map>

namespace evolive {

class DrvBatchStore : public nix::LocalStore
{
public:
    explicit DrvBatchStore(const Params & params);

    // Opens the configured store; batches when it is a local store this
    // process may write, and otherwise returns the ordinary store.
    static nix::ref<nix::Store> open();

    // Worker: the .drv files created since the last hand-off, as
    // [[name, text, [references]], ...], for the coordinator to write. They
    // count as valid here from now on; their texts are kept until
    // confirmWritten() so that the worker can still write them itself.
    nlohmann::json handOff();
    // Worker: hand-offs up to and including number `handOffs` are on disk.
    void confirmWritten(uint64_t handOffs);
    uint64_t handOffCount() const { return handOffs_; }

    // Coordinator: writes .drv files handed off by a worker.
    void writeHandedOff(const nlohmann::json & drvs);

    // Writes every .drv this process created that may not be on disk yet.
    void flush();

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

} // namespace evolive
