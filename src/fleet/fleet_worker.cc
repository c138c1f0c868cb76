#include "fleet_worker.hh"

#include "chunk_lease.hh"
#include "evaluator_session.hh"
#include "evaluation.hh"
#include "git_fetcher.hh"
#include "json_parse.hh"
#include "push_pipeline.hh"
#include "stream_reply.hh"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace evolive::fleet {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A worker joins an evaluation's machines, or refreshes its place there,
// unless max-machines others were seen within the claim timeout.
const char * const admitScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local cap = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or cap == 0 or redis.call('ZCARD', KEYS[1]) < cap then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
)lua";

double secondsSince(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hostName()
{
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    return host;
}

} // namespace

void workerLog(const std::string & line)
{
    std::cerr << "evolive worker: " + line + "\n" << std::flush;
}

struct Worker::Served
{
    std::string fingerprint;
    std::chrono::milliseconds claimTimeout{60000};
    std::chrono::milliseconds chunkTimeout{0}; // 0: none
    long long maxAttempts = 3;
};

Worker::Worker(WorkerSettings settings) : settings_(std::move(settings))
{
    checkRedisUrl(settings_.redis);
    if (settings_.name.empty()) settings_.name = hostName() + "-" + std::to_string(getpid());
    cache::evaluateIntoStoreRoot(settings_.push);
    fs::create_directories(settings_.stateDir + "/logs");
    push_ = std::make_unique<cache::PushSession>(settings_.push);
}

Worker::~Worker() = default;

void Worker::stop()
{
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (stopChunk_) stopChunk_();
    wake_.notify_all();
}

void Worker::pause(std::chrono::milliseconds d)
{
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, d, [&] { return stopping_.load(); });
}

void Worker::run()
{
    workerLog(settings_.name + ": serving " + settings_.redis + ", pushing to " + push_->cache().describe());
    auto backoff = std::chrono::milliseconds(100);
    bool wasDown = false;
    while (!stopping_) {
        try {
            RedisConnection redis(settings_.redis, std::chrono::seconds(5));
            if (wasDown) workerLog("Redis is back at " + settings_.redis);
            wasDown = false;
            backoff = std::chrono::milliseconds(100);
            while (!stopping_) serveOnce(redis);
        } catch (RedisError & e) {
            if (!wasDown) workerLog(std::string(e.what()) + "; trying again with backoff");
            wasDown = true;
            pause(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        }
    }
    workerLog(settings_.name + ": stopped");
}

void Worker::serveOnce(RedisConnection & redis)
{
    // The evaluations it may take chunks of now.
    std::vector<Served> served;
    for (auto & fp : redis.command({"SMEMBERS", Keys::evaluations()}).elements) {
        auto meta = redis.command({"HGETALL", Keys::evaluation(fp.str)});
        if (meta.elements.empty()) {
            // Expired: its coordinator is gone (a coordinator writes the
            // hash before it adds the fingerprint, so this is no race).
            redis.command({"SREM", Keys::evaluations(), fp.str});
            continue;
        }
        std::map<std::string, std::string> m;
        for (size_t i = 0; i + 1 < meta.elements.size(); i += 2) m[meta.elements[i].str] = meta.elements[i + 1].str;
        if (m["v"] != std::to_string(protocolVersion)) continue;
        if (redis.command({"EXISTS", Keys::cancel(fp.str)}).integer == 1) continue;
        Served s{fp.str};
        try {
            s.claimTimeout = std::chrono::milliseconds(std::stoll(m["claimTimeoutMs"]));
            s.maxAttempts = std::stoll(m["maxAttempts"]);
            if (m.count("chunkTimeoutMs")) s.chunkTimeout = std::chrono::milliseconds(std::stoll(m["chunkTimeoutMs"]));
            std::stoull(m["maxMachines"]);
        } catch (std::exception &) {
            continue; // not written by a coordinator of this version: not ours to serve
        }
        auto admitted = redis.command({"EVAL", admitScript, "1", Keys::machines(fp.str), settings_.name,
                                       m["maxMachines"], m["claimTimeoutMs"], "86400"});
        if (admitted.integer == 1) served.push_back(s);
    }
    // The evaluator kept for an evaluation that is over (or no longer ours)
    // ends: its memory is for the next one.
    if (session_ && std::none_of(served.begin(), served.end(),
                                 [&](auto & s) { return s.fingerprint == session_->fingerprint(); })) {
        workerLog("ending the evaluator for " + session_->fingerprint());
        session_.reset();
    }
    if (served.empty()) return pause(std::chrono::milliseconds(250));

    // First the chunks lost workers left idle past the claim timeout.
    for (auto & s : served) {
        auto key = Keys::chunks(s.fingerprint);
        auto claimed = redis.command(
            {"XAUTOCLAIM", key, Keys::group, settings_.name, std::to_string(s.claimTimeout.count()), "0-0", "COUNT", "1"},
            true);
        if (claimed.type != RedisReply::Type::Array || claimed.elements.size() < 2) continue; // gone meanwhile
        auto entries = entryList(claimed.elements[1]);
        if (entries.empty()) continue;
        auto & entry = entries[0];
        auto pending = redis.command({"XPENDING", key, Keys::group, entry.id, entry.id, "1"});
        long long deliveries = pending.elements.empty() ? 1 : pending.elements[0].elements.at(3).integer;
        if (deliveries > s.maxAttempts) {
            // It lost `maxAttempts` workers: given up, its jobs become errors.
            workerLog("chunk " + entry.fields["chunk"] + " of " + s.fingerprint + " given up after " +
                      std::to_string(deliveries - 1) + " attempts");
            redis.command({"XADD", Keys::results(s.fingerprint), "*", "v", std::to_string(protocolVersion), "type",
                           "abandoned", "chunk", entry.fields["chunk"], "worker", settings_.name, "attempts",
                           std::to_string(deliveries - 1)});
            redis.command({"XACK", key, Keys::group, entry.id});
            return;
        }
        workerLog("took over chunk " + entry.fields["chunk"] + " of " + s.fingerprint + " (attempt " +
                  std::to_string(deliveries) + ")");
        return runChunk(redis, s, entry, deliveries);
    }

    // Then new chunks: without waiting from every evaluation, then waiting
    // a moment on one of them (in turn).
    for (size_t round = 0; round < 2; ++round) {
        for (size_t k = 0; k < served.size(); ++k) {
            auto & s = served[(rotation_ + k) % served.size()];
            std::vector<std::string> args{"XREADGROUP", "GROUP", Keys::group, settings_.name, "COUNT", "1"};
            if (round == 1) args.insert(args.end(), {"BLOCK", "500"});
            args.insert(args.end(), {"STREAMS", Keys::chunks(s.fingerprint), ">"});
            auto reply = redis.command(args, true);
            if (reply.type == RedisReply::Type::Error) continue; // NOGROUP: cancelled meanwhile
            auto entries = readEntries(reply);
            if (entries.empty()) {
                if (round == 1) break;
                continue;
            }
            workerLog("took chunk " + entries[0].fields["chunk"] + " of " + s.fingerprint);
            return runChunk(redis, s, entries[0], 1);
        }
    }
    ++rotation_;
}

void Worker::runChunk(RedisConnection & redis, const Served & s, const StreamEntry & entry, long long attempt)
{
    auto & fp = s.fingerprint;
    auto chunkField = entry.fields.count("chunk") ? entry.fields.at("chunk") : "?";
    auto send = [&](std::vector<std::string> fields) {
        std::vector<std::string> args{"XADD", Keys::results(fp), "NOMKSTREAM", "*", "v", std::to_string(protocolVersion), "chunk",
                                      chunkField, "worker", settings_.name};
        args.insert(args.end(), fields.begin(), fields.end());
        redis.command(args);
    };

    std::mutex runningMutex; // guards the two below against the lease's thread and stop()
    EvaluatorSession * running = nullptr;
    std::string lostWhy;
    bool timedOut = false;
    auto lost = [&](const std::string & why, bool deadline) {
        std::lock_guard lock(runningMutex);
        lostWhy = why;
        timedOut = deadline;
        if (running) running->kill();
    };
    ChunkLease lease(settings_.redis, fp, entry.id, settings_.name, s.claimTimeout, s.chunkTimeout, lost);
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopChunk_ = [&] { lost("this worker is stopping; the chunk is left to be taken over", false); };
    }
    struct Forget // stop() and the lease must not reach this chunk once it is over
    {
        Worker & w;
        std::mutex & m;
        EvaluatorSession *& running;
        ~Forget()
        {
            {
                std::lock_guard lock(w.mutex_);
                w.stopChunk_ = nullptr;
            }
            std::lock_guard lock(m);
            running = nullptr;
            // An evaluator that failed or was stopped is not used again.
            if (w.session_ && !w.session_->usable()) w.session_.reset();
        }
    } forget{*this, runningMutex, running};

    auto started = Clock::now();
    size_t jobs = 0;
    try {
        // As deep as a jobset a server accepts (json_parse.hh's bound): the
        // spec nests a `json` input's value as the request body does.
        auto specJson = parseJson(entry.fields.at("spec"), "chunk " + chunkField + "'s spec");
        auto spec = decodeChunk(specJson);
        // Chunks of one evaluation differ in their paths only: they share
        // the evaluator, which keeps what it evaluated for the chunks before.
        specJson.erase("paths");
        specJson.erase("chunk");
        auto key = specJson.dump();
        if (!session_ || session_->key() != key || !session_->usable()) {
            session_.reset();
            session_ = startSession(spec, key);
        }
        {
            std::lock_guard lock(runningMutex);
            running = session_.get();
            if (!lostWhy.empty()) running->kill();
        }
        std::ofstream(session_->logPath(), std::ios::app)
            << "evolive worker: chunk " << chunkField << " (" << spec.paths.size() << " paths)\n";

        // The .drv files are on this machine only: the cache is how everyone
        // else gets them, so a line goes out after its push. Pushes run
        // beside the evaluation (PushPipeline), lines go out as they are ready.
        PushPipeline pushes(push_->pusher(), settings_.push.closures);
        auto sendReady = [&](std::vector<json> ready) {
            for (auto & job : ready) send({"type", "job", "job", jsonLine(job)});
        };
        session_->evaluate(json(spec.paths), [&](json job) {
            ++jobs;
            if (job.contains("drvPath") && job["drvPath"].is_string()) pushes.add(std::move(job));
            else send({"type", "job", "job", jsonLine(job)});
            sendReady(pushes.takeDone());
        });
        double evaluateSeconds = secondsSince(started);
        sendReady(pushes.finish());
        auto pushErrors = pushes.pushErrors();
        json stats{{"jobs", jobs},
                   {"paths", spec.paths.size()},
                   {"seconds", secondsSince(started)},
                   {"evaluateSeconds", evaluateSeconds},
                   {"pushSeconds", pushes.pushSeconds()},
                   {"pushWaitSeconds", secondsSince(started) - evaluateSeconds},
                   {"pushErrors", pushErrors},
                   {"attempt", attempt}};
        // Every job and its closure are out: only now is the chunk done.
        send({"type", "done", "pushed", pushErrors == 0 ? "true" : "false", "stats", stats.dump()});
        redis.command({"XACK", Keys::chunks(fp), Keys::group, entry.id});
        workerLog("chunk " + chunkField + " of " + fp + " done: " + stats.dump());
    } catch (RedisError &) {
        throw;
    } catch (std::exception & e) {
        std::string why = e.what();
        {
            std::lock_guard lock(runningMutex);
            if (!lostWhy.empty() && !timedOut) {
                // Lost (cancelled, taken over, this worker stopping): nothing to report.
                workerLog("chunk " + chunkField + " of " + fp + " stopped: " + lostWhy);
                return;
            }
            if (timedOut) why = lostWhy;
        }
        // Not acknowledged: after the claim timeout it is tried again (here
        // or elsewhere), up to max-attempts.
        workerLog("chunk " + chunkField + " of " + fp + " failed: " + why);
        send({"type", "failed", "message", why});
    }
}

std::unique_ptr<EvaluatorSession> Worker::startSession(const ChunkSpec & spec, const std::string & key)
{
    auto & fp = spec.fingerprint;
    auto jobset = spec.jobset;
    jobset.options.workers = settings_.workers;
    if (settings_.maxMemoryMiB) jobset.options.maxMemoryMiB = settings_.maxMemoryMiB;

    // The inputs at the coordinator's revisions, through this machine's mirrors.
    auto inputs = spec.inputs;
    GitFetcher fetcher(settings_.stateDir, settings_.gitTimeout);
    for (auto & [name, input] : inputs) {
        if (input.spec.type == InputType::Git) {
            input.git = fetcher.fetch(input.spec.git, input.git->rev);
            input.path = input.git->path;
        } else if (input.spec.type == InputType::Path) {
            input.path = input.spec.path;
            std::string hash;
            try {
                hash = hashDirectory(input.path);
            } catch (std::exception & e) {
                throw std::runtime_error("path input '" + name + "': " + input.path +
                                         " cannot be read on this machine: " + e.what());
            }
            if (hash != input.contentHash)
                throw std::runtime_error("path input '" + name + "': " + input.path +
                                         " on this machine differs from the coordinator's (content hash " + hash +
                                         ", expected " + input.contentHash + ")");
        }
    }
    auto logPath = settings_.stateDir + "/logs/" + fp + ".log";
    std::ofstream(logPath, std::ios::app) << "evolive worker: an evaluator for " << fp << "\n";
    JobSourceRequest request{jobset, inputs, expressionFile(jobset, inputs), fp, logPath, spec.restrictions,
                             fs::absolute(settings_.stateDir + "/evaluator-home").lexically_normal().string()};
    workerLog("starting an evaluator for " + fp);
    return std::make_unique<EvaluatorSession>(fp, key, evaluatorProcess(settings_.evaluatorDir, request, {"--serve-paths"}),
                                              logPath);
}

} // namespace evolive::fleet
