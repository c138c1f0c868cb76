// Aggregate jobs (Hydra's `_hydraAggregate = true`): once every job is
// known, named constituents are resolved to .drv paths and the aggregate's
// derivation is rewritten to depend on them, as Hydra does.
#pragma once

#include "eval_args.hh"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace evolive {

// `jobs` maps every reported job's `attr` to its line; `aggregates` are the
// held-back aggregate lines with `namedConstituents`. Returns the final
// lines of the aggregates: `constituents` gets the resolved .drv paths and
// `drvPath`/`outputs.out` the rewritten derivation; a constituent that does
// not exist or failed gives the aggregate an `error` naming each. A
// dependency cycle between aggregates is nix-eval-jobs' error: the two jobs
// closing it get `Dependency cycle: A <-> B`, every other aggregate
// `Skipping aggregate because of a dependency cycle`, and none is rewritten.
// Globs (`globConstituents`) match names with fnmatch(3).
std::vector<nlohmann::json> resolveAggregates(const EvalJobsArgs & args, const std::map<std::string, nlohmann::json> & jobs,
                                              std::vector<nlohmann::json> aggregates);

} // namespace evolive
