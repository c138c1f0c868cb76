#include "chunk_lease.hh"

#include "protocol.hh"
#include "redis_connection.hh"

#include <memory>

namespace evolive::fleet {

ChunkLease::ChunkLease(std::string redis, std::string fingerprint, std::string entryId, std::string consumer,
                       std::chrono::milliseconds claimTimeout, std::chrono::milliseconds deadline,
                       std::function<void(const std::string &, bool)> lost)
    : redis_(std::move(redis)), fingerprint_(std::move(fingerprint)), entryId_(std::move(entryId)),
      consumer_(std::move(consumer)), claimTimeout_(claimTimeout), deadline_(deadline), lost_(std::move(lost)),
      thread_([this] { run(); })
{
}

ChunkLease::~ChunkLease()
{
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    stopped_.notify_one();
    thread_.join();
}

std::string ChunkLease::check(std::unique_ptr<RedisConnection> & redis, bool renew)
{
    try {
        // A new connection when the last one failed: Redis may be back.
        if (!redis) redis = std::make_unique<RedisConnection>(redis_, std::chrono::seconds(2));
        if (redis->command({"EXISTS", Keys::cancel(fingerprint_)}).integer == 1) return "the evaluation was cancelled";
        if (redis->command({"EXISTS", Keys::chunks(fingerprint_)}).integer == 0) return "the evaluation's chunks are gone";
        auto pending = redis->command({"XPENDING", Keys::chunks(fingerprint_), Keys::group, entryId_, entryId_, "1"});
        if (pending.elements.empty()) return "the chunk is no longer pending (another worker finished it)";
        auto & owner = pending.elements[0].elements.at(1).str;
        if (owner != consumer_) return "the chunk was taken over by " + owner;
        if (renew) {
            redis->command({"XCLAIM", Keys::chunks(fingerprint_), Keys::group, consumer_, "0", entryId_, "JUSTID"});
            // Still one of the evaluation's machines (max-machines), by Redis's clock.
            redis->command({"EVAL",
                            "local t = redis.call('TIME') "
                            "redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])",
                            "1", Keys::machines(fingerprint_), consumer_});
        }
    } catch (RedisError &) {
        redis.reset(); // the chunk goes on; its results will wait for Redis in the worker's own connection
    }
    return "";
}

void ChunkLease::run()
{
    auto renewEvery = std::max(claimTimeout_ / 3, std::chrono::milliseconds(100));
    auto started = std::chrono::steady_clock::now(), lastRenew = started;
    std::unique_ptr<RedisConnection> redis;
    std::unique_lock lock(mutex_);
    while (!stop_) {
        auto wait = std::min<std::chrono::milliseconds>(renewEvery, std::chrono::seconds(1));
        if (stopped_.wait_for(lock, wait, [&] { return stop_; })) break;
        lock.unlock();
        bool renew = std::chrono::steady_clock::now() - lastRenew >= renewEvery - std::chrono::milliseconds(50);
        if (renew) lastRenew = std::chrono::steady_clock::now();
        bool timedOut = deadline_.count() > 0 && std::chrono::steady_clock::now() - started >= deadline_;
        auto why = timedOut ? "the chunk ran longer than chunk-timeout (" +
                                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(deadline_).count()) +
                                  " s) on this worker"
                            : check(redis, renew);
        lock.lock();
        if (!why.empty() && !stop_) {
            lock.unlock();
            lost_(why, timedOut);
            return;
        }
    }
}

} // namespace evolive::fleet
