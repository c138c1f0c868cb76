#include "eval_args.hh"

#include <nix/globals.hh>

#include <iostream>

namespace evolive {

namespace {
const char * evalCategory = "evolive-eval-jobs options";

size_t parsePositive(const std::string & flag, const std::string & s)
{
    size_t pos = 0;
    unsigned long long n = 0;
    try {
        n = std::stoull(s, &pos);
    } catch (...) {
        pos = 0;
    }
    if (pos != s.size() || s.empty() || s[0] == '-' || n == 0)
        throw nix::UsageError("'%s' expects a positive whole number, not '%s'", flag, s);
    return n;
}
} // namespace

EvalJobsArgs::EvalJobsArgs() : MixCommonArgs("evolive-eval-jobs")
{
    addFlag({
        .longName = "help",
        .description = "Show usage information.",
        .handler = {[this]() { helpRequested = true; }},
    });
    addFlag({
        .longName = "expr",
        .shortName = 'E',
        .description = "Treat the argument as a Nix expression, not a file.",
        .category = evalCategory,
        .handler = {&fromArgs, true},
    });
    addFlag({
        .longName = "flake",
        .description = "Evaluate the flake output *ref* (`path#attr`); needs the `flakes` experimental feature.",
        .category = evalCategory,
        .labels = {"ref"},
        .handler = {&flake},
    });
    addFlag({
        .longName = "workers",
        .description = "Number of evaluation worker processes (default 1).",
        .category = evalCategory,
        .labels = {"n"},
        .handler = {[this](std::string s) { workers = parsePositive("--workers", s); }},
    });
    addFlag({
        .longName = "max-memory-size",
        .description = "Restart a worker between jobs once its resident memory exceeds *MiB* (default 4096).",
        .category = evalCategory,
        .labels = {"MiB"},
        .handler = {[this](std::string s) { maxMemoryMiB = parsePositive("--max-memory-size", s); }},
    });
    addFlag({
        .longName = "max-memory-hard",
        .description = "Address-space limit of a worker in *MiB*: a job that needs more fails with an "
                       "out-of-memory error (default: twice --max-memory-size, at least 2048 more).",
        .category = evalCategory,
        .labels = {"MiB"},
        .handler = {[this](std::string s) { maxMemoryHardMiB = parsePositive("--max-memory-hard", s); }},
    });
    addFlag({
        .longName = "gc-roots-dir",
        .description = "Register each job's .drv as a garbage-collector root in *dir*.",
        .category = evalCategory,
        .labels = {"dir"},
        .handler = {&gcRootsDir},
    });
    addFlag({
        .longName = "select",
        .description = "Apply the function *expr* to the root value and evaluate the jobs of its result.",
        .category = evalCategory,
        .labels = {"expr"},
        .handler = {&selectExpr},
    });
    addFlag({
        .longName = "apply",
        .description = "Apply the function *expr* to each job's derivation; the JSON of the result is `extraValue`.",
        .category = evalCategory,
        .labels = {"expr"},
        .handler = {&applyExpr},
    });
    addFlag({
        .longName = "meta",
        .description = "Include the derivations' `meta` attributes.",
        .category = evalCategory,
        .handler = {&meta, true},
    });
    addFlag({
        .longName = "force-recurse",
        .description = "Recurse into every attribute set, not only those with `recurseForDerivations = true`.",
        .category = evalCategory,
        .handler = {&forceRecurse, true},
    });
    addFlag({
        .longName = "constituents",
        .description = "Resolve the constituents of aggregate jobs (`_hydraAggregate = true`).",
        .category = evalCategory,
        .handler = {&constituents, true},
    });
    addFlag({
        .longName = "check-cache-status",
        .description = "Report whether each job's outputs are built locally, substitutable, or need building.",
        .category = evalCategory,
        .handler = {&checkCacheStatus, true},
    });
    addFlag({
        .longName = "show-input-drvs",
        .description = "Include each job's input derivations (`inputDrvs`).",
        .category = evalCategory,
        .handler = {&showInputDrvs, true},
    });
    addFlag({
        .longName = "no-instantiate",
        .description = "Compute .drv paths without writing them to the store.",
        .category = evalCategory,
        .handler = {&noInstantiate, true},
    });
    addFlag({
        .longName = "reject-unused-args",
        .description = "Fail when the root is a function with an argument set without `...` and an "
                       "--arg/--argstr name is not one of its arguments (ignored with --flake).",
        .category = evalCategory,
        .handler = {&rejectUnusedArgs, true},
    });
    addFlag({
        .longName = "list-paths",
        .description = "Print the attribute path of each job a run would report, without instantiating "
                       "any derivation (for splitting an evaluation into chunks).",
        .category = evalCategory,
        .handler = {&listPaths, true},
    });
    addFlag({
        .longName = "paths",
        .description = "Evaluate the attribute paths listed in *file* (a JSON array of arrays of "
                       "strings; `-` reads standard input) instead of walking from the root.",
        .category = evalCategory,
        .labels = {"file"},
        .handler = {&pathsFile},
    });
    addFlag({
        .longName = "serve-paths",
        .description = "Read one JSON array of attribute paths per line of standard input and evaluate "
                       "each as --paths would, in turn, keeping the workers (and what they have evaluated) "
                       "between them; after each, print {\"pathsDone\": N, \"jobs\": J, \"errors\": E}.",
        .category = evalCategory,
        .handler = {&servePaths, true},
    });
    addFlag({
        .longName = "batch-size",
        .description = "Attributes sent to a worker at a time (default: chosen from the queue length).",
        .category = evalCategory,
        .labels = {"n"},
        .handler = {[this](std::string s) { batchSize = parsePositive("--batch-size", s); }},
    });
    expectArgs({
        .label = "expr",
        .optional = true,
        .handler = {&releaseExpr},
    });
}

std::string EvalJobsArgs::description()
{
    return "Evaluate a Nix jobset and print one JSON line per job";
}

size_t EvalJobsArgs::effectiveHardLimitMiB() const
{
    if (maxMemoryHardMiB) return maxMemoryHardMiB;
    return std::max(2 * maxMemoryMiB, maxMemoryMiB + 2048);
}

void EvalJobsArgs::validate() const
{
    if (!flake.empty()) {
        if (!releaseExpr.empty() || fromArgs)
            throw nix::UsageError("--flake cannot be combined with a file or --expr");
    } else if (releaseExpr.empty()) {
        throw nix::UsageError("no expression to evaluate: give a file, --expr EXPR or --flake REF");
    }
    if (noInstantiate && (!gcRootsDir.empty() || showInputDrvs || checkCacheStatus))
        throw nix::UsageError("--no-instantiate writes no .drv files, so it cannot be combined with "
                              "--gc-roots-dir, --show-input-drvs or --check-cache-status");
    if (listPaths && (!gcRootsDir.empty() || showInputDrvs || checkCacheStatus))
        throw nix::UsageError("--list-paths instantiates no derivation, so it cannot be combined with "
                              "--gc-roots-dir, --show-input-drvs or --check-cache-status");
    if (servePaths && (listPaths || !pathsFile.empty()))
        throw nix::UsageError("--serve-paths reads its paths from standard input, so it cannot be combined with "
                              "--list-paths or --paths");
    if (effectiveHardLimitMiB() < maxMemoryMiB)
        throw nix::UsageError("--max-memory-hard must not be below --max-memory-size");
}

} // namespace evolive
