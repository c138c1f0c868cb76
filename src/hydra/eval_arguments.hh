// How inputs reach the expression, exactly as Hydra's script passes them to
// nix-eval-jobs (its inputsToArgs and buildInputToString), and the hash of
// those arguments that names an evaluation's inputs in jobsetevals.hash.
#pragma once

#include "fetched_input.hh"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::hydra {

// Every input's alternatives, by input name.
using InputInfo = std::map<std::string, std::vector<FetchedInput>>;

// Inputs Hydra's script refuses (several alternatives).
struct InputsError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

// `{ outPath = builtins.storePath /nix/store/...; inputType = "git"; uri = "..."; rev = "..."; ... }`
std::string inputAttrSet(const FetchedInput & input);

// `-I NAME=STOREPATH` and `--arg`/`--argstr` for each input, in name order.
// Throws InputsError for an input with several alternatives.
std::vector<std::string> inputsToArgs(const InputInfo & inputs);

// Nix 2.8's restricted evaluation lets `builtins.storePath` read only
// what the search path names: `-I` entries (under names no expression looks
// up) for the paths of `eval` inputs, which Hydra's arguments give no `-I`.
// Given to the evaluator after inputsToArgs' arguments; not part of the hash.
std::vector<std::string> allowedPathArgs(const InputInfo & inputs);

// jobsetevals.hash: the SHA-256 (hex) of the expression's input and path
// and the arguments, joined by spaces (as Perl interpolates "@args").
std::string argumentsHash(const std::optional<std::string> & nixExprInput, const std::optional<std::string> & nixExprPath,
                          const std::vector<std::string> & args);

} // namespace evolive::hydra
