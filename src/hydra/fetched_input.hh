// One alternative of a jobset input after fetching, with the attributes
// Hydra's script gives it (its `$inputInfo` entries): what reaches the
// expression (eval_arguments.hh) and what is recorded in jobsetevalinputs.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace evolive::hydra {

struct FetchedInput
{
    std::string type;                      // the jobset input's type
    std::optional<std::string> storePath;  // git, path, build, sysbuild
    std::optional<std::string> uri;        // git and path: the value's URI
    std::optional<std::string> revision;   // git: the commit; path: "YYYYmmddHHMMSS:sha256:..."
    std::optional<long> revCount;          // git
    std::optional<std::string> gitTag;     // git: `git describe --always`
    std::optional<std::string> shortRev;   // git: `git rev-parse --short`
    std::optional<std::string> version;    // build, sysbuild: from the build's name
    std::optional<std::string> outputName; // build
    std::optional<std::string> drvPath;    // build, when valid here
    std::optional<std::string> system;     // sysbuild
    std::optional<std::string> value;      // string, boolean, nix
    std::optional<std::string> sha256hash; // git (base-32), path (sha256:base-32)
    std::optional<int> id;                 // build, sysbuild: the build used
    std::optional<std::map<std::string, std::string>> jobs; // eval: job name to its `out` path
};

} // namespace evolive::hydra
