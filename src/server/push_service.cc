#include "push_service.hh"

#include <chrono>

namespace evolive::server {

std::string notADrvPath(const std::string & path)
{
    static const std::string store = "/nix/store/";
    static const std::string nix32 = "0123456789abcdfghijklmnpqrsvwxyz";
    if (path.rfind(store, 0) != 0) return "not in the Nix store (" + store + ")";
    auto base = path.substr(store.size());
    if (base.find('/') != std::string::npos) return "not a store path (it names a file inside one)";
    if (base.size() < 34 || base[32] != '-' || base.find_first_not_of(nix32) < 32) return "not a store path";
    if (base.size() < 5 || base.compare(base.size() - 4, 4, ".drv") != 0) return "not a .drv path";
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
        return {{"uploaded", summary.uploaded.size()},
                {"present", summary.present.size()},
                {"narBytes", summary.narBytes},
                {"fileBytes", summary.fileBytes},
                {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    } catch (std::exception & e) {
        return {{"error", e.what()}};
    }
}

} // namespace evolive::server
