// `evolive diff OLD NEW`: what changed between two evaluations, given as
// fingerprints (looked up where results are kept, also in S3) or as result
// files (docs/diff.md).
#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

void addDiffCommand(CLI::App & app);

} // namespace evolive
