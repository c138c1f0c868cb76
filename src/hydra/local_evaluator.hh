// The evaluator run on Hydra's machine with the flags Hydra's script gives
// nix-eval-jobs: restricted evaluation of `<INPUT/PATH>` (or the flake's
// hydraJobs, else checks), every input as -I/--arg, GC roots for every
// .drv, meta, constituents, forced recursion, no import-from-derivation
// unless allowed, the configured workers and memory limit, and no NIX_PATH.
#pragma once

#include "evaluation_source.hh"
#include "jobset_record.hh"
#include "settings.hh"

#include <optional>
#include <string>
#include <vector>

namespace evolive::hydra {

// evolive_evaluator, else evolive-eval-jobs beside this program, else from PATH.
std::string evaluatorProgram(const HydraSettings & settings);

// The arguments after the program's name.
std::vector<std::string> evaluatorArguments(const HydraSettings & settings, const JobsetRecord & jobset,
                                            const std::vector<std::string> & inputArgs,
                                            const std::optional<std::string> & flakeRef);

class LocalEvaluator : public JobSource
{
public:
    LocalEvaluator(std::string program, std::vector<std::string> args);
    void run(const JobHandler & onJob) override;

private:
    std::string program_;
    std::vector<std::string> args_;
};

} // namespace evolive::hydra
