// A Hydra jobset as a jobset for an `evolive serve` (docs/jobsets.md), for
// evolive_server: git inputs become git inputs pinned to the revision their
// branch has now (resolved here with `git ls-remote`, fetched only by the
// server), path inputs path inputs (the server must see the same
// directory), string, boolean and nix values the same types. The server
// evaluates with Hydra's options (meta, constituents, forced recursion,
// Hydra's workers and memory limit) and pushes every job's .drv closure to
// its binary cache.
#pragma once

#include "eval_arguments.hh"
#include "input_fetch.hh"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace evolive::hydra {

// Why this jobset is evaluated here although a server is configured (a
// flake, or inputs that are this machine's store paths), or nothing.
std::optional<std::string> whyNotRemote(const JobsetRecord & jobset);

struct RemotePlan
{
    nlohmann::json jobset; // the request's body
    InputInfo inputs;      // what jobsetevalinputs records
    std::string hash;      // jobsetevals.hash: evolive's fingerprint of the request
};

// Throws FetchError (a ref that does not resolve, a missing directory,
// malformed values) or InputsError (several alternatives).
RemotePlan planRemote(FetchContext & ctx);

} // namespace evolive::hydra
