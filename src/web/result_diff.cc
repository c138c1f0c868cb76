#include "result_diff.hh"

#include "json_parse.hh"
#include "parquet_reader.hh"

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace evolive::web {

using json = nlohmann::json;

namespace {

// What the comparison needs of one job.
struct Job
{
    std::string system, drvPath;
    std::vector<std::string> outputs;
    bool failed = false;
};

struct Loaded
{
    EvaluationSide side;
    std::unordered_map<std::string, Job> jobs; // by attr
};

Loaded load(const std::string & path)
{
    Loaded loaded;
    long attr = -1, system = -1, drvPath = -1, outputs = -1, error = -1;
    auto contents = results::readParquet(
        path,
        [&](const std::vector<std::string> & columns, const std::vector<results::Cell> & row) {
            if (attr < 0 || (size_t) attr >= row.size() || !row[attr]) return; // not a job row
            Job job;
            if (error >= 0 && row[error]) job.failed = true;
            if (system >= 0 && row[system]) job.system = *row[system];
            if (drvPath >= 0 && row[drvPath]) job.drvPath = *row[drvPath];
            if (outputs >= 0 && row[outputs] && !job.failed) {
                auto parsed = parseJson(*row[outputs], path + ": outputs of " + *row[attr]);
                if (parsed.is_object())
                    for (auto & [name, out] : parsed.items())
                        if (out.is_string()) job.outputs.push_back(out.get<std::string>());
            }
            loaded.side.jobs++;
            if (job.failed) loaded.side.errors++;
            loaded.jobs.try_emplace(*row[attr], std::move(job));
        },
        [&](const results::ParquetContents & contents) {
            auto column = [&](const char * name) {
                auto it = std::find(contents.columns.begin(), contents.columns.end(), name);
                return it == contents.columns.end() ? -1L : long(it - contents.columns.begin());
            };
            attr = column("attr"), system = column("system"), drvPath = column("drvPath");
            outputs = column("outputs"), error = column("error");
            if (attr < 0) throw std::runtime_error(path + ": not an evaluation result (no attr column)");
        });
    loaded.side.metadata = contents.metadata;
    if (auto it = contents.metadata.find("fingerprint"); it != contents.metadata.end()) loaded.side.fingerprint = it->second;
    return loaded;
}

const std::string & systemOf(const Job & job)
{
    static const std::string unknown = "unknown";
    return job.system.empty() ? unknown : job.system;
}

// nixpkgs counts rebuilds per kernel by package name: `hello.x86_64-linux`
// and `hello.aarch64-linux` are one linux rebuild.
std::string packageName(const std::string & attr, const std::string & system)
{
    if (attr.size() > system.size() + 1 && attr.compare(attr.size() - system.size(), system.size(), system) == 0 &&
        attr[attr.size() - system.size() - 1] == '.')
        return attr.substr(0, attr.size() - system.size() - 1);
    return attr;
}

bool endsWith(const std::string & s, const std::string & suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

EvaluationDiff compareResults(const std::string & oldPath, const std::string & newPath)
{
    auto old = load(oldPath);
    auto now = load(newPath);
    EvaluationDiff diff;
    diff.old = std::move(old.side);
    diff.now = std::move(now.side);

    std::unordered_set<std::string_view> oldOutputs;
    for (auto & [attr, job] : old.jobs)
        for (auto & out : job.outputs) oldOutputs.insert(out);

    std::map<std::string, std::unordered_set<std::string_view>> rebuildDrvs; // by system
    std::map<std::string, std::set<std::string>> kernelPackages;
    for (auto & [attr, job] : now.jobs) {
        auto & counts = diff.systems[systemOf(job)];
        auto before = old.jobs.find(attr);
        if (before == old.jobs.end()) {
            diff.added.push_back(attr);
            counts.added++;
        } else if (job.failed && !before->second.failed) {
            diff.newlyFailing.push_back(attr);
            diff.systems[systemOf(before->second)].newlyFailing++; // an error has no system: the old one's
        } else if (!job.failed && before->second.failed) {
            diff.fixed.push_back(attr);
            counts.fixed++;
        } else if (!job.failed && job.drvPath != before->second.drvPath) {
            diff.changed.push_back(attr);
            counts.changed++;
        }
        if (job.failed) continue;
        bool rebuild = std::any_of(job.outputs.begin(), job.outputs.end(), [&](auto & out) { return !oldOutputs.count(out); });
        if (!rebuild) continue;
        diff.rebuilds.push_back(attr);
        counts.rebuilds++;
        rebuildDrvs[systemOf(job)].insert(job.drvPath);
        for (const char * kernel : {"linux", "darwin"})
            if (endsWith(job.system, std::string("-") + kernel)) kernelPackages[kernel].insert(packageName(attr, job.system));
    }
    for (auto & [attr, job] : old.jobs)
        if (!now.jobs.count(attr)) {
            diff.removed.push_back(attr);
            diff.systems[systemOf(job)].removed++;
        }

    std::unordered_set<std::string_view> allDrvs;
    for (auto & [system, drvs] : rebuildDrvs) {
        diff.systems[system].rebuildDerivations = drvs.size();
        allDrvs.insert(drvs.begin(), drvs.end());
    }
    for (auto * list : {&diff.added, &diff.removed, &diff.changed, &diff.rebuilds, &diff.newlyFailing, &diff.fixed})
        std::sort(list->begin(), list->end());
    diff.total = {diff.added.size(),        diff.removed.size(), diff.changed.size(), diff.rebuilds.size(),
                  diff.newlyFailing.size(), diff.fixed.size(),   allDrvs.size()};
    // Systems with nothing to say are dropped; nixpkgs always labels both kernels.
    std::erase_if(diff.systems, [](auto & entry) {
        auto & c = entry.second;
        return c.added + c.removed + c.changed + c.rebuilds + c.newlyFailing + c.fixed == 0;
    });
    for (const char * kernel : {"linux", "darwin"}) diff.kernels[kernel] = kernelPackages[kernel].size();
    return diff;
}

std::string rebuildLabel(size_t n)
{
    if (n == 0) return "0";
    if (n <= 10) return "1-10";
    if (n <= 100) return "11-100";
    if (n <= 500) return "101-500";
    if (n <= 1000) return "501-1000";
    if (n <= 2500) return "1001-2500";
    if (n <= 5000) return "2501-5000";
    return "5001+";
}

std::vector<std::string> nixpkgsLabels(const std::map<std::string, size_t> & kernels)
{
    struct Range
    {
        const char * name;
        size_t from, to;
    };
    constexpr size_t open = SIZE_MAX;
    static const Range ranges[] = {{"0", 0, 0},         {"1", 1, 1},               {"1-10", 1, 10},
                                   {"11-100", 11, 100}, {"101-500", 101, 500},     {"501-1000", 501, 1000},
                                   {"501+", 501, open}, {"1001-2500", 1001, 2500}, {"2501-5000", 2501, 5000},
                                   {"5001+", 5001, open}};
    std::vector<std::string> labels;
    for (auto & [kernel, n] : kernels)
        for (auto & r : ranges)
            if (n >= r.from && n <= r.to) labels.push_back("10.rebuild-" + kernel + ": " + r.name);
    return labels;
}

namespace {

json countsJson(const DiffCounts & c)
{
    return {{"added", c.added},   {"removed", c.removed},           {"changed", c.changed},
            {"rebuilds", c.rebuilds}, {"rebuildDerivations", c.rebuildDerivations},
            {"newlyFailing", c.newlyFailing}, {"fixed", c.fixed}, {"label", rebuildLabel(c.rebuilds)}};
}

json sideJson(const EvaluationSide & side)
{
    json j{{"fingerprint", side.fingerprint}, {"jobs", side.jobs}, {"errors", side.errors}};
    for (const char * key : {"inputs", "expression"})
        if (auto it = side.metadata.find(key); it != side.metadata.end()) {
            auto parsed = json::parse(it->second, nullptr, false);
            j[key] = parsed.is_discarded() ? json(it->second) : parsed;
        }
    for (const char * key : {"started", "finished"})
        if (auto it = side.metadata.find(key); it != side.metadata.end()) j[key] = it->second;
    return j;
}

} // namespace

json diffJson(const EvaluationDiff & diff, size_t limit)
{
    json j{{"old", sideJson(diff.old)}, {"new", sideJson(diff.now)}, {"counts", countsJson(diff.total)}};
    json systems = json::object();
    for (auto & [system, counts] : diff.systems) systems[system] = countsJson(counts);
    j["systems"] = systems;
    j["kernels"] = diff.kernels;
    j["labels"] = nixpkgsLabels(diff.kernels);
    bool truncated = false;
    auto list = [&](const std::vector<std::string> & names) {
        if (limit == 0 || names.size() <= limit) return json(names);
        truncated = true;
        return json(std::vector<std::string>(names.begin(), names.begin() + limit));
    };
    j["added"] = list(diff.added);
    j["removed"] = list(diff.removed);
    j["changed"] = list(diff.changed);
    j["rebuilds"] = list(diff.rebuilds);
    j["newlyFailing"] = list(diff.newlyFailing);
    j["fixed"] = list(diff.fixed);
    if (truncated) j["truncated"] = true;
    return j;
}

} // namespace evolive::web
