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
#include <optional>
#include <stdexcept>
#include <string>

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

class GitFetcher
{
public:
    // Mirrors and checkouts live under `stateDir`/git.
    GitFetcher(std::string stateDir, std::chrono::seconds timeout);

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

    std::string root_;
    std::chrono::seconds timeout_;
};

} // namespace evolive
