// One evaluation of a jobset, from start to end: resolve and fetch the
// inputs, compute the fingerprint, run the evaluator (or, when the same
// fingerprint has a stored result, replay it), keep the result, and report
// each step as a message of the stream described in docs/jobsets.md
// (`started`, `job`, `finished` or `failed`).
#pragma once

#include "fingerprint.hh"
#include "jobset.hh"

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive {

struct EvaluationSettings
{
    std::string stateDir;                        // mirrors, checkouts, logs
    std::chrono::seconds gitTimeout{60};
    std::string evaluatorDir;                    // where evolive-eval-jobs is, "" for PATH
    bool force = false;                          // evaluate even when a stored result exists
    std::function<void(size_t jobs, size_t errors)> progress; // called as jobs arrive
    // With options.push: pushes one job's .drv closure and says how it went
    // ({"uploaded": n, "present": m} or {"error": message}).
    std::function<nlohmann::json(const std::string & drvPath)> push;
};

// The arguments for the evaluator: Nix search path entries and arguments
// for every input (see docs/jobsets.md for what each input becomes).
std::vector<std::string> evaluatorArguments(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs,
                                            const std::string & expressionFile);

// A Nix string literal for `s`.
std::string nixString(const std::string & s);

// The file to evaluate: the expression's path inside its input, refused
// when it leaves the input (through `..` or a symlink) or does not exist.
// Throws JobsetError.
std::string expressionFile(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs);

// Runs the whole evaluation; each message goes to `emit`. Returns true when
// it finished, false when it failed (the `failed` message says why).
bool runEvaluation(const Jobset & jobset, const EvaluationSettings & settings,
                   const std::function<void(const nlohmann::json &)> & emit);

} // namespace evolive
