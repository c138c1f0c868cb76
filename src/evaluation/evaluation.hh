// One evaluation of a jobset, from start to end: resolve and fetch the
// inputs, compute the fingerprint, run the evaluator (or, when the same
// fingerprint has a stored result, replay it), keep the result, and report
// each step as a message of the stream described in docs/jobsets.md
// (`started`, `job`, `finished` or `failed`).
#pragma once

#include "fingerprint.hh"
#include "job_source.hh"
#include "jobset.hh"
#include "json_line.hh"
#include "result_rows.hh"
#include "result_store.hh"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive {

struct EvaluationSettings
{
    std::string stateDir;                        // mirrors, checkouts, logs
    std::shared_ptr<results::ResultStore> results; // null: STATE/results
    std::chrono::seconds gitTimeout{60};
    std::string evaluatorDir;                    // where evolive-eval-jobs is, "" for PATH
    bool force = false;                          // evaluate even when a stored result exists
    EvalRestrictions restrictions;               // what the evaluator may see (docs/security.md)
    // A stored result of the fingerprint exists but is not replayed: it is
    // `damaged` (its checksum does not match, it has none, it is of another
    // fingerprint), or it has errors caused by the environment; `why` says
    // which. It is evaluated anew. Unset: a line on stderr.
    std::function<void(const std::string & fingerprint, const std::string & why, bool damaged)> refusedResult;
    std::function<void(size_t jobs, size_t errors)> progress; // called as jobs arrive
    // With options.push: pushes one job's .drv closure and says how it went
    // ({"uploaded": n, "present": m} or {"error": message}).
    std::function<nlohmann::json(const std::string & drvPath)> push;
    // Why git may not read a local directory ("" when it may): the
    // service's allowed-paths for git+file URLs and local submodules
    // (GitFetcher's LocalPathCheck). Unset: any.
    std::function<std::string(const std::string & path)> checkLocalPath;
    // Where the job lines come from; null: the evaluator as a local process
    // (LocalJobSource).
    JobSourceFactory jobSource;
};

// The arguments for the evaluator: Nix search path entries and arguments
// for every input (see docs/jobsets.md for what each input becomes).
std::vector<std::string> evaluatorArguments(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs,
                                            const std::string & expressionFile);

// A time as the stream and the result metadata write it: 2026-11-29T14:05:56Z.
std::string isoTime(std::chrono::system_clock::time_point t);

// Where mirrors, logs and results go when no state directory is given:
// $EVOLIVE_STATE_DIR, else $XDG_STATE_HOME/evolive, else ~/.local/state/evolive.
std::string defaultStateDir();

// STATE/logs/<fingerprint>.log: an evaluation's log, kept beside its result.
std::string logPathFor(const std::string & stateDir, const std::string & fingerprint);

// A Nix string literal for `s`.
std::string nixString(const std::string & s);

// The file to evaluate: the expression's path inside its input, refused
// when it leaves the input (through `..` or a symlink) or does not exist.
// Throws JobsetError.
std::string expressionFile(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs);

using Emit = std::function<void(const nlohmann::json &)>;
using JobLineEmit = std::function<void(const std::string & line)>;

// One evaluation in two stages, so that a caller can act between them (the
// service joins a running evaluation of the same fingerprint, or queues):
// resolve() finds the fingerprint, run() replays or fetches and evaluates.
class Evaluation
{
public:
    Evaluation(Jobset jobset, EvaluationSettings settings);
    ~Evaluation();

    // Resolves every git ref on its remote (no fetching) and hashes path
    // inputs: enough for the fingerprint. On failure emits `failed` (stage
    // "fetch" or "prepare") and returns false.
    bool resolve(const Emit & emit);
    const std::string & fingerprint() const { return fingerprint_; }
    // After resolve(): whether run() will replay a stored result.
    bool replays() const { return stored_.has_value(); }

    // Streams `started`, every `job`, then `finished` — or `failed`, and
    // returns false. A replay neither fetches nor evaluates; given
    // `jobLine`, it hands stored jobs to it as lines (unless it pushes).
    bool run(const Emit & emit, const JobLineEmit & jobLine = {});

    // From any thread: run() stops soon, with `failed` (stage "cancelled"),
    // and the job source stops (the evaluator and its workers are killed).
    void cancel();

private:
    bool replay(const Emit & emit, const JobLineEmit & jobLine);
    // Why the stored result at `path` is not to be replayed ("" when it
    // is), and whether that is damage rather than environment errors.
    std::pair<std::string, bool> whyNotReplayed(const std::string & path) const;
    bool evaluate(const Emit & emit);
    bool fail(const Emit & emit, const std::string & message);

    Jobset jobset_;
    EvaluationSettings settings_;
    std::map<std::string, ResolvedInput> inputs_;
    std::string fingerprint_, logPath_, stage_ = "fetch";
    std::optional<std::string> stored_;
    std::chrono::steady_clock::time_point started_, runStarted_;
    double resolveSeconds_ = 0, queuedSeconds_ = 0; // queued: from resolve() to run()

    std::mutex mutex_; // guards the two below against cancel()
    bool cancelled_ = false;
    JobSource * source_ = nullptr;
};

// The directory whose evolive-eval-jobs evaluates: `configured` (the
// `--evaluator-dir` flag, the server's `evaluator-dir`; for example the
// build for another Nix version), which must hold an executable
// evolive-eval-jobs (JobsetError otherwise), or, when empty, the directory
// of the running evolive program.
std::string evaluatorDirFor(const std::string & configured);

// Both stages; each message goes to `emit`. Returns true when the
// evaluation finished, false when it failed (the `failed` message says why).
bool runEvaluation(const Jobset & jobset, const EvaluationSettings & settings, const Emit & emit);

} // namespace evolive
