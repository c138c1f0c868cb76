// `evolive push`: push the closures of .drv files into a binary cache.
#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

void addPushCommand(CLI::App & app);

} // namespace evolive
