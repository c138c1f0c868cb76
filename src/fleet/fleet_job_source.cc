#include "fleet_job_source.hh"

#include "chunking.hh"
#include "json_parse.hh"
#include "redis_connection.hh"
#include "stream_reply.hh"

#include <charconv>
#include <chrono>
#include <fstream>
#include <set>

namespace evolive::fleet {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

void appendLog(const std::string & logPath, const std::string & line)
{
    std::ofstream(logPath, std::ios::app) << "evolive: fleet: " << line << "\n";
}

// An error line for a listed attribute no worker answered for, as the
// evaluator writes a job's error, marked as caused by the environment (so
// that the stored result is evaluated anew when asked again).
json environmentError(const ListedPath & p, const std::string & why)
{
    return json{{"attr", p.attr}, {"attrPath", p.attrPath}, {"error", why}, {"errorCause", "environment"}};
}

// Every key of the evaluation gone but its cancel flag, which stays a while
// so that workers still on one of its chunks (a duplicate after a takeover)
// stop. Best effort: Redis may be what failed.
void retire(const std::string & redisUrl, const std::string & fp, std::chrono::seconds flagLife)
{
    try {
        RedisConnection redis(redisUrl, std::chrono::seconds(2));
        redis.command({"SET", Keys::cancel(fp), "1", "EX", std::to_string(flagLife.count())});
        redis.command({"SREM", Keys::evaluations(), fp});
        redis.command({"DEL", Keys::chunks(fp), Keys::results(fp), Keys::machines(fp), Keys::evaluation(fp)});
    } catch (std::exception &) {
    }
}

} // namespace

FleetJobSource::FleetJobSource(FleetSettings settings, std::string evaluatorDir)
    : settings_(std::move(settings)), evaluatorDir_(std::move(evaluatorDir))
{
}

void FleetJobSource::cancel()
{
    cancelled_ = true;
    std::lock_guard lock(mutex_);
    if (listing_) listing_->cancel();
    if (!fingerprint_.empty()) retire(settings_.redis, fingerprint_, std::chrono::seconds(600));
}

void FleetJobSource::run(const JobSourceRequest & request, const JobSink & sink)
{
    if (request.jobset.options.evaluator != "evolive-eval-jobs")
        throw std::runtime_error("options.fleet: a fleet evaluates with evolive-eval-jobs (it needs --list-paths and "
                                 "--paths), not " + request.jobset.options.evaluator);
    auto & fp = request.fingerprint;
    RedisConnection redis(settings_.redis, std::chrono::seconds(5));

    // The attribute paths, found here: the inputs are fetched already.
    auto listStarted = Clock::now();
    std::vector<ListedPath> listed;
    {
        LocalJobSource lister(evaluatorDir_, {"--list-paths"});
        {
            std::lock_guard lock(mutex_);
            fingerprint_ = fp;
            listing_ = &lister;
            if (cancelled_) lister.cancel();
        }
        struct Forget
        {
            FleetJobSource & s;
            ~Forget()
            {
                std::lock_guard lock(s.mutex_);
                s.listing_ = nullptr;
            }
        } forget{*this};
        // The listing instantiates nothing, so it cannot check the cache
        // status (the evaluator refuses both at once); the workers do.
        auto listedJobset = request.jobset;
        listedJobset.options.checkCacheStatus = false;
        JobSourceRequest listing{listedJobset,         request.inputs,       request.expressionFile, request.fingerprint,
                                 request.logPath,      request.restrictions, request.evaluatorHome};
        lister.run(listing, [&](json line) { listed.push_back(parseListedPath(line)); });
    }
    if (cancelled_) throw std::runtime_error("cancelled");
    auto chunks = cutIntoChunks(listed, settings_.chunkSize);
    appendLog(request.logPath, std::to_string(listed.size()) + " attribute paths listed in " +
                                   std::to_string(std::chrono::duration<double>(Clock::now() - listStarted).count()) +
                                   " s, " + std::to_string(chunks.size()) + " chunks");

    struct Retire // whatever happens from here on, the evaluation's keys go
    {
        const FleetSettings & s;
        const std::string & fp;
        ~Retire() { retire(s.redis, fp, std::chrono::seconds(600)); }
    } retireAtEnd{settings_, fp};

    // A coordinator that died left its keys: they are not this run's.
    redis.command({"DEL", Keys::chunks(fp), Keys::results(fp), Keys::machines(fp), Keys::cancel(fp), Keys::evaluation(fp)});
    auto expiry = std::to_string(settings_.expiry.count());
    redis.command({"HSET", Keys::evaluation(fp), "v", std::to_string(protocolVersion), "claimTimeoutMs",
                   std::to_string(settings_.claimTimeout.count()), "maxAttempts", std::to_string(settings_.maxAttempts),
                   "chunkTimeoutMs", std::to_string(std::chrono::milliseconds(settings_.chunkTimeout).count()),
                   "maxMachines", std::to_string(settings_.maxMachines), "chunks", std::to_string(chunks.size())});
    redis.command({"XGROUP", "CREATE", Keys::chunks(fp), Keys::group, "0", "MKSTREAM"});
    // The results stream exists before any worker writes to it.
    auto lastId = redis.command({"XADD", Keys::results(fp), "*", "v", std::to_string(protocolVersion), "type", "opened"}).str;
    ChunkSpec spec{fp, 0, request.jobset, {}, request.restrictions, {}};
    for (auto & [name, input] : request.inputs) {
        auto pinned = input;
        pinned.path.clear(); // the worker's own checkout or path
        spec.inputs[name] = pinned;
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
        spec.index = i;
        spec.paths.clear();
        for (auto & p : chunks[i]) spec.paths.push_back(p.attrPath);
        redis.command({"XADD", Keys::chunks(fp), "*", "v", std::to_string(protocolVersion), "chunk", std::to_string(i),
                       "spec", encodeChunk(spec).dump()});
    }
    auto refreshExpiry = [&] {
        for (auto & key : {Keys::evaluation(fp), Keys::chunks(fp), Keys::results(fp)})
            redis.command({"EXPIRE", key, expiry});
    };
    refreshExpiry();
    redis.command({"SADD", Keys::evaluations(), fp});

    // The workers' answers, each attribute once: a chunk taken over from a
    // lost worker is evaluated again from its start.
    std::set<std::string> seen;
    std::vector<bool> finished(chunks.size(), false);
    std::map<size_t, std::string> lastFailure;
    size_t remaining = chunks.size();
    auto lastRefresh = Clock::now();
    auto finish = [&](size_t i, const std::string & why) {
        if (why.empty()) return;
        for (auto & p : chunks[i])
            if (seen.insert(p.attr).second) sink(environmentError(p, why));
    };
    while (remaining > 0) {
        if (cancelled_) throw std::runtime_error("cancelled");
        if (Clock::now() - lastRefresh > std::chrono::seconds(30)) {
            refreshExpiry();
            lastRefresh = Clock::now();
        }
        auto reply = redis.command({"XREAD", "COUNT", "1000", "BLOCK", "1000", "STREAMS", Keys::results(fp), lastId});
        for (auto & entry : streamEntries(reply)) {
            lastId = entry.id;
            auto & f = entry.fields;
            auto type = f["type"];
            // A chunk field that names none of ours (not a number, out of
            // range) makes a message that is ignored below.
            size_t chunk = chunks.size();
            auto & field = f["chunk"];
            std::from_chars(field.data(), field.data() + field.size(), chunk);
            if (type == "job") {
                json job;
                try {
                    // Redis is shared: a line nested deep enough to overflow
                    // a stack when it is freed is refused (the evaluator
                    // prints none deeper than maxJobLineDepth).
                    job = parseJson(f["job"], "a job line of chunk " + f["chunk"], maxJobLineDepth);
                } catch (JsonParseError & e) {
                    appendLog(request.logPath, std::string(e.what()) + " (from " + f["worker"] + ")");
                    continue;
                }
                if (!job.is_object() || !job.contains("attr") || !job["attr"].is_string()) continue;
                if (seen.insert(job["attr"].get<std::string>()).second) sink(std::move(job));
            } else if (chunk >= chunks.size() || finished[chunk]) {
                continue;
            } else if (type == "done") {
                finished[chunk] = true;
                --remaining;
                // Pushed: every job's closure is in the cache; when not, the
                // jobs' lines carry the push errors.
                appendLog(request.logPath, "chunk " + f["chunk"] + " (" + std::to_string(chunks[chunk].size()) +
                                               " paths) done by " + f["worker"] + " (pushed: " + f["pushed"] +
                                               "): " + f["stats"]);
            } else if (type == "failed") {
                lastFailure[chunk] = f["message"];
                appendLog(request.logPath, "chunk " + f["chunk"] + " failed on " + f["worker"] + ": " + f["message"]);
            } else if (type == "abandoned") {
                finished[chunk] = true;
                --remaining;
                auto why = "the fleet gave up this job's chunk after " + f["attempts"] +
                           " attempts (max-attempts): its workers were lost or failed" +
                           (lastFailure.count(chunk) ? " (last: " + lastFailure[chunk] + ")" : "");
                appendLog(request.logPath, "chunk " + f["chunk"] + " abandoned by " + f["worker"] + ": " + why);
                finish(chunk, why);
            }
        }
    }
    // The evaluator prints a line for every listed attribute; one that did
    // not come is missing, never silently.
    for (size_t i = 0; i < chunks.size(); ++i)
        finish(i, "the fleet's worker printed no line for this attribute, which --list-paths listed");
}

} // namespace evolive::fleet
