#include "job_info.hh"

#include "json_parse.hh"
#include "nix_api.hh"

#include <nix/util.hh>

#include <algorithm>

namespace evolive {

using nlohmann::json;

namespace {

[[noreturn]] void notUtf8(const std::string & field)
{
    throw nix::Error("the job's '%s' is not valid UTF-8 (Nix strings are bytes; a JSON line holds text)", field);
}

// The nesting of arrays and objects in `value` (0 for a scalar). Recursive:
// workers run on a 512 MiB stack.
size_t depthOf(const json & value)
{
    size_t deepest = 0;
    if (value.is_structured())
        for (auto & member : value) deepest = std::max(deepest, depthOf(member));
    return value.is_structured() ? deepest + 1 : 0;
}

// `field` names the value in the error when its strings are not UTF-8,
// which printValueAsJSON writes as they are and nlohmann refuses, or when
// it is nested too deeply for a job line (it sits two levels down in one).
json valueToJson(nix::EvalState & state, nix::Value & v, const std::string & field)
{
    auto value = nix_api::valueToJson(state, v);
    if (!value) notUtf8(field);
    if (depthOf(*value) > maxJobLineDepth - 2)
        throw nix::Error("the job's '%s' is nested deeper than %d levels (a job line holds at most %d)", field,
                         maxJobLineDepth - 2, maxJobLineDepth);
    return std::move(*value);
}

// The first string (or key) in `value` that is not valid UTF-8, as a field
// name ("system", "outputs.out"), or "".
std::string firstNonUtf8(const json & value, const std::string & where)
{
    auto valid = [](const std::string & s) {
        try {
            (void) json(s).dump();
            return true;
        } catch (json::type_error &) {
            return false;
        }
    };
    if (value.is_string()) return valid(value.get_ref<const std::string &>()) ? "" : where;
    if (value.is_object())
        for (auto & [key, member] : value.items()) {
            auto name = where.empty() ? key : where + "." + key;
            if (!valid(key)) return name;
            if (auto bad = firstNonUtf8(member, name); !bad.empty()) return bad;
        }
    if (value.is_array())
        for (size_t i = 0; i < value.size(); ++i)
            if (auto bad = firstNonUtf8(value[i], where + "[" + std::to_string(i) + "]"); !bad.empty()) return bad;
    return "";
}

// Only meta values Nix itself considers valid (no functions, no
// derivations) are reported, as nix-eval-jobs and nix-env do. An empty meta
// stays null, as in nix-eval-jobs' output.
json describeMeta(nix::EvalState & state, const nix_api::DerivationFields & drv)
{
    json meta;
    for (auto & [name, value] : drv.meta) meta[name] = valueToJson(state, *value, "meta." + name);
    return meta;
}

// Aggregate jobs (`_hydraAggregate = true`) list their constituents as
// derivations (reported by .drv path) or as job names (resolved by the
// coordinator once every job is known). Without `drvPaths` (--list-paths)
// the derivations are only recognised, not instantiated.
void describeConstituents(nix::EvalState & state, nix::Value & v, json & job, bool drvPaths = true)
{
    if (!nix_api::boolAttr(state, v, "_hydraAggregate", false)) return;

    json drvs = json::array();
    json named = json::array();
    for (auto element : nix_api::listAttr(state, v, "constituents")) {
        if (element->type() == nix::nString) {
            named.push_back(nix_api::stringNoContext(state, *element));
        } else if (element->type() == nix::nAttrs && state.isDerivation(*element)) {
            if (!drvPaths) continue;
            drvs.push_back(nix_api::drvPathOf(state, *element));
        } else {
            throw nix::Error("a constituent of an aggregate must be a derivation or an attribute name, not %s",
                             nix::showType(*element));
        }
    }
    bool glob = nix_api::boolAttr(state, v, "_hydraGlobConstituents", false);

    job["constituents"] = drvs;
    job["namedConstituents"] = named;
    if (glob) job["globConstituents"] = true;
}

} // namespace

json errorJob(const AttrPath & path, const std::string & message)
{
    // An error may quote a string that is not UTF-8 (`throw "caf\xe9"`): its
    // bad bytes become U+FFFD, so that the line can be written.
    auto text = json::parse(json(message).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
    return json{{"attr", showAttrPath(path)}, {"attrPath", path}, {"error", text}};
}

json environmentErrorJob(const AttrPath & path, const std::string & message)
{
    auto job = errorJob(path, message);
    job["errorCause"] = "environment";
    return job;
}

json describeDerivation(nix::EvalState & state, const EvalJobsArgs & args, const AttrPath & path, nix::Value & v,
                        nix::Value * apply)
{
    std::string attr = showAttrPath(path);
    auto drv = nix_api::describeDerivation(state, attr, v, args.meta);

    json job;
    job["attr"] = attr;
    job["attrPath"] = path;
    job["name"] = drv.name;
    job["system"] = drv.system;
    job["drvPath"] = drv.drvPath;

    json outputs = json::object();
    for (auto & [name, outPath] : drv.outputs) outputs[name] = outPath ? json(*outPath) : json(nullptr);
    job["outputs"] = outputs;

    if (args.meta) job["meta"] = describeMeta(state, drv);
    if (args.constituents) describeConstituents(state, v, job);

    if (apply) {
        nix::Value result;
        state.callFunction(*apply, v, result, nix::noPos);
        job["extraValue"] = valueToJson(state, result, "extraValue");
    }
    // The job line must be text: a field that is not fails the job, not the
    // worker (whose reply could not be written).
    try {
        (void) job.dump();
    } catch (json::type_error &) {
        notUtf8(firstNonUtf8(job, ""));
    }
    return job;
}

json describeListedPath(nix::EvalState & state, const EvalJobsArgs & args, const AttrPath & path, nix::Value & v)
{
    json entry{{"attr", showAttrPath(path)}, {"attrPath", path}};
    if (!args.constituents) return entry;
    json aggregate;
    describeConstituents(state, v, aggregate, false);
    if (!aggregate.contains("namedConstituents")) return entry;
    entry["aggregate"] = true;
    entry["namedConstituents"] = aggregate["namedConstituents"];
    if (aggregate.contains("globConstituents")) entry["globConstituents"] = true;
    return entry;
}

json listedPathLine(const json & job)
{
    json entry{{"attr", job.at("attr")}, {"attrPath", job.at("attrPath")}};
    for (auto field : {"aggregate", "namedConstituents", "globConstituents"})
        if (job.contains(field)) entry[field] = job[field];
    return entry;
}

void addStoreFields(nix::Store & store, const EvalJobsArgs & args, json & job)
{
    if (!job.contains("drvPath")) return;
    auto drvPath = job["drvPath"].get<std::string>();

    if (!args.gcRootsDir.empty()) {
        auto root = args.gcRootsDir + "/" + std::string(nix::baseNameOf(drvPath));
        if (!nix::pathExists(root)) nix_api::addPermRoot(store, drvPath, root);
    }

    if (args.showInputDrvs) job["inputDrvs"] = nix_api::inputDrvs(store, drvPath);

    if (args.checkCacheStatus) {
        std::set<std::string> outputNames;
        for (auto & [name, _] : job["outputs"].items()) outputNames.insert(name);
        std::set<std::string> willBuild, willSubstitute;
        nix_api::queryMissing(store, drvPath, outputNames, willBuild, willSubstitute);
        json builds = willBuild, substitutes = willSubstitute;
        job["cacheStatus"] = !willBuild.empty() ? "notBuilt" : !willSubstitute.empty() ? "cached" : "local";
        job["neededBuilds"] = builds;
        job["neededSubstitutes"] = substitutes;
    }
}

} // namespace evolive
