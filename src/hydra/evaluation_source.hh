// Where an evaluation's jobs come from: the evaluator run here
// (local_evaluator.hh) or an `evolive serve` elsewhere (remote_evaluator.hh).
// (Hydra-shaped: src/evaluation/job_source.hh is the same idea for evolive's own
// evaluations, which start from fetched jobset inputs.)
// Either gives each job, as a line of nix-eval-jobs' output, as soon as it
// is known.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>

namespace evolive::hydra {

using JobHandler = std::function<void(const nlohmann::json & job)>;

class JobSource
{
public:
    virtual ~JobSource() = default;
    // Calls `onJob` for every job, then returns once the evaluation has
    // completed and every job's .drv closure is in the local store. Throws
    // EvaluationFailure (evaluation_writer.hh) when the evaluation as a
    // whole failed.
    virtual void run(const JobHandler & onJob) = 0;
};

} // namespace evolive::hydra
