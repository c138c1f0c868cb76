// A worker process: evaluates the root once, then answers requests from the
// coordinator, one line each way per batch of attribute paths.
//
//   coordinator -> worker (fd 3):  {"paths": [[name, ...], ...], "written": k,
//                                   "entered": [i, ...]}
//   worker -> coordinator (fd 4):  {"ready": true} once, or {"fatal": msg}
//                                  {"at": i} before the i-th path (i > 0)
//                                  {"results": [r, ...], "restart": bool,
//                                   "drvs": [[name, text, [refs]], ...], "handOff": k}
//
// Each result is {"job": {...}} (a derivation or an error line),
// {"children": [names]} (a set to recurse into) or {"skip": true}; a set is
// recursed into when it is the root, has `recurseForDerivations = true`,
// with --force-recurse, or when its index is in `entered` (a path asked for
// with --paths). With --list-paths a derivation's job is only its listing
// line (job_info.hh's describeListedPath): nothing is instantiated. Results
// come in request order; fewer results than paths means the worker stopped
// early (out of memory) and the rest must go to another worker. `drvs` are
// the batch's new .drv files (see drv_batch_store.hh): the coordinator writes
// them before it prints the batch's jobs, and confirms with `written`.
#pragma once

#include "eval_args.hh"

namespace evolive {

constexpr int workerRequestFd = 3;
constexpr int workerReplyFd = 4;

// Runs the worker loop until the coordinator closes the request pipe or
// memory use asks for a restart. Returns the process exit code.
int runWorker(EvalJobsArgs & args);

} // namespace evolive
