// Git inputs, as Hydra's GitInput plugin takes them: `URI [BRANCH]
// [DEEPCLONE] [key=value...]`. The revision comes from evolive's
// GitFetcher (one mirror per URL, below HYDRA_DATA/evolive); the checkout
// is added to the store the way nix-prefetch-git adds it, so the store path
// (and the evaluation's hash) is the one Hydra's script computes.
#include "input_fetch.hh"

#include "nix_store.hh"
#include "process.hh"

#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <unistd.h>

namespace evolive::hydra {

namespace fs = std::filesystem;

namespace {

bool isCommitHash(const std::string & s)
{
    static const std::regex hex("^[0-9a-f]{40}$");
    return std::regex_match(s, hex);
}

struct GitValue
{
    std::string uri;
    std::optional<std::string> branch;
    bool deepClone = false;
    std::map<std::string, std::string> options;
};

GitValue parseGitValue(const std::string & value)
{
    std::istringstream words(value);
    std::vector<std::string> parts;
    for (std::string w; words >> w;) parts.push_back(w);
    if (parts.empty()) throw FetchError("the git input's value is empty (expected `URI [BRANCH] [DEEPCLONE]')");
    GitValue v;
    v.uri = parts[0];
    size_t optionsFrom = 1;
    if (parts.size() > 1 && parts[1].find('=') == std::string::npos) {
        v.branch = parts[1];
        optionsFrom = 2;
    }
    // A third word with `=` is an option, not the deep-clone flag.
    if (optionsFrom == 2 && parts.size() > 2 && parts[2].find('=') == std::string::npos) {
        v.deepClone = true;
        optionsFrom = 3;
    }
    for (size_t i = optionsFrom; i < parts.size(); ++i) {
        auto eq = parts[i].find('=');
        if (eq == std::string::npos) throw FetchError("git input option `" + parts[i] + "' is not key=value");
        v.options[parts[i].substr(0, eq)] = parts[i].substr(eq + 1);
    }
    return v;
}

std::string uniqueSuffix()
{
    std::random_device rd;
    return std::to_string(getpid()) + "-" + std::to_string(rd());
}

// The checkout as a store path, named as nix-prefetch-git names it.
std::string addCheckout(const HydraSettings & settings, const std::string & checkout, const std::string & uri)
{
    auto tmp = settings.stateDir() + "/tmp/" + uniqueSuffix();
    fs::create_directories(tmp);
    auto dir = tmp + "/" + checkoutName(uri);
    try {
        // Hard links: no file is copied.
        ProcessSpec cp;
        cp.argv = {"cp", "-al", "--", checkout, dir};
        auto r = runProcess(cp);
        if (!r.ok()) throw FetchError("cannot stage " + checkout + " for the store: cp " + r.describe() + ": " + r.err);
        auto path = addFixedRecursive(dir);
        fs::remove_all(tmp);
        return path;
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
}

} // namespace

std::string checkoutName(const std::string & uri)
{
    std::string base = uri;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
    if (base.size() > 4 && base.substr(base.size() - 4) == ".git") base.resize(base.size() - 4);
    if (auto colon = base.find(':'); colon != std::string::npos) base = base.substr(colon + 1);
    for (auto & c : base)
        if (!(isalnum((unsigned char) c) || std::string("+-._?=").find(c) != std::string::npos)) c = '_';
    if (base.empty() || base[0] == '.') base = "source" + base;
    return base;
}

GitSource gitSourceForUri(const std::string & uri)
{
    if (uri.find("::") != std::string::npos || uri.find_first_of(" \t\n") != std::string::npos)
        throw JobsetError("`" + uri + "' is not a git URL (remote helpers and spaces are not allowed)");
    if (!uri.empty() && uri[0] == '/') return parseGitUrl("file://" + uri);
    if (uri.find("://") == std::string::npos) {
        // scp-like [user@]host:path
        static const std::regex scp("^([A-Za-z0-9._@-]+):(.+)$");
        std::smatch m;
        if (!std::regex_match(uri, m, scp) || uri[0] == '-')
            throw JobsetError("`" + uri + "' is not a git URL");
        std::string path = m[2];
        return parseGitUrl("ssh://" + std::string(m[1]) + (path[0] == '/' ? "" : "/~/") + path);
    }
    return parseGitUrl(uri);
}

ResolvedGitInput resolveGitInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    auto v = parseGitValue(value);
    ResolvedGitInput g;
    g.uri = v.uri;
    g.deepClone = v.deepClone;
    g.timeout = ctx.settings.gitTimeout(ctx.jobset.project, ctx.jobset.name, name);
    if (auto t = v.options.find("timeout"); t != v.options.end()) {
        try {
            g.timeout = std::chrono::seconds(std::stol(t->second));
        } catch (std::exception &) {
            throw FetchError("git input option timeout=" + t->second + " is not a number of seconds");
        }
    }
    try {
        g.source = gitSourceForUri(v.uri);
    } catch (JobsetError & e) {
        throw FetchError("input `" + name + "': " + e.what());
    }
    g.source.shallow = false; // Hydra's clones are full: revCount is always known
    GitFetcher fetcher(ctx.settings.stateDir(), g.timeout);

    if (v.branch) {
        g.branch = *v.branch;
    } else {
        try {
            g.branch = fetcher.defaultBranch(g.source.url);
        } catch (FetchError &) {
        }
        if (g.branch.empty()) g.branch = v.options.count("fallback_branch") ? v.options["fallback_branch"] : "master";
    }

    if (isCommitHash(g.branch)) {
        g.rev = g.branch;
    } else {
        if (!isSafeRef(g.branch)) throw FetchError("input `" + name + "': `" + g.branch + "' is not a valid branch name");
        GitSource ref = g.source;
        ref.ref = g.branch;
        try {
            g.rev = fetcher.resolve(ref);
        } catch (FetchError & e) {
            throw FetchError("error fetching latest change from git repo at `" + v.uri + "':\n" + e.what());
        }
    }
    return g;
}

FetchedInput fetchGitInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    auto g = resolveGitInput(ctx, name, value);
    GitFetcher fetcher(ctx.settings.stateDir(), g.timeout);
    if (g.deepClone)
        std::cerr << "input `" << name << "': deep clones are checked out like the others (without .git) by evolive\n";

    FetchedGit fetched;
    try {
        fetched = fetcher.fetch(g.source, g.rev);
    } catch (FetchError & e) {
        throw FetchError("error fetching latest change from git repo at `" + g.uri + "':\n" + e.what());
    }

    FetchedInput in;
    in.uri = g.uri;
    in.revision = g.rev;
    in.revCount = fetched.revCount.value_or(0);
    auto description = fetcher.describe(g.source, g.rev);
    in.gitTag = description.describe;
    in.shortRev = description.shortRev;

    // Hydra's cache: a revision is added to the store once.
    if (!g.deepClone) {
        pqxx::read_transaction tx(ctx.db);
        auto cached = tx.exec_params("select storepath, sha256hash from cachedgitinputs where uri = $1 and branch = $2 "
                                     "and revision = $3 and isdeepclone = false limit 1",
                                     g.uri, g.branch, g.rev);
        tx.commit();
        if (!cached.empty() && isValidPath(cached[0][0].as<std::string>())) {
            in.storePath = cached[0][0].as<std::string>();
            in.sha256hash = cached[0][1].as<std::string>();
            return in;
        }
    }
    std::cerr << "checking out Git branch " << g.branch << " from " << g.uri << "\n";
    in.storePath = addCheckout(ctx.settings, fetched.path, g.uri);
    auto hash = narHash(*in.storePath);
    in.sha256hash = hash.rfind("sha256:", 0) == 0 ? hash.substr(7) : hash; // as nix-prefetch-git prints it
    if (!g.deepClone) {
        pqxx::work tx(ctx.db);
        tx.exec_params("insert into cachedgitinputs (uri, branch, revision, isdeepclone, sha256hash, storepath) "
                       "values ($1, $2, $3, false, $4, $5) on conflict (uri, branch, revision, isdeepclone) "
                       "do update set sha256hash = excluded.sha256hash, storepath = excluded.storepath",
                       g.uri, g.branch, g.rev, *in.sha256hash, *in.storePath);
        tx.commit();
    }
    return in;
}

} // namespace evolive::hydra
