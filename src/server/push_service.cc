#include "push_service.hh"

#include "narinfo.hh"

#include <chrono>

namespace evolive::server {

std::string notADrvPath(const std::string & path)
{
    if (auto why = nix::whyNotStorePath(path); !why.empty()) return "not a store path: " + why;
    if (!path.ends_with(".drv")) return "not a .drv path";
    return "";
}

cache::PushSession & PushService::session()
{
    std::lock_guard lock(mutex_);
    if (!session_) session_ = std::make_unique<cache::PushSession>(settings_);
    return *session_;
}

nlohmann::json PushService::push(const std::string & drvPath)
{
    if (auto why = notADrvPath(drvPath); !why.empty()) return {{"error", "'" + drvPath + "' is " + why}};
    auto started = std::chrono::steady_clock::now();
    try {
        auto summary = session().pusher().push({drvPath});
        metrics_.pathsUploaded += summary.uploaded.size();
        metrics_.pathsPresent += summary.present.size();
        metrics_.pushedBytes += summary.fileBytes;
        return {{"uploaded", summary.uploaded.size()},
                {"present", summary.present.size()},
                {"narBytes", summary.narBytes},
                {"fileBytes", summary.fileBytes},
                {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    } catch (std::exception & e) {
        ++metrics_.pushFailures;
        return {{"error", e.what()}};
    }
}

std::map<std::string, std::pair<std::string, double>> PushService::gauges()
{
    cache::PusherLoad load;
    {
        std::lock_guard lock(mutex_);
        if (session_) load = session_->pusher().load();
    }
    return {{"evolive_pushes_running", {"Closure pushes walking or uploading now.", (double) load.pushes}},
            {"evolive_pushes_queued", {"Closure pushes waiting for their turn (closures).", (double) load.queuedPushes}},
            {"evolive_push_uploads", {"Store paths being uploaded now.", (double) load.uploads}}};
}

} // namespace evolive::server
