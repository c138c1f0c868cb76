#include "chunking.hh"

#include <fnmatch.h>
#include <map>
#include <set>
#include <stdexcept>

namespace evolive::fleet {

using nlohmann::json;

ListedPath parseListedPath(const json & line)
{
    if (!line.is_object() || !line.contains("attr") || !line["attr"].is_string() || !line.contains("attrPath") ||
        !line["attrPath"].is_array())
        throw std::runtime_error("the evaluator's --list-paths printed a line without attr and attrPath: " +
                                 line.dump().substr(0, 200));
    ListedPath p;
    p.attr = line["attr"].get<std::string>();
    p.attrPath = line["attrPath"];
    p.aggregate = line.value("aggregate", false);
    if (auto it = line.find("namedConstituents"); it != line.end() && it->is_array())
        for (auto & name : *it)
            if (name.is_string()) p.namedConstituents.push_back(name.get<std::string>());
    p.globConstituents = line.value("globConstituents", false);
    return p;
}

std::vector<std::vector<ListedPath>> cutIntoChunks(const std::vector<ListedPath> & paths, size_t chunkSize)
{
    if (chunkSize == 0) chunkSize = 1;
    std::map<std::string, size_t> byName;
    for (size_t i = 0; i < paths.size(); ++i) byName.emplace(paths[i].attr, i);

    // The aggregates' chunk: every aggregate, and whatever any of them names.
    std::set<size_t> together;
    for (size_t i = 0; i < paths.size(); ++i) {
        auto & p = paths[i];
        if (!p.aggregate) continue;
        together.insert(i);
        for (auto & name : p.namedConstituents) {
            if (p.globConstituents) {
                for (auto & [attr, j] : byName)
                    if (fnmatch(name.c_str(), attr.c_str(), 0) == 0) together.insert(j);
            } else if (auto it = byName.find(name); it != byName.end()) {
                together.insert(it->second);
            }
        }
    }

    std::vector<std::vector<ListedPath>> chunks;
    if (!together.empty()) {
        chunks.emplace_back();
        for (auto i : together) chunks.back().push_back(paths[i]); // listing order: the set is of indices
    }
    std::vector<ListedPath> current;
    for (size_t i = 0; i < paths.size(); ++i) {
        if (together.count(i)) continue;
        current.push_back(paths[i]);
        if (current.size() == chunkSize) chunks.push_back(std::move(current)), current.clear();
    }
    if (!current.empty()) chunks.push_back(std::move(current));
    return chunks;
}

} // namespace evolive::fleet
