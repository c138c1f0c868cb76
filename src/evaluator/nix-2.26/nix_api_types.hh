// The types of nix_api.hh's seam that differ by name between Nix versions,
// here for Nix 2.26. Included through the include path that CMake sets to
// src/evaluator/nix-${EVOLIVE_NIX}.
#pragma once

#include <nix/args/root.hh>
#include <nix/exit.hh>
#include <nix/shared.hh>

namespace evolive::nix_api {

// The base of a program's own command line, the one with parseCmdline()
// (split out of nix::Args in Nix 2.19).
using RootArgs = nix::RootArgs;

} // namespace evolive::nix_api
