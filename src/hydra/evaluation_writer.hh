// Writing an evaluation into Hydra's tables, as Hydra's script does, from
// the jobs staged during the evaluation (staging.hh), in one transaction:
//
//   evaluationerrors   the per-job errors ("in job ‘ATTR’:\nERROR\n\n" each)
//   jobsetevals        hash, timestamp, checkouttime, evaltime, flake, expression,
//                      hasnewbuilds, nrbuilds (NULL when nothing changed)
//   builds             one per job, unless the previous evaluation with new builds
//                      has a build of the same job with the same first output
//                      path: that one is reused (and, when its .drv changed,
//                      repointed to the new one afterwards)
//   buildoutputs       one per output of each new build
//   jobsetevalmembers, jobsetevalinputs, aggregateconstituents
//                      when builds were added or removed since last time
//   jobsets            lastcheckedtime, errormsg ("" on a clean run), errortime,
//                      fetcherrormsg NULL, forceeval NULL, one-shot disabled
//
// with the notifications of notifications.hh in Hydra's order. After the
// commit, repointed builds and `iscurrent` are updated in short
// transactions of their own (batches ordered by id), as Hydra does, so that
// no transaction holds many rows of `builds` for long.
#pragma once

#include "eval_arguments.hh"
#include "jobset_record.hh"
#include "staging.hh"

#include <pqxx/pqxx>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace evolive::hydra {

// The evaluation failed as a whole (Hydra's script dies); the message goes
// into jobsets.errormsg.
struct EvaluationFailure : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct EvaluationToWrite
{
    const JobsetRecord * jobset = nullptr;
    const InputInfo * inputs = nullptr;
    std::string traceId;
    std::string hash;
    std::optional<std::string> flake;          // the locked flake reference
    long checkoutSeconds = 0;
    long errorTime = 0;                        // when the evaluation started (seconds since the epoch)
    std::string errorMsg;                      // the per-job errors
    std::optional<std::string> failedAggregate; // the first aggregate with an error: Hydra's message for it
    std::chrono::steady_clock::time_point evalStart;
};

struct WrittenEvaluation
{
    int evalId = 0;
    bool changed = false;            // builds were added or removed: a new eval with members
    std::optional<int> currentEval;  // the eval whose builds are current now
    size_t builds = 0, newBuilds = 0;
    double transactionSeconds = 0;   // the last attempt, from its start to its commit
    int attempts = 0;
};

// The whole transaction, retried on deadlock and serialisation failure.
// Throws EvaluationFailure (e.g. a broken aggregate) or a database error;
// nothing is written then.
WrittenEvaluation writeEvaluation(pqxx::connection & conn, const EvaluationToWrite & eval);

// After writeEvaluation: repoints reused builds whose .drv changed, then
// makes the builds of `currentEval` (and only those) the jobset's current
// ones.
void updateBuildsAfterEvaluation(pqxx::connection & conn, int jobsetId, const WrittenEvaluation & written);

} // namespace evolive::hydra
