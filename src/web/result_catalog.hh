// Finding "the previous evaluation of the same jobset" among stored
// results, for the status page's comparison. Two evaluations are of the
// same jobset when their results' metadata name the same expression (input
// and path) and the same inputs: names, types, and for git inputs the URL
// and ref, for path inputs the directory. Revisions, content hashes and the
// values of the other inputs may differ: they are what changes from one
// evaluation of a jobset to the next (docs/service.md).
#pragma once

#include "result_store.hh"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace evolive::web {

// What identifies the jobset of a result, from its key-value metadata.
std::string jobsetKey(const std::map<std::string, std::string> & metadata);

class ResultCatalog
{
public:
    explicit ResultCatalog(std::shared_ptr<results::ResultStore> store) : store_(std::move(store)) {}

    // The newest stored result of the same jobset as `fingerprint` that
    // started (or, in the same second, finished) before it and was stored
    // no later, looking at the newest
    // `scan` stored results; nullopt when there is none (or `fingerprint`
    // is not stored).
    std::optional<std::string> previous(const std::string & fingerprint, size_t scan = 1000);

private:
    struct Summary
    {
        std::string key, started, finished;
    };
    // A stored result's summary, read once (results do not change).
    std::optional<Summary> summary(const std::string & fingerprint);

    std::shared_ptr<results::ResultStore> store_;
    std::mutex mutex_;
    std::map<std::string, Summary> summaries_;
};

} // namespace evolive::web
