#include "nix_store.hh"

#include "process.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sstream>
#include <unistd.h>

namespace evolive::hydra {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string lastLine(const std::string & out)
{
    auto s = trim(out);
    auto nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
}

ProcessResult run(std::vector<std::string> argv, std::chrono::seconds timeout = std::chrono::seconds(3600))
{
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = timeout;
    try {
        return runProcess(spec);
    } catch (std::exception & e) {
        throw StoreError(e.what());
    }
}

std::string checked(const std::vector<std::string> & argv, const std::string & what)
{
    auto r = run(argv);
    if (!r.ok()) throw StoreError(what + ": " + argv[0] + " " + r.describe() + (r.err.empty() ? "" : ": " + trim(r.err)));
    return r.out;
}

} // namespace

std::string baseName(const std::string & storePath)
{
    auto slash = storePath.rfind('/');
    return slash == std::string::npos ? storePath : storePath.substr(slash + 1);
}

std::string addToStore(const std::string & path)
{
    return lastLine(checked({"nix-store", "--add", "--", path}, "cannot add path " + path + " to the Nix store"));
}

std::string addFixedRecursive(const std::string & dir)
{
    return lastLine(checked({"nix-store", "--add-fixed", "--recursive", "sha256", "--", dir},
                            "cannot add " + dir + " to the Nix store"));
}

std::string narHash(const std::string & storePath)
{
    return lastLine(checked({"nix-store", "--query", "--hash", "--", storePath}, "cannot query " + storePath));
}

bool isValidPath(const std::string & storePath)
{
    return run({"nix-store", "--check-validity", "--", storePath}).ok();
}

std::set<std::string> invalidPaths(const std::vector<std::string> & paths)
{
    std::set<std::string> invalid;
    // In chunks, to stay below the argument list limit.
    for (size_t i = 0; i < paths.size(); i += 2000) {
        std::vector<std::string> argv{"nix-store", "--check-validity", "--print-invalid", "--"};
        argv.insert(argv.end(), paths.begin() + i, paths.begin() + std::min(paths.size(), i + 2000));
        auto out = checked(argv, "cannot check store paths");
        std::istringstream lines(out);
        for (std::string l; std::getline(lines, l);)
            if (!l.empty()) invalid.insert(l);
    }
    return invalid;
}

void copyFrom(const std::string & from, const std::vector<std::string> & paths, bool derivations,
              std::chrono::seconds timeout)
{
    for (size_t i = 0; i < paths.size(); i += 2000) {
        std::vector<std::string> argv{"nix", "--extra-experimental-features", "nix-command", "copy", "--from", from};
        if (derivations) argv.push_back("--derivation");
        argv.push_back("--");
        argv.insert(argv.end(), paths.begin() + i, paths.begin() + std::min(paths.size(), i + 2000));
        auto r = run(argv, timeout);
        if (!r.ok())
            throw StoreError("cannot copy " + std::to_string(paths.size()) + " paths from " + from + ": nix copy " +
                             r.describe(timeout) + (r.err.empty() ? "" : ": " + trim(r.err)));
    }
}

void registerRoot(const std::string & dir, const std::string & storePath)
{
    auto link = dir + "/" + baseName(storePath);
    std::error_code ec;
    if (fs::exists(fs::symlink_status(link, ec))) return;
    int fd = ::open(link.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw StoreError("cannot create GC root `" + link + "' to `" + storePath + "': " + strerror(errno));
    ::close(fd);
}

} // namespace evolive::hydra
