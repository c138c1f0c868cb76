// What `GET /metrics` reports, in the Prometheus text format. Counters only
// go up; gauges are read when the page is made.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace evolive::server {

class Metrics
{
public:
    std::atomic<uint64_t> evaluationsFinished{0}, evaluationsFailed{0}, evaluationsCancelled{0}, replays{0}, joins{0};
    std::atomic<uint64_t> jobs{0}, jobErrors{0};
    std::atomic<uint64_t> bytesStreamed{0}, clientsDropped{0};
    std::atomic<uint64_t> pushRequests{0}, pushErrors{0};
    // Closure pushes (for evaluations with push and for the push socket).
    std::atomic<uint64_t> pathsUploaded{0}, pathsPresent{0}, pushedBytes{0}, pushFailures{0};
    // Stored results not replayed (evaluated anew): damaged or tampered, or
    // holding errors caused by the environment.
    std::atomic<uint64_t> resultsDamaged{0}, resultsWithEnvironmentErrors{0};

    void evaluationTook(double seconds);
    void requestAnswered(unsigned status);

    // `gauges`: name → (help, value), read now (queued, running, ...).
    std::string render(const std::map<std::string, std::pair<std::string, double>> & gauges);

private:
    std::mutex mutex_;
    double evaluationSeconds_ = 0;
    uint64_t evaluationCount_ = 0;
    std::map<unsigned, uint64_t> responses_;
};

} // namespace evolive::server
