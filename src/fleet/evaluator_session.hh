// The evaluator a worker keeps for the chunks of one evaluation:
// `evolive-eval-jobs --serve-paths`, given one chunk's attribute paths at a
// time. Its worker processes stay between chunks with what they have
// evaluated (the root, the dependencies jobs share), so that a chunk after
// the first costs only its own jobs; a new evaluator per chunk evaluated
// those again every time (bench/fleet.sh: about 1.2 s of a 2 s chunk of
// 1,000 synthetic jobs).
#pragma once

#include "job_source.hh"
#include "process.hh"

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace evolive {
class LineReader;
}

namespace evolive::fleet {

class EvaluatorSession
{
public:
    // Starts the evaluator `spec` describes (which must include
    // --serve-paths) for the chunks of evaluation `fingerprint` whose key
    // is `key`; its stderr is appended to `logPath`.
    EvaluatorSession(std::string fingerprint, std::string key, ProcessSpec spec, std::string logPath);
    ~EvaluatorSession(); // kills the evaluator and everything it started

    const std::string & fingerprint() const { return fingerprint_; }
    const std::string & key() const { return key_; }
    const std::string & logPath() const { return logPath_; }
    // False once an evaluate() failed or kill() was called, or the
    // evaluator exited while it waited for paths: start another.
    bool usable() const { return usable_ && process_->running(); }

    // Evaluates `paths` (a JSON array of attribute paths), handing each job line to `sink` as it comes;
    // returns when the evaluator says they are done. Throws
    // std::runtime_error when the evaluator exits or is killed meanwhile
    // (with the end of its log) or refuses the paths.
    void evaluate(const nlohmann::json & paths, const JobSink & sink);

    // From any thread: kills the evaluator; a running evaluate() throws.
    void kill();

private:
    std::string fingerprint_, key_, logPath_;
    std::unique_ptr<ChildProcess> process_;
    std::unique_ptr<LineReader> reader_;
    size_t requests_ = 0;
    std::atomic<bool> usable_{true};
};

} // namespace evolive::fleet
