// `evolive worker`: one machine of a fleet (docs/fleet.md). It takes chunks
// of the active evaluations from their Redis streams (a consumer of group
// `workers`), first those that lost workers left idle past the claim
// timeout, evaluates each chunk's attribute paths (with one `evolive-eval-jobs
// --serve-paths` kept for all the chunks it takes of an evaluation: see
// evaluator_session.hh), pushes every job's .drv closure to the shared
// binary cache, sends the job lines back on the evaluation's results
// stream, and acknowledges the chunk. Stateless apart from its git mirrors,
// its Nix store and that evaluator: any number may come and go during an
// evaluation.
#pragma once

#include "protocol.hh"
#include "push_session.hh"
#include "redis_connection.hh"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace evolive::fleet {

class EvaluatorSession;

struct WorkerSettings
{
    std::string redis;                 // redis://HOST:PORT or unix:///PATH
    cache::PushSettings push;          // the shared binary cache, this machine's daemon (and chroot store root)
    std::string stateDir;              // git mirrors, checkouts, chunk logs
    std::string evaluatorDir;          // where evolive-eval-jobs is, "" for PATH
    std::string name;                  // the consumer's name; "": HOST-PID
    size_t workers = 1;                // evaluator processes (evolive-eval-jobs --workers)
    size_t maxMemoryMiB = 0;           // per evaluator process; 0: the jobset's
    std::chrono::seconds gitTimeout{60};
};

class Worker
{
public:
    // Opens the push session (throws when the cache or daemon is unusable).
    explicit Worker(WorkerSettings settings);
    ~Worker(); // ends the evaluator it kept

    // Serves until stop(); reconnects to Redis with backoff while it is gone.
    void run();
    // From any thread (a signal's): run() returns soon; a chunk under way is
    // stopped and left to be taken over.
    void stop();

    const std::string & name() const { return settings_.name; }

private:
    struct Served; // an evaluation this worker may take chunks of now
    // One pass: the evaluations it may serve, a chunk taken over or read,
    // evaluated. Throws RedisError.
    void serveOnce(RedisConnection & redis);
    void runChunk(RedisConnection & redis, const Served & evaluation, const StreamEntry & entry, long long attempt);
    // An evaluator for the chunks of `spec`'s evaluation (`key` names
    // them), its inputs fetched.
    std::unique_ptr<EvaluatorSession> startSession(const ChunkSpec & spec, const std::string & key);
    // Waits `d` unless stopped meanwhile.
    void pause(std::chrono::milliseconds d);

    WorkerSettings settings_;
    std::unique_ptr<cache::PushSession> push_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::function<void()> stopChunk_; // stops the chunk under way, if any; under mutex_
    size_t rotation_ = 0; // which evaluation a blocking read waits on next
    // The evaluator of the evaluation this worker took its last chunk of,
    // kept for its next chunks until that evaluation is no longer served.
    std::unique_ptr<EvaluatorSession> session_;
};

// Logs a line on stderr, prefixed "evolive worker: ".
void workerLog(const std::string & line);

} // namespace evolive::fleet
