#include "evaluation_service.hh"

#include "json_parse.hh"
#include "parquet_reader.hh"

#include <algorithm>
#include <fstream>
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
    std::string message;           // why it failed (its end, at most maxMessageBytes)
    uint64_t ticket = 0;           // its place in line until it runs
    SystemClock::time_point submitted = SystemClock::now(), started, ended;
    size_t jobs = 0, errors = 0, clients = 1;
    size_t workers = 0; // the evaluation's workers, after max-workers
    bool cancelled = false;
};

namespace {

// A failure's message as status answers keep it: its end, which says
// what happened last (a log's tail can be hundreds of megabytes).
constexpr size_t maxMessageBytes = 16 * 1024, maxListedMessageBytes = 1024;

std::string messageTail(const std::string & message, size_t max)
{
    if (message.size() <= max) return message;
    size_t start = message.size() - max;
    while (start < message.size() && (message[start] & 0xc0) == 0x80) ++start; // not inside a UTF-8 character
    return "[" + std::to_string(start) + " bytes left out]\n" + message.substr(start);
}

// A stored result's metadata value larger than any request could make
// (max-request-bytes is 1 MiB by default) is not returned.
constexpr size_t maxMetadataValueBytes = 4 << 20;

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

size_t EvaluationService::positionOf(uint64_t ticket) const
{
    size_t ahead = running_ + std::distance(tickets_.begin(), tickets_.lower_bound(ticket));
    return ahead < settings_.concurrency ? 0 : ahead - settings_.concurrency + 1;
}

EvaluationService::Ticket EvaluationService::accept()
{
    std::lock_guard lock(mutex_);
    auto number = nextTicket_++;
    tickets_.insert(number);
    return Ticket(this, number, positionOf(number));
}

void EvaluationService::release(uint64_t ticket)
{
    {
        std::lock_guard lock(mutex_);
        tickets_.erase(ticket);
    }
    changed_.notify_all(); // the next in line may go now
}

EvaluationService::Stream EvaluationService::submit(Jobset jobset, bool force, Ticket ticket)
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
    record->ticket = ticket.number_;
    ticket.service_ = nullptr; // the record holds the place now
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
            record.message = messageTail(message.value("message", ""), maxMessageBytes);
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
    // In the order of the places taken when the requests were accepted:
    // an evaluation waits for those accepted before it, also while they
    // are still resolving (one that turns out to replay or join gives its
    // place up).
    std::unique_lock lock(mutex_);
    waiting_.push_back(&record);
    if (auto position = positionOf(record.ticket); position > 0)
        record.log->append(json{{"type", "queued"}, {"fingerprint", record.fingerprint}, {"position", position}}.dump(),
                           false);
    changed_.wait(lock, [&] {
        return record.cancelled || (*tickets_.begin() == record.ticket && running_ < settings_.concurrency);
    });
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &record));
    tickets_.erase(record.ticket);
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
        // The log ends with what the status says, also for an evaluation
        // cancelled while it waited (which had no log yet).
        std::string outcome;
        {
            std::lock_guard lock(mutex_);
            outcome = record->status == "finished"
                          ? "finished: " + std::to_string(record->jobs) + " jobs, " + std::to_string(record->errors) + " errors"
                          : record->status + ": " + messageTail(record->message, 1024);
        }
        std::ofstream(logPathFor(settings_.evaluation.stateDir, record->fingerprint), std::ios::app)
            << "evolive: " << outcome << "\n";
    }
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

json EvaluationService::describe(const Record & r, size_t maxMessage) const
{
    json d{{"fingerprint", r.fingerprint}, {"status", r.status}, {"jobs", r.jobs}, {"errors", r.errors},
           {"clients", r.clients}, {"submittedAt", isoTime(r.submitted)}};
    if (r.workers) d["workers"] = r.workers;
    if (r.started != SystemClock::time_point()) d["startedAt"] = isoTime(r.started);
    if (r.ended != SystemClock::time_point()) d["endedAt"] = isoTime(r.ended);
    if (!r.message.empty()) d["message"] = messageTail(r.message, maxMessage);
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
            found = describe(*it->second, maxMessageBytes);
            if (it->second->status == "queued") (*found)["position"] = std::max<size_t>(1, positionOf(it->second->ticket));
            return found;
        }
        for (auto & r : ended_)
            if (r->fingerprint == fingerprint) {
                found = describe(*r, maxMessageBytes);
                break;
            }
    }
    // What the stored result says about itself: inputs with revisions,
    // evaluator, machine, times and counts.
    if (auto path = storedResult(fingerprint)) {
        auto contents = results::readParquet(*path, nullptr);
        json metadata = json::object();
        for (auto & [key, value] : contents.metadata) {
            if (value.size() > maxMetadataValueBytes) {
                metadata[key] = json{{"omitted", true}, {"bytes", value.size()}};
                continue;
            }
            try {
                auto parsed = parseJson(value, "metadata " + key);
                metadata[key] = parsed.is_structured() ? parsed : json(value);
            } catch (JsonParseError &) {
                metadata[key] = value; // text, or JSON nested too deep to return as such
            }
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
        for (auto & [fingerprint, r] : active_) list.push_back(describe(*r, maxListedMessageBytes));
        for (auto & r : ended_) list.push_back(describe(*r, maxListedMessageBytes));
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
