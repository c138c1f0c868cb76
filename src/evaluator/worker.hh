// A worker process: evaluates the root once, then answers requests from the
// coordinator, one line each way per batch of attribute paths.
//
//   coordinator -> worker (fd 3):  {"paths": [[name, ...], ...]}
//   worker -> coordinator (fd 4):  {"ready": true} once, or {"fatal": msg}
//                                  {"results": [r, ...], "restart": bool}
//
// Each result is {"job": {...}} (a derivation or an error line),
// {"children": [names]} (a set to recurse into) or {"skip": true}. Results
// come in request order; fewer results than paths means the worker stopped
// early (out of memory) and the rest must go to another worker. Jobs are
// reported only after their .drv files are in the store.
#pragma once

#include "eval_args.hh"

namespace evolive {

constexpr int workerRequestFd = 3;
constexpr int workerReplyFd = 4;

// Runs the worker loop until the coordinator closes the request pipe or
// memory use asks for a restart. Returns the process exit code.
int runWorker(EvalJobsArgs & args);

} // namespace evolive
