#include "evaluation_service.hh"

#include "parquet_reader.hh"

#include <algorithm>
#include <set>
#include <thread>

namespace evolive::server {

using json = nlohmann::json;
using SystemClock = std::chrono::system_clock;

struct EvaluationService::Record
{
    std::string fingerprint;
    std::shared_ptr<Evaluation> evaluation;
    std::shared_ptr<EvaluationLog> log;
    std::string status = "queued"; // queued, running, finished, failed, cancelled
    std::string message;           // why it failed
    SystemClock::time_point submitted = SystemClock::now(), started, ended;
    size_t jobs = 0, errors = 0, clients = 1;
    size_t workers = 0; // the evaluation's workers, after max-workers
    bool cancelled = false;
};

namespace {

std::shared_ptr<EvaluationLog> logOf(const std::vector<json> & messages)
{
    auto log = std::make_shared<EvaluationLog>();
    for (auto & m : messages) log->append(jsonLine(m), false);
    log->close();
    return log;
}

} // namespace

EvaluationService::EvaluationService(ServiceSettings settings, Metrics & metrics)
    : settings_(std::move(settings)), metrics_(metrics)
{
    if (!settings_.evaluation.results)
        settings_.evaluation.results =
            std::make_shared<results::DirectoryResultStore>(settings_.evaluation.stateDir + "/results");
}

void EvaluationService::shutdown()
{
    std::unique_lock lock(mutex_);
    for (auto & [fingerprint, record] : active_) {
        record->cancelled = true;
        if (record->evaluation) record->evaluation->cancel();
    }
    changed_.notify_all();
    changed_.wait(lock, [&] { return threads_ == 0; });
}

template<class F> void EvaluationService::spawn(F && body)
{
    {
        std::lock_guard lock(mutex_);
        ++threads_;
    }
    std::thread([this, body = std::forward<F>(body)]() mutable {
        body();
        std::lock_guard lock(mutex_);
        --threads_;
        changed_.notify_all();
    }).detach();
}

size_t EvaluationService::queuePosition()
{
    std::lock_guard lock(mutex_);
    return running_ < settings_.concurrency && waiting_.empty() ? 0 : waiting_.size() + 1;
}

EvaluationService::Stream EvaluationService::submit(Jobset jobset, bool force)
{
    jobset.options.workers = std::min(jobset.options.workers, settings_.maxWorkers);
    auto workers = jobset.options.workers;
    auto settings = settings_.evaluation;
    settings.force = force;
    auto evaluation = std::make_shared<Evaluation>(std::move(jobset), settings);
    std::vector<json> failure;
    if (!evaluation->resolve([&](const json & m) { failure.push_back(m); })) {
        metrics_.evaluationsFailed++;
        return {logOf(failure)};
    }
    auto fingerprint = evaluation->fingerprint();

    std::unique_lock lock(mutex_);
    if (auto it = active_.find(fingerprint); it != active_.end()) {
        // The same evaluation is running or waiting: read along with it
        // (also with `force`: it is being evaluated anew right now).
        it->second->clients++;
        metrics_.joins++;
        return {it->second->log, fingerprint, true};
    }
    if (evaluation->replays()) {
        lock.unlock();
        metrics_.replays++;
        auto log = std::make_shared<EvaluationLog>();
        spawn([this, evaluation, log] { replayThread(evaluation, log); });
        return {log, fingerprint};
    }
    auto record = std::make_shared<Record>();
    record->fingerprint = fingerprint;
    record->evaluation = evaluation;
    record->workers = workers;
    record->log = std::make_shared<EvaluationLog>();
    active_[fingerprint] = record;
    lock.unlock();
    spawn([this, record] { runThread(record); });
    return {record->log, fingerprint};
}

void EvaluationService::replayThread(std::shared_ptr<Evaluation> evaluation, std::shared_ptr<EvaluationLog> log)
{
    std::vector<std::string> jobs; // handed over a few hundred at a time
    evaluation->run(
        [&](const json & m) {
            log->appendJobs(std::move(jobs));
            jobs.clear();
            log->append(jsonLine(m), m["type"] == "job");
        },
        [&](const std::string & line) {
            jobs.push_back(line);
            if (jobs.size() == 512) {
                log->appendJobs(std::move(jobs));
                jobs.clear();
            }
        });
    log->appendJobs(std::move(jobs));
    log->close();
}

Emit EvaluationService::recorder(Record & record)
{
    return [this, &record](const json & message) {
        auto type = message.value("type", "");
        if (type == "job") {
            bool error = message.contains("error");
            metrics_.jobs++;
            if (error) metrics_.jobErrors++;
            std::lock_guard lock(mutex_);
            record.jobs++;
            if (error) record.errors++;
        } else if (type == "failed") {
            std::lock_guard lock(mutex_);
            record.message = message.value("message", "");
            record.status = message.value("stage", "") == "cancelled" ? "cancelled" : "failed";
        } else if (type == "finished") {
            std::lock_guard lock(mutex_);
            record.status = "finished";
        }
        record.log->append(jsonLine(message), type == "job");
    };
}

bool EvaluationService::acquireSlot(Record & record)
{
    std::unique_lock lock(mutex_);
    waiting_.push_back(&record);
    if (running_ >= settings_.concurrency || waiting_.front() != &record)
        record.log->append(json{{"type", "queued"}, {"fingerprint", record.fingerprint}, {"position", waiting_.size()}}.dump(),
                           false);
    changed_.wait(lock, [&] { return record.cancelled || (waiting_.front() == &record && running_ < settings_.concurrency); });
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &record));
    changed_.notify_all(); // the next in line may go now
    if (record.cancelled) return false;
    ++running_;
    record.status = "running";
    record.started = SystemClock::now();
    return true;
}

void EvaluationService::releaseSlot()
{
    std::lock_guard lock(mutex_);
    --running_;
    changed_.notify_all();
}

void EvaluationService::runThread(std::shared_ptr<Record> record)
{
    auto emit = recorder(*record);
    if (!acquireSlot(*record)) {
        emit(json{{"type", "failed"},
                  {"stage", "cancelled"},
                  {"fingerprint", record->fingerprint},
                  {"message", "the evaluation was cancelled while it waited"}});
    } else {
        record->evaluation->run(emit);
        releaseSlot();
    }
    ended(record);
}

void EvaluationService::ended(const std::shared_ptr<Record> & record)
{
    {
        std::lock_guard lock(mutex_);
        record->ended = SystemClock::now();
        if (record->status == "finished") metrics_.evaluationsFinished++;
        else if (record->status == "cancelled") metrics_.evaluationsCancelled++;
        else metrics_.evaluationsFailed++;
        if (record->started != SystemClock::time_point())
            metrics_.evaluationTook(std::chrono::duration<double>(record->ended - record->started).count());
        // From now on the same fingerprint is replayed (or evaluated anew
        // after a failure); clients still reading keep the log alive.
        active_.erase(record->fingerprint);
        record->evaluation.reset();
        ended_.push_front(record);
        if (ended_.size() > settings_.keepEvaluations) ended_.pop_back();
    }
    record->log->close();
    record->log.reset();
}

json EvaluationService::describe(const Record & r) const
{
    json d{{"fingerprint", r.fingerprint}, {"status", r.status}, {"jobs", r.jobs}, {"errors", r.errors},
           {"clients", r.clients}, {"submittedAt", isoTime(r.submitted)}};
    if (r.workers) d["workers"] = r.workers;
    if (r.started != SystemClock::time_point()) d["startedAt"] = isoTime(r.started);
    if (r.ended != SystemClock::time_point()) d["endedAt"] = isoTime(r.ended);
    if (!r.message.empty()) d["message"] = r.message;
    return d;
}

std::optional<std::string> EvaluationService::storedResult(const std::string & fingerprint)
{
    if (!results::isFingerprint(fingerprint)) return std::nullopt;
    return settings_.evaluation.results->find(fingerprint);
}

std::optional<json> EvaluationService::status(const std::string & fingerprint)
{
    std::optional<json> found;
    {
        std::lock_guard lock(mutex_);
        if (auto it = active_.find(fingerprint); it != active_.end()) {
            found = describe(*it->second);
            if (it->second->status == "queued") {
                auto at = std::find(waiting_.begin(), waiting_.end(), it->second.get());
                if (at != waiting_.end()) (*found)["position"] = at - waiting_.begin() + 1;
            }
            return found;
        }
        for (auto & r : ended_)
            if (r->fingerprint == fingerprint) {
                found = describe(*r);
                break;
            }
    }
    // What the stored result says about itself: inputs with revisions,
    // evaluator, machine, times and counts.
    if (auto path = storedResult(fingerprint)) {
        auto contents = results::readParquet(*path, nullptr);
        json metadata = json::object();
        for (auto & [key, value] : contents.metadata) {
            auto parsed = json::parse(value, nullptr, false);
            metadata[key] = parsed.is_discarded() || !parsed.is_structured() ? json(value) : parsed;
        }
        if (!found) found = json{{"fingerprint", fingerprint}, {"status", "finished"}};
        (*found)["stored"] = true;
        (*found)["rows"] = contents.rows;
        (*found)["metadata"] = metadata;
    }
    return found;
}

std::shared_ptr<EvaluationLog> EvaluationService::running(const std::string & fingerprint)
{
    std::lock_guard lock(mutex_);
    auto it = active_.find(fingerprint);
    return it == active_.end() ? nullptr : it->second->log;
}

EvaluationService::Cancel EvaluationService::cancel(const std::string & fingerprint)
{
    std::lock_guard lock(mutex_);
    auto it = active_.find(fingerprint);
    if (it == active_.end()) {
        bool known = std::any_of(ended_.begin(), ended_.end(), [&](auto & r) { return r->fingerprint == fingerprint; });
        return known || storedResult(fingerprint) ? Cancel::AlreadyEnded : Cancel::Unknown;
    }
    it->second->cancelled = true;
    it->second->evaluation->cancel();
    changed_.notify_all();
    return Cancel::Cancelled;
}

json EvaluationService::recent(size_t limit)
{
    json list = json::array();
    std::set<std::string> listed;
    {
        std::lock_guard lock(mutex_);
        for (auto & [fingerprint, r] : active_) list.push_back(describe(*r));
        for (auto & r : ended_) list.push_back(describe(*r));
    }
    for (auto & e : list) listed.insert(e["fingerprint"].get<std::string>());
    for (auto & stored : settings_.evaluation.results->recent(limit))
        if (!listed.count(stored.fingerprint))
            list.push_back({{"fingerprint", stored.fingerprint},
                            {"status", "finished"},
                            {"stored", true},
                            {"endedAt", isoTime(SystemClock::from_time_t(stored.modified))},
                            {"bytes", stored.bytes}});
    if (list.size() > limit) list.erase(list.begin() + limit, list.end());
    return list;
}

std::map<std::string, std::pair<std::string, double>> EvaluationService::gauges()
{
    std::lock_guard lock(mutex_);
    return {{"evolive_evaluations_queued", {"Evaluations waiting for a slot.", (double) waiting_.size()}},
            {"evolive_evaluations_running", {"Evaluations running now.", (double) running_}}};
}

} // namespace evolive::server
