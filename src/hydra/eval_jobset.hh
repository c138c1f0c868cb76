// `hydra-eval-jobset PROJECT JOBSET`: one evaluation of a Hydra jobset,
// from its row in Hydra's database to the evaluation, builds and
// notifications written back, as Hydra's own script does it:
//
//   1. eval_started
//   2. fetch every input; a failure: jobsets.fetcherrormsg, eval_failed, exit 0
//   3. hash the evaluator's arguments; the same as the last evaluation's:
//      eval_cached, exit 0
//   4. evaluate (here, or on an evolive server), staging jobs as they come
//   5. one transaction: the evaluation, builds, members, errors, the
//      notifications; exit 0
//   6. repointed builds and `iscurrent` updated in short transactions
//
// Anything else that fails (the evaluation as a whole, a broken aggregate,
// inputs Hydra refuses) goes into jobsets.errormsg with eval_failed, and
// the exit status is 1. Nothing of the evaluation is written then.
#pragma once

#include <string>

namespace evolive::hydra {

// Returns the exit status. Messages go to stderr.
int evalJobset(const std::string & project, const std::string & jobset);

} // namespace evolive::hydra
