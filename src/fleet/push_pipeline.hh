// A worker's pushes, off the thread that reads the evaluator: each job
// line is handed in as the evaluator prints it, its .drv closure is pushed
// on one of a few threads while the evaluation goes on, and the line comes
// out again with the outcome in `push`, ready to be sent. So the evaluator
// never waits on the cache while there is room in the queue.
#pragma once

#include "pusher.hh"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace evolive::fleet {

class PushPipeline
{
public:
    // `threads` pushes at once; at most `queued` lines wait for a thread
    // (add() blocks beyond that).
    PushPipeline(cache::Pusher & pusher, size_t threads, size_t queued = 256);
    ~PushPipeline(); // finishes what was added

    void add(nlohmann::json job);
    // The lines pushed so far (taken out).
    std::vector<nlohmann::json> takeDone();
    // Waits for every line added; returns the rest.
    std::vector<nlohmann::json> finish();

    double pushSeconds() const { return pushSeconds_; } // summed over threads
    size_t pushErrors() const { return pushErrors_; }

private:
    void run();

    cache::Pusher & pusher_;
    size_t queued_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<nlohmann::json> waiting_;
    std::vector<nlohmann::json> done_;
    size_t busy_ = 0;
    bool closing_ = false;
    double pushSeconds_ = 0;
    size_t pushErrors_ = 0;
    std::vector<std::thread> threads_;
};

} // namespace evolive::fleet
