// Holds a chunk for the worker evaluating it: on a connection and thread
// of its own, it claims the entry again (XCLAIM ... JUSTID, which resets its
// idle time) every third of the claim timeout, so that only a dead or hung
// worker loses a chunk, and keeps its place among the evaluation's machines
// (max-machines); and once a second it looks whether the evaluation
// was cancelled or the chunk taken over, or whether the chunk has run past
// its deadline (chunk-timeout), and then calls `lost`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace evolive::fleet {

class RedisConnection;

class ChunkLease
{
public:
    // `lost(why, timedOut)`: `timedOut` when the chunk ran past `deadline`
    // (0: none) rather than being lost to another worker or a cancel.
    ChunkLease(std::string redis, std::string fingerprint, std::string entryId, std::string consumer,
               std::chrono::milliseconds claimTimeout, std::chrono::milliseconds deadline,
               std::function<void(const std::string & why, bool timedOut)> lost);
    ~ChunkLease(); // stops the thread
    ChunkLease(const ChunkLease &) = delete;
    ChunkLease & operator=(const ChunkLease &) = delete;

private:
    void run();
    // One look; returns why the chunk is lost, or "".
    std::string check(std::unique_ptr<RedisConnection> & redis, bool renew);

    std::string redis_, fingerprint_, entryId_, consumer_;
    std::chrono::milliseconds claimTimeout_, deadline_;
    std::function<void(const std::string &, bool)> lost_;
    std::mutex mutex_;
    std::condition_variable stopped_;
    bool stop_ = false;
    std::thread thread_; // last: started once the rest is ready
};

} // namespace evolive::fleet
