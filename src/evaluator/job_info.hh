// What a worker reports for one attribute: a job (a derivation's name,
// system, .drv path, outputs, meta, constituents) or an error. The fields
// and their meaning are listed in docs/evaluator.md.
#pragma once

#include "attr_path.hh"
#include "eval_args.hh"

#include <nix/eval.hh>
#include <nlohmann/json.hpp>

namespace evolive {

// The job line of a derivation value at `path`. Forces the .drv path, so the
// derivation is written (or, with --no-instantiate, only computed). `apply`
// is the --apply function, or null. Throws nix::Error for evaluation errors.
nlohmann::json describeDerivation(nix::EvalState & state, const EvalJobsArgs & args, const AttrPath & path,
                                  nix::Value & v, nix::Value * apply);

// The --list-paths line of a derivation value at `path`: `attr` and
// `attrPath`, and with --constituents, for an aggregate, `aggregate`,
// `namedConstituents` and `globConstituents` as describeDerivation reads
// them. Computes no .drv path. Throws nix::Error for evaluation errors.
nlohmann::json describeListedPath(nix::EvalState & state, const EvalJobsArgs & args, const AttrPath & path,
                                  nix::Value & v);

// What --list-paths prints for a worker's result line (a listed
// derivation, or an error line: the error is not part of a listing).
nlohmann::json listedPathLine(const nlohmann::json & job);

// The fields that need the .drv in the store (gcroot, cacheStatus,
// inputDrvs); added once the worker has written its batch of derivations.
void addStoreFields(nix::Store & store, const EvalJobsArgs & args, nlohmann::json & job);

// The error line for an attribute, the message as plain text.
nlohmann::json errorJob(const AttrPath & path, const std::string & message);

// The error line of a job that failed because of the machine, not of its
// expression (its worker killed or crashed, out of memory, the store
// failing): `"errorCause": "environment"` besides nix-eval-jobs' fields, so
// that a stored result holding it is not taken as final.
nlohmann::json environmentErrorJob(const AttrPath & path, const std::string & message);

} // namespace evolive
