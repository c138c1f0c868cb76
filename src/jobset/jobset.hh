// A jobset: named inputs and the expression to evaluate inside one of them,
// parsed from the JSON documented in docs/jobsets.md. Parsing checks every
// field and names the offending one in its error.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive {

// A jobset that cannot be used as given; the message names the field.
struct JobsetError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

enum class InputType { Git, Path, Nix, Json, String, Boolean };

std::string inputTypeName(InputType type);

struct GitSource
{
    std::string url;        // the transport URL, as git takes it (https://..., file:///...)
    std::string ref;        // a branch or tag name; "" means the remote's HEAD
    std::string rev;        // a full commit hash, when pinned
    bool shallow = true;
    bool submodules = false;
};

struct JobsetInput
{
    InputType type = InputType::String;
    GitSource git;          // type Git
    std::string path;       // type Path: a directory (made absolute by parseJobset)
    nlohmann::json value;   // Nix (expression text), Json, String, Boolean
};

struct JobsetExpression
{
    std::string input;      // the input that holds the file
    std::string path;       // relative to that input
};

struct EvalOptions
{
    // Change the result, so they are part of the fingerprint:
    bool meta = false;
    bool constituents = false;
    bool forceRecurse = false;
    bool checkCacheStatus = false;
    bool showTrace = false;
    std::string evaluator = "evolive-eval-jobs"; // or nix-eval-jobs, lix-eval-jobs
    // Do not change the jobs, so they are left out of the fingerprint:
    size_t workers = 1;
    size_t maxMemoryMiB = 4096;
    bool push = false; // push each job's .drv closure to the binary cache as it is found
    // Evaluate on the server's fleet (docs/fleet.md); unset: on the fleet
    // when the server has one. The result is the same either way.
    std::optional<bool> fleet;
};

// What an evaluation may see, set by whoever runs evaluations (the
// server's settings, `evolive eval`'s flags), never by the jobset. The
// defaults are Hydra's: Nix's restricted mode, no URLs, no import from
// derivation, and only the environment Nix needs (docs/security.md).
struct EvalRestrictions
{
    bool restrictEval = true;                // Nix's restrict-eval: only the inputs can be read
    std::vector<std::string> allowedUris;    // Nix's allowed-uris: URI prefixes fetchers may use
    bool importFromDerivation = false;       // Nix's allow-import-from-derivation
    std::vector<std::string> evaluatorEnv;   // more environment variables the evaluator sees
};

struct Jobset
{
    std::map<std::string, JobsetInput> inputs;
    JobsetExpression expression;
    EvalOptions options;
};

// Throws JobsetError. Relative `path` inputs are taken relative to `baseDir`
// (the jobset file's folder).
Jobset parseJobset(const nlohmann::json & document, const std::string & baseDir = "");

// Parses a libfetchers-style git URL (`git+https://host/repo?ref=main`,
// with `ref`, `rev`, `shallow`, `submodules`), refusing transports other
// than https, http, ssh, git and file, and anything git could take as an
// option. Throws JobsetError.
GitSource parseGitUrl(const std::string & url);

// `s` with %XX escapes decoded; throws JobsetError naming `where` for a
// malformed one.
std::string percentDecode(const std::string & s, const std::string & where);

// True for a ref git accepts and that cannot be taken for an option.
bool isSafeRef(const std::string & ref);

} // namespace evolive
