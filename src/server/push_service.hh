// Pushing for the service: one PushSession (binary cache, daemon
// connections, presence cache, pusher) shared by every evaluation with
// `"push": true` and every `/v1/push` socket, opened on first use (and
// again after a failure to open, so that a daemon started later is found).
#pragma once

#include "metrics.hh"
#include "push_session.hh"

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

namespace evolive::server {

class PushService
{
public:
    // Counts what it pushes in `metrics`.
    PushService(cache::PushSettings settings, Metrics & metrics) : settings_(std::move(settings)), metrics_(metrics) {}

    // Pushes the closure of one .drv. The outcome, as `job.push` and the
    // push socket report it: {"uploaded": n, "present": m, "narBytes": b,
    // "fileBytes": f, "seconds": s}, or {"error": message}.
    nlohmann::json push(const std::string & drvPath);

    const cache::PushSettings & settings() const { return settings_; }

    // For /metrics: pushes running and waiting their turn, uploads under way.
    std::map<std::string, std::pair<std::string, double>> gauges();

private:
    cache::PushSession & session();

    cache::PushSettings settings_;
    Metrics & metrics_;
    std::mutex mutex_;
    std::unique_ptr<cache::PushSession> session_;
};

// Why `path` cannot be a .drv store path ("" when it can): refused before
// the daemon is asked.
std::string notADrvPath(const std::string & path);

} // namespace evolive::server
