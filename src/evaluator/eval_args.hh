// The command line of evolive-eval-jobs. Nix's own argument parser is used
// so that --arg, --argstr, -I, --impure, --option and every Nix setting
// (--show-trace, ...) behave exactly as they do for nix-eval-jobs and nix.
#pragma once

#include "nix_api_types.hh"

#include <nix/common-args.hh>
#include <nix/common-eval-args.hh>

#include <string>

namespace evolive {

struct EvalJobsArgs : virtual nix::MixEvalArgs, virtual nix::MixCommonArgs, virtual nix_api::RootArgs
{
    std::string releaseExpr;   // the file argument, or the --expr text
    bool fromArgs = false;     // --expr: releaseExpr is an expression
    std::string flake;         // --flake REF#attr
    size_t workers = 1;
    size_t maxMemoryMiB = 4096;      // soft: restart the worker between jobs
    size_t maxMemoryHardMiB = 0;     // hard: address-space limit; 0 = automatic
    std::string gcRootsDir;
    std::string selectExpr;          // --select: function applied to the root
    std::string applyExpr;           // --apply: function applied to each job
    bool meta = false;
    bool forceRecurse = false;
    bool constituents = false;
    bool checkCacheStatus = false;
    bool showInputDrvs = false;
    bool noInstantiate = false;
    bool rejectUnusedArgs = false;   // --reject-unused-args: an --arg the root does not take is an error
    bool listPaths = false;          // --list-paths: walk and list the jobs' paths, instantiate nothing
    std::string pathsFile;           // --paths FILE: start from these attribute paths, not the root
    bool servePaths = false;         // --serve-paths: one --paths list per line of stdin, workers kept between them
    size_t batchSize = 0;            // attributes per worker request; 0 = automatic
    bool helpRequested = false;

    EvalJobsArgs();

    std::string description() override;

    // The hard limit in effect (the automatic default is derived from the soft one).
    size_t effectiveHardLimitMiB() const;

    // Throws nix::UsageError when the arguments do not make sense together.
    void validate() const;
};

} // namespace evolive
