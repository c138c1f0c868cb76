// `evolive worker`: one machine of a fleet (docs/fleet.md).
#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

void addWorkerCommand(CLI::App & app);

} // namespace evolive
