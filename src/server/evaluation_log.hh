// The messages of one evaluation as it runs, shared by every client that
// streams it: a client that joins late reads from the first line, at its
// own pace, and the evaluation never waits for a client. Memory grows with
// the evaluation's output, not with the number of clients.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace evolive::server {

class EvaluationLog
{
public:
    // One JSON line, without its newline. `job` marks `job` messages.
    void append(std::string line, bool job);
    // Several `job` lines at once (a replay: one wake-up for many lines).
    void appendJobs(std::vector<std::string> lines);
    // No more lines will come.
    void close();

    struct Batch
    {
        std::string data; // whole lines, each ending in a newline
        size_t next = 0;  // where the next read starts
        bool end = false; // the log is closed and `next` is its end
    };
    // Waits until lines from `from` on exist or the log is closed, then
    // copies whole lines from `from` on, about `maxBytes` of them at most.
    Batch read(size_t from, size_t maxBytes);

    // The `job` lines so far.
    std::string jobs();

private:
    struct Line
    {
        std::string text;
        bool job;
    };
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Line> lines_;
    bool closed_ = false;
};

} // namespace evolive::server
