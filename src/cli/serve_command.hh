#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

// `evolive serve`: the HTTP service (docs/service.md).
void addServeCommand(CLI::App & app);

} // namespace evolive
