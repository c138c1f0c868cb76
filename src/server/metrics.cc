#include "metrics.hh"

#include <sstream>

namespace evolive::server {

void Metrics::evaluationTook(double seconds)
{
    std::lock_guard lock(mutex_);
    evaluationSeconds_ += seconds;
    ++evaluationCount_;
}

void Metrics::requestAnswered(unsigned status)
{
    std::lock_guard lock(mutex_);
    ++responses_[status];
}

std::string Metrics::render(const std::map<std::string, std::pair<std::string, double>> & gauges)
{
    std::ostringstream out;
    auto metric = [&](const std::string & name, const char * type, const std::string & help) {
        out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    };
    for (auto & [name, gauge] : gauges) {
        metric(name, "gauge", gauge.first);
        out << name << " " << gauge.second << "\n";
    }
    metric("evolive_evaluations_total", "counter", "Evaluations that ended, by outcome.");
    out << "evolive_evaluations_total{outcome=\"finished\"} " << evaluationsFinished << "\n"
        << "evolive_evaluations_total{outcome=\"failed\"} " << evaluationsFailed << "\n"
        << "evolive_evaluations_total{outcome=\"cancelled\"} " << evaluationsCancelled << "\n";
    struct Counter
    {
        const char * name;
        const std::atomic<uint64_t> & value;
        const char * help;
    };
    for (auto & c : {Counter{"evolive_replays_total", replays, "Requests answered from a stored result."},
                     Counter{"evolive_joins_total", joins, "Requests that joined a running evaluation."},
                     Counter{"evolive_jobs_total", jobs, "Jobs found by evaluations (replays not counted)."},
                     Counter{"evolive_job_errors_total", jobErrors, "Jobs that were evaluation errors."},
                     Counter{"evolive_stream_bytes_total", bytesStreamed, "Bytes of evaluation streams sent to clients."},
                     Counter{"evolive_clients_dropped_total", clientsDropped, "Clients dropped for not reading (write timeout)."},
                     Counter{"evolive_push_requests_total", pushRequests, "Push requests received on /v1/push."},
                     Counter{"evolive_push_errors_total", pushErrors, "Push requests answered with an error."},
                     Counter{"evolive_push_failures_total", pushFailures,
                             "Closure pushes that failed (evaluations' jobs and push requests)."},
                     Counter{"evolive_pushed_bytes_total", pushedBytes, "Bytes uploaded to the binary cache (compressed)."}}) {
        metric(c.name, "counter", c.help);
        out << c.name << " " << c.value << "\n";
    }
    metric("evolive_pushed_paths_total", "counter",
           "Store paths of pushed closures, by outcome: uploaded, or found in the cache already.");
    out << "evolive_pushed_paths_total{outcome=\"uploaded\"} " << pathsUploaded << "\n"
        << "evolive_pushed_paths_total{outcome=\"present\"} " << pathsPresent << "\n";
    metric("evolive_stored_results_refused_total", "counter",
           "Stored results evaluated anew instead of replayed, by reason: damaged (or tampered), or environment errors.");
    out << "evolive_stored_results_refused_total{reason=\"damaged\"} " << resultsDamaged << "\n"
        << "evolive_stored_results_refused_total{reason=\"environment\"} " << resultsWithEnvironmentErrors << "\n";
    std::lock_guard lock(mutex_);
    metric("evolive_evaluation_duration_seconds", "summary", "Time from start to end of evaluations that ran.");
    out << "evolive_evaluation_duration_seconds_sum " << evaluationSeconds_ << "\n"
        << "evolive_evaluation_duration_seconds_count " << evaluationCount_ << "\n";
    metric("evolive_http_responses_total", "counter", "HTTP responses, by status code.");
    for (auto & [status, n] : responses_) out << "evolive_http_responses_total{code=\"" << status << "\"} " << n << "\n";
    return out.str();
}

} // namespace evolive::server
