#include "job_info.hh"

#include <nix/derivations.hh>
#include <nix/derived-path.hh>
#include <nix/get-drvs.hh>
#include <nix/local-fs-store.hh>
#include <nix/logging.hh>
#include <nix/util.hh>
#include <nix/value-to-json.hh>

#include <sstream>

namespace evolive {

using nlohmann::json;

namespace {

json valueToJson(nix::EvalState & state, nix::Value & v)
{
    nix::PathSet context;
    std::ostringstream out;
    nix::printValueAsJSON(state, true, v, nix::noPos, out, context);
    return json::parse(out.str());
}

// Only meta values Nix itself considers valid (no functions, no
// derivations) are reported, as nix-eval-jobs and nix-env do. An empty meta
// stays null, as in nix-eval-jobs' output.
json describeMeta(nix::EvalState & state, nix::DrvInfo & drv)
{
    json meta;
    for (auto & name : drv.queryMetaNames()) {
        nix::Value * value = drv.queryMeta(name);
        if (!value) continue;
        meta[name] = valueToJson(state, *value);
    }
    return meta;
}

// Aggregate jobs (`_hydraAggregate = true`) list their constituents as
// derivations (reported by .drv path) or as job names (resolved by the
// coordinator once every job is known).
void describeConstituents(nix::EvalState & state, nix::Value & v, json & job)
{
    auto & attrs = *v.attrs;
    auto aggregate = attrs.get(state.symbols.create("_hydraAggregate"));
    if (!aggregate || !state.forceBool(*aggregate->value, *aggregate->pos)) return;

    json drvs = json::array();
    json named = json::array();
    if (auto list = attrs.get(state.symbols.create("constituents"))) {
        state.forceList(*list->value, *list->pos);
        for (auto element : list->value->listItems()) {
            state.forceValue(*element, *list->pos);
            if (element->type() == nix::nString) {
                named.push_back(std::string(state.forceStringNoCtx(*element, *list->pos)));
            } else if (element->type() == nix::nAttrs && state.isDerivation(*element)) {
                nix::DrvInfo constituent(state, "", element->attrs);
                drvs.push_back(state.store->printStorePath(constituent.requireDrvPath()));
            } else {
                throw nix::TypeError("a constituent of an aggregate must be a derivation or an attribute name, "
                                     "not %s", nix::showType(*element));
            }
        }
    }
    bool glob = false;
    if (auto g = attrs.get(state.symbols.create("_hydraGlobConstituents")))
        glob = state.forceBool(*g->value, *g->pos);

    job["constituents"] = drvs;
    job["namedConstituents"] = named;
    if (glob) job["globConstituents"] = true;
}

} // namespace

std::string renderError(const nix::Error & e)
{
    std::ostringstream out;
    nix::showErrorInfo(out, e.info(), nix::loggerSettings.showTrace.get());
    return nix::filterANSIEscapes(out.str(), true);
}

json errorJob(const AttrPath & path, const std::string & message)
{
    return json{{"attr", showAttrPath(path)}, {"attrPath", path}, {"error", message}};
}

json describeDerivation(nix::EvalState & state, const EvalJobsArgs & args, const AttrPath & path, nix::Value & v,
                        nix::Value * apply)
{
    std::string attr = showAttrPath(path);
    nix::DrvInfo drv(state, attr, v.attrs);

    json job;
    job["attr"] = attr;
    job["attrPath"] = path;
    job["name"] = drv.queryName();
    job["system"] = drv.querySystem();
    job["drvPath"] = state.store->printStorePath(drv.requireDrvPath());

    json outputs = json::object();
    for (auto & [name, outPath] : drv.queryOutputs(true))
        outputs[name] = outPath ? json(state.store->printStorePath(*outPath)) : json(nullptr);
    job["outputs"] = outputs;

    if (args.meta) job["meta"] = describeMeta(state, drv);
    if (args.constituents) describeConstituents(state, v, job);

    if (apply) {
        nix::Value result;
        state.callFunction(*apply, v, result, nix::noPos);
        job["extraValue"] = valueToJson(state, result);
    }
    return job;
}

void addStoreFields(nix::Store & store, const EvalJobsArgs & args, json & job)
{
    if (!job.contains("drvPath")) return;
    auto drvPath = store.parseStorePath(job["drvPath"].get<std::string>());

    if (!args.gcRootsDir.empty()) {
        auto root = args.gcRootsDir + "/" + std::string(drvPath.to_string());
        if (!nix::pathExists(root)) {
            auto & localStore = dynamic_cast<nix::LocalFSStore &>(store);
            localStore.addPermRoot(drvPath, root);
        }
    }

    if (args.showInputDrvs) {
        json inputs = json::object();
        for (auto & [input, outputs] : store.readDerivation(drvPath).inputDrvs)
            inputs[store.printStorePath(input)] = outputs;
        job["inputDrvs"] = inputs;
    }

    if (args.checkCacheStatus) {
        std::set<std::string> outputNames;
        for (auto & [name, _] : job["outputs"].items()) outputNames.insert(name);
        nix::StorePathSet willBuild, willSubstitute, unknown;
        uint64_t downloadSize, narSize;
        store.queryMissing({nix::DerivedPath::Built{drvPath, outputNames}}, willBuild, willSubstitute, unknown,
                           downloadSize, narSize);
        json builds = json::array(), substitutes = json::array();
        for (auto & p : willBuild) builds.push_back(store.printStorePath(p));
        for (auto & p : willSubstitute) substitutes.push_back(store.printStorePath(p));
        job["cacheStatus"] = !willBuild.empty() ? "notBuilt" : !willSubstitute.empty() ? "cached" : "local";
        job["neededBuilds"] = builds;
        job["neededSubstitutes"] = substitutes;
    }
}

} // namespace evolive
