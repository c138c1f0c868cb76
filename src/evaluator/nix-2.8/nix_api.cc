// nix_api.hh on Nix 2.8 (Debian 12): values carry their Bindings and
// lambdas directly, symbols convert to strings, paths are plain strings.
#include "nix_api.hh"

#include <nix/attr-path.hh>
#include <nix/derivations.hh>
#include <nix/derived-path.hh>
#include <nix/eval-inline.hh>
#include <nix/flake/flake.hh>
#include <nix/get-drvs.hh>
#include <nix/globals.hh>
#include <nix/local-fs-store.hh>
#include <nix/logging.hh>
#include <nix/shared.hh>
#include <nix/util.hh>
#include <nix/value-to-json.hh>

#include <algorithm>
#include <sstream>

namespace evolive::nix_api {

std::string nixVersion()
{
    return PACKAGE_VERSION;
}

void initLibraries()
{
    nix::initNix();
    nix::initGC();
}

void setSetting(const std::string & name, const std::string & value)
{
    nix::globalConfig.set(name, value);
}

std::shared_ptr<nix::EvalState> makeEvalState(EvalJobsArgs & args, nix::ref<nix::Store> store)
{
    return std::make_shared<nix::EvalState>(args.searchPath, store);
}

nix::Value * evalReleaseExpr(nix::EvalState & state, EvalJobsArgs & args)
{
    nix::Value * top = state.allocValue();
    if (args.fromArgs)
        state.eval(state.parseExprFromString(args.releaseExpr, nix::absPath(".")), *top);
    else
        state.evalFile(nix::lookupFileArg(state, args.releaseExpr), *top);
    return top;
}

nix::Value * evalExprString(nix::EvalState & state, const std::string & text)
{
    nix::Value * v = state.allocValue();
    state.eval(state.parseExprFromString(text, nix::absPath(".")), *v);
    return v;
}

nix::Value * evaluateFlake(nix::EvalState & state, EvalJobsArgs & args)
{
    auto [flakeRef, fragment] = nix::parseFlakeRefWithFragment(args.flake, nix::absPath("."));
    nix::flake::LockFlags flags{.updateLockFile = false, .useRegistries = false, .allowMutable = false};
    auto locked = nix::flake::lockFlake(state, flakeRef, flags);
    nix::Value * vFlake = state.allocValue();
    nix::flake::callFlake(state, locked, *vFlake);
    auto outputs = vFlake->attrs->get(state.symbols.create("outputs"));
    state.forceValue(*outputs->value, nix::noPos);
    if (fragment.empty()) fragment = "hydraJobs";
    return nix::findAlongAttrPath(state, fragment, *args.getAutoArgs(state), *outputs->value).first;
}

nix::Value * getAttr(nix::EvalState & state, nix::Value & set, std::string_view name)
{
    auto attr = set.attrs->get(state.symbols.create(name));
    return attr ? attr->value : nullptr;
}

std::vector<std::string> attrNames(nix::EvalState & state, nix::Value & set)
{
    std::vector<std::string> names;
    for (auto & attr : *set.attrs) names.emplace_back(attr.name);
    std::sort(names.begin(), names.end());
    return names;
}

bool boolAttr(nix::EvalState & state, nix::Value & set, std::string_view name, bool absent)
{
    auto attr = set.attrs->get(state.symbols.create(name));
    return attr ? state.forceBool(*attr->value, *attr->pos) : absent;
}

std::vector<nix::Value *> listAttr(nix::EvalState & state, nix::Value & set, std::string_view name)
{
    auto attr = set.attrs->get(state.symbols.create(name));
    if (!attr) return {};
    state.forceList(*attr->value, *attr->pos);
    std::vector<nix::Value *> items;
    for (auto item : attr->value->listItems()) {
        state.forceValue(*item, *attr->pos);
        items.push_back(item);
    }
    return items;
}

std::string stringNoContext(nix::EvalState & state, nix::Value & v)
{
    return std::string(state.forceStringNoCtx(v));
}

std::optional<Formals> formalsOf(nix::EvalState & state, const nix::Value & fun)
{
    if (!fun.isLambda() || !fun.lambda.fun->hasFormals()) return std::nullopt;
    Formals out;
    out.ellipsis = fun.lambda.fun->formals->ellipsis;
    for (auto & formal : fun.lambda.fun->formals->lexicographicOrder()) out.names.emplace_back(formal.name);
    return out;
}

std::set<std::string> searchPathNames(nix::EvalState & state)
{
    std::set<std::string> names;
    for (auto & [prefix, path] : state.getSearchPath()) names.insert(prefix);
    return names;
}

std::optional<nlohmann::json> valueToJson(nix::EvalState & state, nix::Value & v)
{
    // Nix 2.8 writes the text itself, strings byte for byte: nlohmann
    // refuses what is not UTF-8 when it reads it back.
    nix::PathSet context;
    std::ostringstream out;
    nix::printValueAsJSON(state, true, v, nix::noPos, out, context);
    try {
        return nlohmann::json::parse(out.str());
    } catch (nlohmann::json::parse_error &) {
        return std::nullopt;
    }
}

DerivationFields describeDerivation(nix::EvalState & state, const std::string & attr, nix::Value & v, bool withMeta)
{
    nix::DrvInfo drv(state, attr, v.attrs);
    DerivationFields out;
    out.name = drv.queryName();
    out.system = drv.querySystem();
    out.drvPath = state.store->printStorePath(drv.requireDrvPath());
    for (auto & [name, outPath] : drv.queryOutputs(true))
        out.outputs[name] = outPath ? std::optional(state.store->printStorePath(*outPath)) : std::nullopt;
    if (withMeta)
        for (auto & name : drv.queryMetaNames())
            if (nix::Value * value = drv.queryMeta(name)) out.meta.emplace_back(name, value);
    return out;
}

std::string drvPathOf(nix::EvalState & state, nix::Value & v)
{
    nix::DrvInfo drv(state, "", v.attrs);
    return state.store->printStorePath(drv.requireDrvPath());
}

nlohmann::json inputDrvs(nix::Store & store, const std::string & drvPath)
{
    nlohmann::json inputs = nlohmann::json::object();
    for (auto & [input, outputs] : store.readDerivation(store.parseStorePath(drvPath)).inputDrvs)
        inputs[store.printStorePath(input)] = outputs;
    return inputs;
}

void queryMissing(nix::Store & store, const std::string & drvPath, const std::set<std::string> & outputs,
                  std::set<std::string> & willBuild, std::set<std::string> & willSubstitute)
{
    nix::StorePathSet build, substitute, unknown;
    uint64_t downloadSize, narSize;
    store.queryMissing({nix::DerivedPath::Built{store.parseStorePath(drvPath), outputs}}, build, substitute, unknown,
                       downloadSize, narSize);
    for (auto & p : build) willBuild.insert(store.printStorePath(p));
    for (auto & p : substitute) willSubstitute.insert(store.printStorePath(p));
}

std::optional<RewrittenDrv> addConstituentInputs(nix::Store & store, const std::string & drvPathText,
                                                 const std::set<std::string> & constituents)
{
    auto drvPath = store.parseStorePath(drvPathText);
    auto drv = store.readDerivation(drvPath);
    for (auto & c : constituents) {
        auto path = store.parseStorePath(c);
        auto child = store.readDerivation(path);
        drv.inputDrvs[path] = {child.outputs.begin()->first};
    }
    std::string drvName(drvPath.name());
    drvName.resize(drvName.size() - nix::drvExtension.size());
    auto modulo = nix::hashDerivationModulo(store, drv, true);
    auto h = modulo.hashes.find("out");
    if (modulo.kind != nix::DrvHash::Kind::Regular || h == modulo.hashes.end()) return std::nullopt;
    auto outPath = store.makeOutputPath("out", h->second, drvName);
    drv.env["out"] = store.printStorePath(outPath);
    drv.outputs.insert_or_assign("out", nix::DerivationOutput{nix::DerivationOutput::InputAddressed{outPath}});
    auto newDrvPath = nix::writeDerivation(store, drv);
    return RewrittenDrv{store.printStorePath(newDrvPath), store.printStorePath(outPath)};
}

void addPermRoot(nix::Store & store, const std::string & path, const std::string & root)
{
    dynamic_cast<nix::LocalFSStore &>(store).addPermRoot(store.parseStorePath(path), root);
}

std::string renderError(const nix::Error & e)
{
    std::ostringstream out;
    nix::showErrorInfo(out, e.info(), nix::loggerSettings.showTrace.get());
    return nix::filterANSIEscapes(out.str(), true);
}

std::string plainMessage(const nix::Error & e)
{
    return nix::filterANSIEscapes(e.info().msg.str(), true);
}

} // namespace evolive::nix_api
