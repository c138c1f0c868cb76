// Fetching a jobset's inputs in Hydra's syntax, giving each the attributes
// Hydra's script gives it. A failure throws FetchError with the message
// that goes into jobsets.fetcherrormsg.
//
//   git       `URI [BRANCH] [DEEPCLONE] [timeout=N]`: the branch (the
//             remote's default branch when none is given) or a commit,
//             through evolive's GitFetcher, then added to the store as
//             nix-prefetch-git adds it; cached in cachedgitinputs
//   path      `PATH-OR-URL [SECONDS]`: added to the store; cached in
//             cachedpathinputs, its revision the time the content was first seen
//   string, nix, boolean   the value itself
//   build     `ID` or `[PROJECT:][JOBSET:]JOB [ATTR="VALUE" ...]`: the
//             latest successful build of that job
//   sysbuild  `[PROJECT:][JOBSET:]JOB`: its latest successful build per system
//   eval      `ID`, `PROJECT:JOBSET` or `PROJECT:JOBSET:JOB`: the `out`
//             paths of a finished evaluation's successful builds
#pragma once

#include "fetched_input.hh"
#include "git_fetcher.hh"
#include "jobset_record.hh"
#include "settings.hh"

#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <vector>

namespace evolive::hydra {

struct FetchContext
{
    pqxx::connection & db;
    const HydraSettings & settings;
    const JobsetRecord & jobset;
};

// Every alternative `value` of `input` gives (none for a build input
// without a build, several for sysbuild).
std::vector<FetchedInput> fetchInput(FetchContext & ctx, const JobsetInputRecord & input,
                                     const std::optional<std::string> & value);

FetchedInput fetchGitInput(FetchContext & ctx, const std::string & name, const std::string & value);
FetchedInput fetchPathInput(FetchContext & ctx, const std::string & name, const std::string & value);
std::vector<FetchedInput> fetchBuildInput(FetchContext & ctx, const std::string & name, const std::string & value);
std::vector<FetchedInput> fetchSysbuildInput(FetchContext & ctx, const std::string & name, const std::string & value);
FetchedInput fetchEvalInput(FetchContext & ctx, const std::string & name, const std::string & value);

// A git input's value resolved to a revision (`git ls-remote`; nothing
// is fetched): what both a fetch here and an evaluation on a server start from.
struct ResolvedGitInput
{
    std::string uri;            // as the value gives it
    GitSource source;           // as git takes it (full clones: shallow = false)
    std::string branch, rev;
    bool deepClone = false;
    std::chrono::seconds timeout{600};
};
ResolvedGitInput resolveGitInput(FetchContext & ctx, const std::string & name, const std::string & value);

// Hydra's `getPath`: true when `path` is valid in the store, after trying
// to copy it from eval_substituter when it is not.
bool ensurePath(const HydraSettings & settings, const std::string & path);

// The name nix-prefetch-git gives a checkout of `uri`: its last component
// without `.git` (and anything up to a `:`), with characters store paths
// cannot hold replaced by `_`.
std::string checkoutName(const std::string & uri);

// A Hydra git URI as git and evolive's GitFetcher take it: URLs as they
// are, `host:path` as ssh://host/path (home-relative: ssh://host/~/path),
// absolute paths as file:// URLs. Throws JobsetError for what git could
// take for an option or a transport other than https, http, ssh, git, file.
GitSource gitSourceForUri(const std::string & uri);

} // namespace evolive::hydra
