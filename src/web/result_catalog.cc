#include "result_catalog.hh"

#include "parquet_reader.hh"
#include "result_rows.hh"

#include <nlohmann/json.hpp>
#include <tuple>

namespace evolive::web {

using json = nlohmann::json;

std::string jobsetKey(const std::map<std::string, std::string> & metadata)
{
    auto field = [&](const char * key) { return metadataValue(metadata, key); };
    json identity = json::object();
    auto inputs = field("inputs");
    if (inputs.is_object())
        for (auto & [name, input] : inputs.items()) {
            json kept = json::object();
            if (!input.is_object()) continue;
            auto type = input.value("type", "");
            kept["type"] = type;
            std::vector<const char *> keys;
            if (type == "git") keys = {"url", "ref"};
            else if (type == "path") keys = {"path"};
            for (auto * key : keys)
                if (input.contains(key)) kept[key] = input[key];
            identity["inputs"][name] = kept;
        }
    identity["expression"] = field("expression");
    return identity.dump();
}

std::optional<ResultCatalog::Summary> ResultCatalog::summary(const std::string & fingerprint)
{
    {
        std::lock_guard lock(mutex_);
        if (auto it = summaries_.find(fingerprint); it != summaries_.end()) return it->second;
    }
    auto path = store_->find(fingerprint);
    if (!path) return std::nullopt;
    auto contents = results::readParquet(*path, nullptr);
    auto value = [&](const char * key) {
        auto it = contents.metadata.find(key);
        return it == contents.metadata.end() ? std::string() : it->second;
    };
    Summary s{jobsetKey(contents.metadata), value("started"), value("finished")};
    std::lock_guard lock(mutex_);
    if (summaries_.size() > 100000) summaries_.clear(); // a bound, far beyond what a store lists
    summaries_[fingerprint] = s;
    return s;
}

std::optional<std::string> ResultCatalog::previous(const std::string & fingerprint, size_t scan)
{
    auto self = summary(fingerprint);
    if (!self) return std::nullopt;
    auto stored = store_->recent(scan);
    int64_t selfModified = INT64_MAX;
    for (auto & r : stored)
        if (r.fingerprint == fingerprint) selfModified = r.modified;
    // Newest first: the first older one of the same jobset is the previous.
    for (auto & r : stored) {
        if (r.fingerprint == fingerprint || r.modified > selfModified) continue;
        auto other = summary(r.fingerprint);
        // ISO 8601 UTC times compare as text. Two evaluations that started
        // and ended within the same seconds are not ordered.
        if (other && other->key == self->key &&
            std::tie(other->started, other->finished) < std::tie(self->started, self->finished))
            return r.fingerprint;
    }
    return std::nullopt;
}

} // namespace evolive::web
