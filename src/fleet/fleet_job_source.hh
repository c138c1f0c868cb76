// The coordinator's side of a fleet evaluation (docs/fleet.md): lists the
// jobset's attribute paths here (`evolive-eval-jobs --list-paths`), puts
// chunks of them on the evaluation's Redis stream, and hands on the job
// lines the workers send back, each attribute once, until every chunk is
// done or given up. The workers push the .drv closures (pushes()).
#pragma once

#include "job_source.hh"
#include "protocol.hh"

#include <atomic>
#include <mutex>
#include <string>

namespace evolive::fleet {

class FleetJobSource : public JobSource
{
public:
    // `evaluatorDir`: where evolive-eval-jobs is, for the listing.
    FleetJobSource(FleetSettings settings, std::string evaluatorDir);
    void run(const JobSourceRequest & request, const JobSink & job) override;
    // Sets the evaluation's cancel flag and removes its chunks, so that
    // workers stop its work; run() then throws.
    void cancel() override;
    bool pushes() const override { return true; }

private:
    FleetSettings settings_;
    std::string evaluatorDir_;
    std::mutex mutex_; // guards the two below against cancel()
    std::string fingerprint_;
    JobSource * listing_ = nullptr;
    std::atomic<bool> cancelled_{false};
};

} // namespace evolive::fleet
