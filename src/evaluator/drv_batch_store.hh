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
//
// This header is the same for every Nix version; the store itself (a
// nix::LocalStore subclass, whose constructor and virtual methods differ
// between versions) is in nix-<version>/local_drv_batch_store.cc.
#pragma once

#include <nix/store-api.hh>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace evolive {

class DrvBatchStore
{
public:
    virtual ~DrvBatchStore() = default;

    // Opens the configured store; batches when it is a local store this
    // process may write, and otherwise returns the ordinary store. The
    // batching store is found again with
    // store.dynamic_pointer_cast<DrvBatchStore>().
    static nix::ref<nix::Store> open();

    // Worker: the .drv files created since the last hand-off, as
    // [[name, text, [references]], ...], for the coordinator to write. They
    // count as valid here from now on; their texts are kept until
    // confirmWritten() so that the worker can still write them itself.
    virtual nlohmann::json handOff() = 0;
    // Worker: hand-offs up to and including number `handOffs` are on disk.
    virtual void confirmWritten(uint64_t handOffs) = 0;
    virtual uint64_t handOffCount() const = 0;

    // Coordinator: writes .drv files handed off by a worker.
    virtual void writeHandedOff(const nlohmann::json & drvs) = 0;

    // Writes every .drv this process created that may not be on disk yet.
    virtual void flush() = 0;
};

// A .drv's text as it travels in a JSON message: a string, or {"hex": ...}
// when it is not UTF-8 (a .drv holds its attributes' bytes).
nlohmann::json drvTextMessage(const std::string & text);
std::string drvTextOf(const nlohmann::json & message);

// The order in which to write `paths` (given with the ones each references
// among them) so that every path comes after those it references:
// registering a path needs its references valid.
std::vector<std::string> referencesFirst(const std::map<std::string, std::vector<std::string>> & references);

} // namespace evolive
