// Pushing for the service: one PushSession (binary cache, daemon
// connections, presence cache, pusher) shared by every evaluation with
// `"push": true` and every `/v1/push` socket, opened on first use (and
// again after a failure to open, so that a daemon started later is found).
#pragma once

#include "push_session.hh"

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

namespace evolive::server {

class PushService
{
public:
    explicit PushService(cache::PushSettings settings) : settings_(std::move(settings)) {}

    // Pushes the closure of one .drv. The outcome, as `job.push` and the
    // push socket report it: {"uploaded": n, "present": m, "narBytes": b,
    // "fileBytes": f, "seconds": s}, or {"error": message}.
    nlohmann::json push(const std::string & drvPath);

    const cache::PushSettings & settings() const { return settings_; }

private:
    cache::PushSession & session();

    cache::PushSettings settings_;
    std::mutex mutex_;
    std::unique_ptr<cache::PushSession> session_;
};

// Why `path` cannot be a .drv store path ("" when it can): refused before
// the daemon is asked.
std::string notADrvPath(const std::string & path);

} // namespace evolive::server
