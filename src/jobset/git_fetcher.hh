// Git inputs: a ref resolved on the remote, then fetched by revision into
// one local mirror per URL (shared by later evaluations, so only what is new
// is fetched), and checked out once per revision.
//
// git runs without a shell, with `--` before every URL and ref, only over
// https, http, ssh, git and file (GIT_ALLOW_PROTOCOL: no ext:: or other
// remote helpers), never prompting for credentials, and with a timeout.
#pragma once

#include "jobset.hh"

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive {

// A fetch that failed: unreachable, unknown ref, timeout. Fatal for the
// evaluation.
struct FetchError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct FetchedGit
{
    std::string rev;
    std::string path;                 // the checkout
    std::optional<uint64_t> revCount; // known for full (not shallow) fetches
    int64_t lastModified = 0;         // commit time, seconds since the epoch
    bool submodules = false;
    bool shallow = true;
};

// The directory a git URL names on this machine, as git reads it (a
// `file://` URL percent-decoded, or a plain path), or nullopt for a remote
// URL (https, ssh, `host:path`, ...). A relative path comes back as given.
std::optional<std::string> localGitPath(const std::string & url);

// Why git may not read the local directory `path` ("" when it may): the
// service's allowed-paths, applied to local repositories and submodules.
using LocalPathCheck = std::function<std::string(const std::string & path)>;

class GitFetcher
{
public:
    // Mirrors and checkouts live under `stateDir`/git. With `checkLocal`,
    // every local URL (the repository's own and its submodules', at any
    // depth) is vetted before git reads it; a refused one is a FetchError.
    GitFetcher(std::string stateDir, std::chrono::seconds timeout, LocalPathCheck checkLocal = {});

    // The revision `source` names now: its `rev`, or its ref (or HEAD) on the remote.
    std::string resolve(const GitSource & source) const;

    // Fetches `rev` (if the mirror lacks it) and returns its checkout.
    FetchedGit fetch(const GitSource & source, const std::string & rev) const;

    // The branch the remote's HEAD names (`git ls-remote --symref`), or ""
    // when it names none.
    std::string defaultBranch(const std::string & url) const;

    // `git describe --always` and `git rev-parse --short` of a fetched
    // `rev`, after fetching the remote's tags into its mirror (Hydra gives
    // expressions both, as `gitTag` and `shortRev`).
    struct Description
    {
        std::string describe, shortRev;
    };
    Description describe(const GitSource & source, const std::string & rev) const;

private:
    std::string git(const std::vector<std::string> & args, const std::string & what,
                    const std::optional<std::string> & cwd = std::nullopt) const;
    bool gitOk(const std::vector<std::string> & args, const std::optional<std::string> & cwd = std::nullopt) const;
    std::string mirrorFor(const std::string & url) const;
    // The local directory `url` names (vetted when there is a check), or
    // nullopt for a remote URL; throws FetchError naming `what` if refused.
    std::optional<std::string> checkLocal(const std::string & url, const std::string & what) const;
    // `git submodule update --init --recursive`, one level at a time, so
    // that each level's URLs are vetted before they are fetched; the local
    // directories read are added to `local`.
    void updateSubmodules(const std::string & dir, const std::string & rev, std::vector<std::string> & local,
                          int depth = 0) const;

    std::string root_;
    std::chrono::seconds timeout_;
    LocalPathCheck checkLocal_;
};

} // namespace evolive
