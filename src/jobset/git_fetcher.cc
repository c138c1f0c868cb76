#include "git_fetcher.hh"

#include "fingerprint.hh"
#include "hash.hh"
#include "leftovers.hh"
#include "process.hh"

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace evolive {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// An exclusive lock on a file, held for the object's lifetime: one process
// at a time updates a mirror.
class FileLock
{
public:
    explicit FileLock(const std::string & path)
    {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0 || flock(fd_, LOCK_EX) != 0) throw FetchError("cannot lock " + path);
    }
    ~FileLock() { ::close(fd_); }

private:
    int fd_;
};

} // namespace

std::optional<std::string> localGitPath(const std::string & url)
{
    if (url.rfind("file://", 0) == 0) return percentDecode(url.substr(7), "git URL '" + url + "'");
    if (url.find("://") != std::string::npos) return std::nullopt;
    // git's scp-like syntax: a colon before any slash means host:path (ssh).
    auto colon = url.find(':');
    if (colon != std::string::npos && colon < url.find('/')) return std::nullopt;
    return url;
}

GitFetcher::GitFetcher(std::string stateDir, std::chrono::seconds timeout, LocalPathCheck checkLocal)
    : root_(std::move(stateDir) + "/git"), timeout_(timeout), checkLocal_(std::move(checkLocal))
{
    fs::create_directories(root_ + "/mirrors");
    fs::create_directories(root_ + "/checkouts");
    // Checkouts (with their submodules) of processes that died half-way:
    // looked for once per process and state directory.
    static std::mutex mutex;
    static std::set<std::string> cleaned;
    std::lock_guard lock(mutex);
    if (cleaned.insert(root_).second) removeLeftovers(root_ + "/checkouts", {".tmp-"});
}

std::string GitFetcher::git(const std::vector<std::string> & args, const std::string & what,
                            const std::optional<std::string> & cwd) const
{
    ProcessSpec spec;
    spec.argv = {"git"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.cwd = cwd;
    spec.timeout = timeout_;
    spec.env = {
        {"GIT_TERMINAL_PROMPT", "0"},
        {"GIT_ASKPASS", "/bin/false"},
        {"SSH_ASKPASS", "/bin/false"},
        {"GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=" + std::to_string(timeout_.count())},
        {"GIT_ALLOW_PROTOCOL", "https:http:ssh:git:file"},
        {"GIT_CONFIG_NOSYSTEM", "1"},
        {"GIT_CONFIG_GLOBAL", "/dev/null"},
        {"LC_ALL", "C"},
    };
    auto result = runProcess(spec);
    if (!result.ok()) {
        auto err = trim(result.err);
        throw FetchError(what + ": git " + result.describe(timeout_) + (err.empty() ? "" : ": " + err));
    }
    return result.out;
}

bool GitFetcher::gitOk(const std::vector<std::string> & args, const std::optional<std::string> & cwd) const
{
    try {
        git(args, "", cwd);
        return true;
    } catch (FetchError &) {
        return false;
    }
}

std::string GitFetcher::mirrorFor(const std::string & url) const
{
    return root_ + "/mirrors/" + nix::sha256Hex(url).substr(0, 32) + ".git";
}

std::optional<std::string> GitFetcher::checkLocal(const std::string & url, const std::string & what) const
{
    auto path = localGitPath(url);
    if (!path || !checkLocal_) return path;
    if (path->empty() || (*path)[0] != '/') throw FetchError(what + ": '" + url + "' is a relative path");
    if (auto why = checkLocal_(*path); !why.empty()) throw FetchError(what + ": " + why);
    return path;
}

void GitFetcher::updateSubmodules(const std::string & dir, const std::string & rev, std::vector<std::string> & local,
                                  int depth) const
{
    if (depth > 16) throw FetchError("the submodules of " + rev + " are nested more than 16 deep");
    // `init` writes each submodule's URL, relative ones resolved against
    // the superproject's origin, into .git/config: those are what git reads.
    git({"-C", dir, "submodule", "--quiet", "init"}, "reading the submodules of " + rev);
    std::string configured;
    try {
        configured = git({"-C", dir, "config", "--get-regexp", "^submodule\\..*\\.url$"}, "");
    } catch (FetchError &) {
        // None (git config exits 1 when nothing matches).
    }
    std::istringstream urls(configured);
    for (std::string line; std::getline(urls, line);) {
        auto space = line.find(' ');
        if (space == std::string::npos) continue;
        auto key = line.substr(0, space);
        auto name = key.substr(10, key.size() - 14); // submodule.NAME.url
        if (auto path = checkLocal(line.substr(space + 1), "submodule '" + name + "' of " + rev)) local.push_back(*path);
    }
    git({"-C", dir, "submodule", "--quiet", "update"}, "fetching the submodules of " + rev);
    std::istringstream paths(git({"-C", dir, "submodule", "--quiet", "foreach", "printf '%s\\n' \"$sm_path\""},
                                 "listing the submodules of " + rev));
    for (std::string path; std::getline(paths, path);)
        if (!path.empty()) updateSubmodules(dir + "/" + path, rev, local, depth + 1);
}

std::string GitFetcher::resolve(const GitSource & source) const
{
    checkLocal(source.url, "git URL");
    if (!source.rev.empty()) return source.rev;
    std::string ref = source.ref.empty() ? "HEAD" : source.ref;
    // The second pattern lists the commit an annotated tag points to.
    auto out = git({"ls-remote", "--", source.url, ref, ref + "^{}"}, "resolving '" + ref + "' of " + source.url);
    std::map<std::string, std::string> refs;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        auto tab = line.find('\t');
        if (tab != std::string::npos) refs[line.substr(tab + 1)] = line.substr(0, tab);
    }
    // A bare name can match a branch and a tag: the branch wins, as in git;
    // an annotated tag stands for the commit it points to.
    std::string best;
    for (auto & candidate : {ref, "refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref}) {
        if (auto i = refs.find(candidate); i != refs.end()) {
            best = i->second;
            break;
        }
    }
    if (best.empty()) throw FetchError("ref '" + ref + "' does not exist in " + source.url);
    return best;
}

FetchedGit GitFetcher::fetch(const GitSource & source, const std::string & rev) const
{
    checkLocal(source.url, "git URL");
    auto mirror = mirrorFor(source.url);
    FileLock lock(mirror + ".lock");
    if (!fs::exists(mirror + "/HEAD")) {
        fs::remove_all(mirror);
        git({"init", "--quiet", "--bare", "--", mirror}, "creating the mirror of " + source.url);
    }

    bool shallowMirror = fs::exists(mirror + "/shallow");
    bool emptyMirror = trim(git({"-C", mirror, "for-each-ref", "--count=1", "refs/evolive"}, "reading the mirror")).empty();
    bool have = gitOk({"-C", mirror, "cat-file", "-e", rev + "^{commit}"});
    bool unshallow = !source.shallow && shallowMirror;
    if (!have || unshallow) {
        std::vector<std::string> args{"-C", mirror, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head"};
        // A full mirror stays full (and then only new objects come);
        // otherwise a shallow fetch takes just the one commit.
        if (source.shallow && (emptyMirror || shallowMirror)) args.push_back("--depth=1");
        if (unshallow) args.push_back("--unshallow");
        args.insert(args.end(), {"--", source.url, rev});
        git(args, "fetching " + rev + " from " + source.url);
        // Keep what was fetched reachable for later evaluations.
        git({"-C", mirror, "update-ref", "refs/evolive/" + rev, rev}, "recording " + rev);
    }

    FetchedGit fetched;
    fetched.rev = rev;
    fetched.submodules = source.submodules;
    fetched.shallow = fs::exists(mirror + "/shallow");
    fetched.lastModified = std::stoll(trim(git({"-C", mirror, "log", "-1", "--format=%ct", rev, "--"}, "reading " + rev)));
    if (!fetched.shallow)
        fetched.revCount = std::stoull(trim(git({"-C", mirror, "rev-list", "--count", rev, "--"}, "counting " + rev)));

    auto checkout = root_ + "/checkouts/" + rev + (source.submodules ? "-submodules" : "");
    // A checkout with submodules records the local directories it read
    // (CHECKOUT.local): reused, they are vetted again, as the settings may
    // have changed since. One made before that record existed is made anew.
    if (source.submodules && checkLocal_ && fs::exists(checkout + ".complete")) {
        std::ifstream recorded(checkout + ".local");
        if (!recorded) fs::remove(checkout + ".complete");
        for (std::string path; std::getline(recorded, path);)
            if (auto why = checkLocal_(path); !why.empty()) throw FetchError("a submodule of " + rev + ": " + why);
    }
    if (!fs::exists(checkout + ".complete")) {
        auto tmp = checkout + ".tmp-" + std::to_string(getpid());
        fs::remove_all(tmp);
        // A repository borrowing the mirror's objects (it has no branches
        // for `git clone --shared` to follow).
        git({"init", "--quiet", "--", tmp}, "checking out " + rev);
        std::ofstream(tmp + "/.git/objects/info/alternates") << mirror << "/objects\n";
        if (fs::exists(mirror + "/shallow")) fs::copy_file(mirror + "/shallow", tmp + "/.git/shallow");
        git({"-C", tmp, "checkout", "--quiet", "--detach", rev, "--"}, "checking out " + rev);
        if (source.submodules) {
            // Relative submodule URLs are relative to the original remote.
            git({"-C", tmp, "remote", "add", "origin", "--", source.url}, "setting the origin");
            std::vector<std::string> local;
            updateSubmodules(tmp, rev, local);
            std::ofstream record(checkout + ".local", std::ios::trunc);
            for (auto & path : local) record << path << "\n";
        }
        // The source tree only, as Nix's fetchGit gives it: no .git anywhere.
        std::vector<fs::path> dotGits;
        for (auto & entry : fs::recursive_directory_iterator(tmp))
            if (entry.path().filename() == ".git") dotGits.push_back(entry.path());
        for (auto & p : dotGits) fs::remove_all(p);
        fs::remove_all(checkout);
        fs::rename(tmp, checkout);
        std::ofstream(checkout + ".complete").close();
    }
    fetched.path = checkout;
    return fetched;
}

std::string GitFetcher::defaultBranch(const std::string & url) const
{
    auto out = git({"ls-remote", "--symref", "--", url, "HEAD"}, "reading the default branch of " + url);
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        const std::string prefix = "ref: refs/heads/";
        auto tab = line.find('\t');
        if (line.rfind(prefix, 0) == 0 && tab != std::string::npos) return line.substr(prefix.size(), tab - prefix.size());
    }
    return "";
}

GitFetcher::Description GitFetcher::describe(const GitSource & source, const std::string & rev) const
{
    auto mirror = mirrorFor(source.url);
    FileLock lock(mirror + ".lock");
    git({"-C", mirror, "fetch", "--quiet", "--no-write-fetch-head", "--force", "--", source.url, "+refs/tags/*:refs/tags/*"},
        "fetching the tags of " + source.url);
    Description d;
    d.describe = trim(git({"-C", mirror, "describe", "--always", rev}, "describing " + rev));
    d.shortRev = trim(git({"-C", mirror, "rev-parse", "--short", rev}, "abbreviating " + rev));
    return d;
}

} // namespace evolive
