// nix_api.hh on Nix 2.26 (Debian 13): values reach their payload through
// accessors, symbols are numbers resolved through the symbol table, source
// files are SourcePaths, and the evaluator, fetchers and flakes take their
// settings objects explicitly.
#include "nix_api.hh"

#include <nix/attr-path.hh>
#include <nix/common-eval-args.hh>
#include <nix/config-global.hh>
#include <nix/derivations.hh>
#include <nix/derived-path.hh>
#include <nix/eval-inline.hh>
#include <nix/eval-settings.hh>
#include <nix/flake/flake.hh>
#include <nix/flake/settings.hh>
#include <nix/get-drvs.hh>
#include <nix/globals.hh>
#include <nix/local-fs-store.hh>
#include <nix/logging.hh>
#include <nix/shared.hh>
#include <nix/terminal.hh>
#include <nix/value-to-json.hh>

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace evolive::nix_api {

std::string nixVersion()
{
    return nix::nixVersion;
}

void initLibraries()
{
    nix::initNix();
    nix::initGC();
    nix::flake::initLib(nix::flakeSettings);
    // Nix 2.26 stops at a call depth of 10,000 (max-call-depth); Nix 2.8 had
    // no such limit, and a worker's 512 MiB stack holds the 20,000-deep
    // dependency chains it evaluates. Unless nix.conf or --option sets it,
    // the stack is the limit here too (an overflow is the job's error).
    nix::evalSettings.maxCallDepth.setDefault(1000000);
}

void setSetting(const std::string & name, const std::string & value)
{
    nix::globalConfig.set(name, value);
}

std::shared_ptr<nix::EvalState> makeEvalState(EvalJobsArgs & args, nix::ref<nix::Store> store)
{
    return std::make_shared<nix::EvalState>(args.lookupPath, store, nix::fetchSettings, nix::evalSettings);
}

nix::Value * evalReleaseExpr(nix::EvalState & state, EvalJobsArgs & args)
{
    nix::Value * top = state.allocValue();
    if (args.fromArgs)
        state.eval(state.parseExprFromString(args.releaseExpr, state.rootPath(".")), *top);
    else
        state.evalFile(nix::lookupFileArg(state, args.releaseExpr), *top);
    return top;
}

nix::Value * evalExprString(nix::EvalState & state, const std::string & text)
{
    nix::Value * v = state.allocValue();
    state.eval(state.parseExprFromString(text, state.rootPath(".")), *v);
    return v;
}

nix::Value * evaluateFlake(nix::EvalState & state, EvalJobsArgs & args)
{
    auto [flakeRef, fragment] = nix::parseFlakeRefWithFragment(nix::fetchSettings, args.flake,
                                                                  std::filesystem::current_path().string());
    nix::flake::LockFlags flags{.updateLockFile = false, .useRegistries = false, .allowUnlocked = false};
    auto locked = nix::flake::lockFlake(nix::flakeSettings, state, flakeRef, flags);
    nix::Value * vFlake = state.allocValue();
    nix::flake::callFlake(state, locked, *vFlake);
    auto outputs = getAttr(state, *vFlake, "outputs");
    state.forceValue(*outputs, nix::noPos);
    if (fragment.empty()) fragment = "hydraJobs";
    return nix::findAlongAttrPath(state, fragment, *args.getAutoArgs(state), *outputs).first;
}

nix::Value * getAttr(nix::EvalState & state, nix::Value & set, std::string_view name)
{
    auto attr = set.attrs()->get(state.symbols.create(name));
    return attr ? attr->value : nullptr;
}

std::vector<std::string> attrNames(nix::EvalState & state, nix::Value & set)
{
    std::vector<std::string> names;
    for (auto & attr : *set.attrs()) names.emplace_back(state.symbols[attr.name]);
    std::sort(names.begin(), names.end());
    return names;
}

bool boolAttr(nix::EvalState & state, nix::Value & set, std::string_view name, bool absent)
{
    auto attr = set.attrs()->get(state.symbols.create(name));
    return attr ? state.forceBool(*attr->value, attr->pos, nix::fmt("while evaluating the attribute '%s'", name))
                : absent;
}

std::vector<nix::Value *> listAttr(nix::EvalState & state, nix::Value & set, std::string_view name)
{
    auto attr = set.attrs()->get(state.symbols.create(name));
    if (!attr) return {};
    state.forceList(*attr->value, attr->pos, nix::fmt("while evaluating the attribute '%s'", name));
    std::vector<nix::Value *> items;
    for (auto item : attr->value->listItems()) {
        state.forceValue(*item, attr->pos);
        items.push_back(item);
    }
    return items;
}

std::string stringNoContext(nix::EvalState & state, nix::Value & v)
{
    return std::string(state.forceStringNoCtx(v, nix::noPos, "while evaluating a constituent's name"));
}

std::optional<Formals> formalsOf(nix::EvalState & state, const nix::Value & fun)
{
    if (!fun.isLambda() || !fun.payload.lambda.fun->hasFormals()) return std::nullopt;
    Formals out;
    auto & formals = *fun.payload.lambda.fun->formals;
    out.ellipsis = formals.ellipsis;
    for (auto & formal : formals.lexicographicOrder(state.symbols)) out.names.emplace_back(state.symbols[formal.name]);
    return out;
}

std::set<std::string> searchPathNames(nix::EvalState & state)
{
    std::set<std::string> names;
    for (auto & element : state.getLookupPath().elements) names.insert(element.prefix.s);
    return names;
}

std::optional<nlohmann::json> valueToJson(nix::EvalState & state, nix::Value & v)
{
    // Nix 2.26 builds an nlohmann value, whose strings are the bytes as
    // they are: writing it is what refuses those that are not UTF-8.
    nix::NixStringContext context;
    auto value = nix::printValueAsJSON(state, true, v, nix::noPos, context);
    try {
        (void) value.dump();
    } catch (nlohmann::json::type_error &) {
        return std::nullopt;
    }
    return value;
}

DerivationFields describeDerivation(nix::EvalState & state, const std::string & attr, nix::Value & v, bool withMeta)
{
    nix::PackageInfo drv(state, attr, v.attrs());
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
    nix::PackageInfo drv(state, "", v.attrs());
    return state.store->printStorePath(drv.requireDrvPath());
}

nlohmann::json inputDrvs(nix::Store & store, const std::string & drvPath)
{
    nlohmann::json inputs = nlohmann::json::object();
    for (auto & [input, node] : store.readDerivation(store.parseStorePath(drvPath)).inputDrvs.map)
        inputs[store.printStorePath(input)] = node.value;
    return inputs;
}

void queryMissing(nix::Store & store, const std::string & drvPath, const std::set<std::string> & outputs,
                  std::set<std::string> & willBuild, std::set<std::string> & willSubstitute)
{
    nix::StorePathSet build, substitute, unknown;
    uint64_t downloadSize, narSize;
    nix::OutputsSpec::Names names{nix::StringSet(outputs.begin(), outputs.end())};
    store.queryMissing({nix::DerivedPath::Built{.drvPath = nix::makeConstantStorePathRef(store.parseStorePath(drvPath)),
                                                .outputs = names}},
                       build, substitute, unknown, downloadSize, narSize);
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
        drv.inputDrvs.map[path].value = {child.outputs.begin()->first};
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
