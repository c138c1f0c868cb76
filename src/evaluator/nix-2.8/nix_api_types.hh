// The types of nix_api.hh's seam that differ by name between Nix versions,
// here for Nix 2.8. Included through the include path that CMake sets to
// src/evaluator/nix-${EVOLIVE_NIX}.
#pragma once

#include <nix/args.hh>
#include <nix/shared.hh> // nix::Exit

namespace evolive::nix_api {

// The base of a program's own command line, the one with parseCmdline().
using RootArgs = nix::Args;

} // namespace evolive::nix_api
