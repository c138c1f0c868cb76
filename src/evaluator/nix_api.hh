// The seam between evolive-eval-jobs and Nix's C++ API.
//
// Nix's C++ API is not stable: between Nix 2.8 (Debian 12) and Nix 2.26
// (Debian 13) values, symbols, source paths, EvalState's constructor, the
// derivation and store-path types and the store's virtual methods all
// changed. Every call whose spelling differs between the versions evolive
// builds against goes through the functions declared here; the rest of
// src/evaluator uses only what both versions spell alike (nix::EvalState,
// nix::Value, nix::Store, nix::StorePath, nix::Error, nix::fmt, ...).
//
// One implementation per Nix version, chosen by CMake (EVOLIVE_NIX):
//   src/evaluator/nix-2.8/   Debian 12's Nix 2.8 (C++17)
//   src/evaluator/nix-2.26/  Debian 13's Nix 2.26 (C++20)
// each with nix_api.cc (this header) and local_drv_batch_store.cc (the
// store behind drv_batch_store.hh). docs/evaluator.md says how to add a
// third version.
#pragma once

#include "eval_args.hh"

#include <nix/eval.hh>
#include <nix/store-api.hh>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace evolive::nix_api {

// Which Nix this build is for, as "2.8.0" or "2.26.3".
std::string nixVersion();

// Once per process, before anything else: Nix's globals, the garbage
// collector, and (where Nix has them) the flake and fetcher settings.
void initLibraries();

// Sets a Nix setting as `--option NAME VALUE` would.
void setSetting(const std::string & name, const std::string & value);

// An evaluator on `store` with the search path and settings of `args`
// (shared: Nix 2.26's EvalState hands out shared_from_this()).
std::shared_ptr<nix::EvalState> makeEvalState(EvalJobsArgs & args, nix::ref<nix::Store> store);

// --- Expressions -----------------------------------------------------------

// The file argument (looked up as nix-build does: a path, `<name>` or a URL)
// or, with --expr, the expression text, evaluated into a fresh value.
nix::Value * evalReleaseExpr(nix::EvalState & state, EvalJobsArgs & args);
// An expression given on the command line (--select, --apply), relative to
// the working directory.
nix::Value * evalExprString(nix::EvalState & state, const std::string & text);
// The value `--flake REF#FRAGMENT` names: FRAGMENT inside the flake's
// outputs, `hydraJobs` when there is none. The lock file is not updated.
nix::Value * evaluateFlake(nix::EvalState & state, EvalJobsArgs & args);

// --- Values ----------------------------------------------------------------

// The attribute `name` of `set` (which must be an attribute set), or null.
nix::Value * getAttr(nix::EvalState & state, nix::Value & set, std::string_view name);
// The names of `set`'s attributes, sorted.
std::vector<std::string> attrNames(nix::EvalState & state, nix::Value & set);
// The attribute `name` of `set` forced to a Boolean; `absent` when there is none.
bool boolAttr(nix::EvalState & state, nix::Value & set, std::string_view name, bool absent);
// The attribute `name` of `set` forced to a list (empty when there is none).
std::vector<nix::Value *> listAttr(nix::EvalState & state, nix::Value & set, std::string_view name);
// A forced string value without string context.
std::string stringNoContext(nix::EvalState & state, nix::Value & v);

// A function's argument set: its names and whether it has `...`. Nothing
// when `fun` is not a function with an argument set.
struct Formals
{
    std::vector<std::string> names; // sorted
    bool ellipsis = false;
};
std::optional<Formals> formalsOf(nix::EvalState & state, const nix::Value & fun);
// The names of the search path's `name=path` entries (-I, NIX_PATH).
std::set<std::string> searchPathNames(nix::EvalState & state);

// `v` (strictly) as JSON, as builtins.toJSON and nix-eval-jobs write it.
// Nothing when one of its strings is not UTF-8 (Nix strings are bytes; a
// JSON line holds text).
std::optional<nlohmann::json> valueToJson(nix::EvalState & state, nix::Value & v);

// --- Derivations -----------------------------------------------------------

// What a job line tells of a derivation value. Forcing drvPath writes the
// .drv (or, read-only, only computes its path).
struct DerivationFields
{
    std::string name, system, drvPath;
    std::map<std::string, std::optional<std::string>> outputs; // null: not known before building (CA)
    // meta's valid attributes (no functions, no derivations), by name.
    std::vector<std::pair<std::string, nix::Value *>> meta;
};
DerivationFields describeDerivation(nix::EvalState & state, const std::string & attr, nix::Value & v, bool withMeta);
// The .drv path of a derivation value (a constituent).
std::string drvPathOf(nix::EvalState & state, nix::Value & v);

// --- The store -------------------------------------------------------------

// A .drv's input derivations as {drvPath: [output, ...]}.
nlohmann::json inputDrvs(nix::Store & store, const std::string & drvPath);

// What building `outputs` of `drvPath` needs: derivations to build and
// paths to substitute.
void queryMissing(nix::Store & store, const std::string & drvPath, const std::set<std::string> & outputs,
                  std::set<std::string> & willBuild, std::set<std::string> & willSubstitute);

// An aggregate's derivation with each constituent added as an input (as
// Hydra does, so that building the aggregate builds its constituents),
// written to the store. Nothing when the derivation is not input-addressed.
struct RewrittenDrv
{
    std::string drvPath, outPath;
};
std::optional<RewrittenDrv> addConstituentInputs(nix::Store & store, const std::string & drvPath,
                                                 const std::set<std::string> & constituents);

// Registers `path` as a garbage-collector root at `root` (a local store only).
void addPermRoot(nix::Store & store, const std::string & path, const std::string & root);

// --- Errors ----------------------------------------------------------------

// Nix's rendering of an error (`error: ...` with position and, with
// --show-trace, the trace), without colour codes.
std::string renderError(const nix::Error & e);
// Only the error's message, without colour codes.
std::string plainMessage(const nix::Error & e);

} // namespace evolive::nix_api
