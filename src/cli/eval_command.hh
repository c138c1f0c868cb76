// `evolive eval`: evaluate a jobset (or a Nix file, or an expression) and
// print the stream of JSON lines, with no server.
#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

void addEvalCommand(CLI::App & app);

} // namespace evolive
