// `evolive hydra-eval-jobset PROJECT JOBSET`, and the same program under
// the name `hydra-eval-jobset` (Hydra's argv: exactly the two names).
#pragma once

#include <CLI/CLI.hpp>

namespace evolive {

void addHydraCommand(CLI::App & app);

// When this program was started as `hydra-eval-jobset`: runs it with
// Hydra's argv and returns the exit status.
int runAsHydraEvalJobset(int argc, char ** argv);

bool startedAsHydraEvalJobset(const char * argv0);

} // namespace evolive
