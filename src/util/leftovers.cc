#include "leftovers.hh"

#include <cerrno>
#include <filesystem>
#include <signal.h>
#include <unistd.h>

namespace evolive {

namespace fs = std::filesystem;

namespace {

bool running(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

// The process id after `marker` in `name`, or 0.
pid_t writerOf(const std::string & name, const std::string & marker)
{
    auto at = name.rfind(marker);
    if (at == std::string::npos) return 0;
    auto digits = name.substr(at + marker.size());
    digits = digits.substr(0, digits.find('-'));
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return (pid_t) std::stol(digits);
}

} // namespace

std::vector<std::string> removeLeftovers(const std::string & dir, const std::vector<std::string> & markers)
{
    std::vector<std::string> removed;
    std::error_code ec;
    for (auto & entry : fs::directory_iterator(dir, ec)) {
        auto name = entry.path().filename().string();
        for (auto & marker : markers) {
            pid_t pid = writerOf(name, marker);
            if (pid <= 0 || pid == getpid() || running(pid)) continue;
            std::error_code removing;
            fs::remove_all(entry.path(), removing);
            if (!removing) removed.push_back(entry.path().string());
            break;
        }
    }
    return removed;
}

} // namespace evolive
