// The coordinator: starts worker processes, hands them attribute paths in
// batches, prints each job as its worker reports it, and replaces workers
// that crash, are killed or outgrow their memory limit. It evaluates
// nothing itself; a worker's death costs only the job it was evaluating.
#pragma once

#include "attr_path.hh"
#include "eval_args.hh"

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace evolive {

struct WorkerProcess;
class DrvBatchStore;

class Coordinator
{
public:
    // `argv` is the command line, given again to each worker.
    Coordinator(EvalJobsArgs & args, std::vector<std::string> argv);
    ~Coordinator();

    // Evaluates everything; returns the exit code (0 when the run completed,
    // whatever the per-job errors).
    int run();

private:
    // With --serve-paths: one JSON array of attribute paths per line of
    // standard input, each evaluated as --paths would, followed by a line
    // {"pathsDone": N, "jobs": J, "errors": E} (or {"pathsDone": N,
    // "error": WHY} for a line that is not a list of paths); returns at the
    // end of the input.
    int servePaths(std::chrono::steady_clock::time_point started);
    // Queues `paths` as the run's starting points (sets among them are entered).
    void enter(std::vector<AttrPath> paths);
    // Evaluates until the queue is empty and every worker idle; false (the
    // reason printed) when nothing more can be evaluated.
    bool evaluateQueue();
    // Prints the aggregates held back until every job was known, and forgets the jobs.
    void emitAggregates();
    void logSummary(std::chrono::steady_clock::time_point started) const;

    void spawnWorker();
    void dispatch(WorkerProcess & worker);
    void handleLine(WorkerProcess & worker, const std::string & line);
    void handleResults(WorkerProcess & worker, const nlohmann::json & reply);
    void handleExit(WorkerProcess & worker);
    void emit(nlohmann::json job);
    size_t nextBatchSize() const;
    DrvBatchStore & drvWriter(); // writes the .drv files workers hand over

    EvalJobsArgs & args_;
    std::vector<std::string> argv_;
    std::vector<std::unique_ptr<WorkerProcess>> workers_;
    std::deque<AttrPath> queue_;
    std::string fatal_;              // why the whole evaluation cannot happen
    size_t jobs_ = 0, errors_ = 0, restarts_ = 0;
    std::shared_ptr<DrvBatchStore> drvWriter_;
    bool storeOpened_ = false;
    std::set<AttrPath> entered_;     // the --paths paths: sets there are entered

    // With --constituents: every job by name, and the aggregates whose named
    // constituents are resolved once all jobs are known.
    std::map<std::string, nlohmann::json> jobsByName_;
    std::vector<nlohmann::json> aggregates_;
};

} // namespace evolive
