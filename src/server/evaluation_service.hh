// The evaluations the service knows: running and waiting ones by
// fingerprint (so that a second request for the same fingerprint joins the
// first), the queue that lets at most `concurrency` run at once, and the
// recently ended ones. Every evaluation runs on a thread of its own and
// writes into an EvaluationLog that clients stream from; a client going
// away never stops it.
#pragma once

#include "evaluation.hh"
#include "evaluation_log.hh"
#include "metrics.hh"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

namespace evolive::server {

struct ServiceSettings
{
    EvaluationSettings evaluation; // state directory, result store, push, ...
    size_t concurrency = 1;
    size_t maxWorkers = 1;
    size_t keepEvaluations = 100;
};

class EvaluationService
{
public:
    EvaluationService(ServiceSettings settings, Metrics & metrics);
    ~EvaluationService() { shutdown(); }
    // Cancels what runs or waits, and waits for their threads to end.
    void shutdown();

    // A place in line, taken when a request is accepted (before its inputs
    // are resolved), so that concurrent requests are told distinct places
    // and start in that order. Given back when the request turns out to
    // join, replay or fail; held by the evaluation until it starts.
    class Ticket
    {
    public:
        Ticket(Ticket && other) noexcept
            : service_(std::exchange(other.service_, nullptr)), number_(other.number_), position_(other.position_)
        {
        }
        Ticket & operator=(Ticket &&) = delete;
        ~Ticket()
        {
            if (service_) service_->release(number_);
        }
        // For the `accepted` message: 0 when it can start at once, otherwise
        // its place in line (1: next).
        size_t position() const { return position_; }

    private:
        friend class EvaluationService;
        Ticket(EvaluationService * service, uint64_t number, size_t position)
            : service_(service), number_(number), position_(position)
        {
        }
        EvaluationService * service_;
        uint64_t number_;
        size_t position_;
    };
    Ticket accept();

    struct Stream
    {
        std::shared_ptr<EvaluationLog> log;
        std::string fingerprint; // "" when resolving failed
        bool joined = false;     // an evaluation that was already running
    };
    // Resolves the jobset's fingerprint (on the caller's thread: git
    // ls-remote), then joins the running or waiting evaluation of that
    // fingerprint, replays its stored result (unless `force`), or starts a
    // new evaluation. A failure to resolve gives a log with the `failed` line.
    Stream submit(Jobset jobset, bool force, Ticket ticket);

    // Status and metadata of a known evaluation, in memory or stored.
    std::optional<nlohmann::json> status(const std::string & fingerprint);
    // The log of a running or waiting evaluation, or null.
    std::shared_ptr<EvaluationLog> running(const std::string & fingerprint);
    // A local file holding the stored result, or nullopt.
    std::optional<std::string> storedResult(const std::string & fingerprint);

    enum class Cancel { Cancelled, AlreadyEnded, Unknown };
    Cancel cancel(const std::string & fingerprint);

    // Running and waiting evaluations, then ended ones, newest first.
    nlohmann::json recent(size_t limit);

    // Where results are stored (for the status page's catalog).
    std::shared_ptr<results::ResultStore> resultStore() const { return settings_.evaluation.results; }

    // Gauges for /metrics: name → (help, value).
    std::map<std::string, std::pair<std::string, double>> gauges();

private:
    struct Record;
    void runThread(std::shared_ptr<Record> record);
    void replayThread(std::shared_ptr<Evaluation> evaluation, std::shared_ptr<EvaluationLog> log);
    bool acquireSlot(Record & record);
    void release(uint64_t ticket);
    size_t positionOf(uint64_t ticket) const; // with mutex_ held
    void releaseSlot();
    void ended(const std::shared_ptr<Record> & record);
    Emit recorder(Record & record);
    nlohmann::json describe(const Record & record, size_t maxMessageBytes) const;
    template<class F> void spawn(F && body);

    ServiceSettings settings_;
    Metrics & metrics_;

    std::mutex mutex_;
    std::condition_variable changed_; // slots, cancellations, threads ending
    std::map<std::string, std::shared_ptr<Record>> active_; // waiting or running, by fingerprint
    std::deque<Record *> waiting_;                          // waiting for a slot, in order of arrival
    std::set<uint64_t> tickets_;                            // places in line not yet running, in order
    uint64_t nextTicket_ = 0;
    std::deque<std::shared_ptr<Record>> ended_;             // newest first
    size_t running_ = 0;
    size_t threads_ = 0;
};

} // namespace evolive::server
