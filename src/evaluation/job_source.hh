// Where an evaluation's job lines come from once its inputs are fetched:
// the evaluator as a local process (LocalJobSource), or a fleet of machines
// (src/fleet). Evaluation (evaluation.hh) does everything else the same for
// every source: `started` and `finished`, the result file, pushing,
// cancelling.
#pragma once

#include "fingerprint.hh"
#include "jobset.hh"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive {

class ChildProcess;
struct ProcessSpec;

// What a source is asked to evaluate.
struct JobSourceRequest
{
    const Jobset & jobset;
    const std::map<std::string, ResolvedInput> & inputs; // fetched: their paths are on this machine
    std::string expressionFile;                         // the file to evaluate, inside its input
    std::string fingerprint;
    std::string logPath;                                // the evaluation's log: diagnostics go here
    const EvalRestrictions & restrictions;              // what the evaluator may see (docs/security.md)
    std::string evaluatorHome;                          // the evaluator's HOME and working directory
};

// Gets each job line, a JSON object, as soon as it is known.
using JobSink = std::function<void(nlohmann::json job)>;

class JobSource
{
public:
    virtual ~JobSource() = default;
    // Hands every job line to `job`; returns once the evaluation is
    // complete. Throws std::exception, with the message for the `failed`
    // line, when it cannot complete.
    virtual void run(const JobSourceRequest & request, const JobSink & job) = 0;
    // From any thread: run() stops soon (by throwing).
    virtual void cancel() = 0;
    // True when the source pushes each job's .drv closure itself (the
    // .drv files are written elsewhere) and, when the jobset pushes, puts
    // the outcome in the job line's `push`.
    virtual bool pushes() const { return false; }
};

// Makes the source for one jobset's evaluation.
using JobSourceFactory = std::function<std::unique_ptr<JobSource>(const Jobset &)>;

// The evaluator (options.evaluator) for `request`: its command line (the
// jobset's arguments, then `extraArgs`, then the file), restricted as the
// request says (evaluator_environment.hh: Nix's options, a scrubbed
// environment), in the request's evaluator home.
ProcessSpec evaluatorProcess(const std::string & evaluatorDir, const JobSourceRequest & request,
                             const std::vector<std::string> & extraArgs = {});
// Starts the evaluator `spec` describes, its stderr appended to `logPath`.
std::unique_ptr<ChildProcess> startEvaluator(const ProcessSpec & spec, const std::string & logPath);
// "the evaluator failed (exit status 1):\n" and the end of its log.
std::string evaluatorFailure(int waitStatus, const std::string & logPath);

// The evaluator (options.evaluator) as a child process of this one, with
// the jobset's inputs as its arguments (evaluatorArguments), restricted as
// the request says (evaluator_environment.hh: Nix's options, a scrubbed
// environment); its stderr goes to the log.
class LocalJobSource : public JobSource
{
public:
    // `evaluatorDir`: where evolive-eval-jobs is looked for before PATH ("":
    // PATH only). `extraArgs` go to the evaluator after the jobset's own
    // arguments, before the file.
    explicit LocalJobSource(std::string evaluatorDir, std::vector<std::string> extraArgs = {});
    void run(const JobSourceRequest & request, const JobSink & job) override;
    void cancel() override;

private:
    std::string evaluatorDir_;
    std::vector<std::string> extraArgs_;
    std::mutex mutex_; // guards the two below against cancel()
    bool cancelled_ = false;
    ChildProcess * evaluator_ = nullptr;
};

} // namespace evolive
