// evolive: one entrypoint for the evaluation service's commands.
#include "diff_command.hh"
#include "eval_command.hh"
#include "hydra_command.hh"
#include "push_command.hh"
#include "serve_command.hh"
#include "worker_command.hh"

#include <CLI/CLI.hpp>
#include <sodium.h>

int main(int argc, char ** argv)
{
    // Installed as hydra-eval-jobset, this is Hydra's program, argv and all.
    if (argc > 0 && evolive::startedAsHydraEvalJobset(argv[0])) return evolive::runAsHydraEvalJobset(argc, argv);
    CLI::App app{"evolive: an evaluation service for Nix jobsets"};
    app.set_version_flag("--version", std::string("evolive ") + EVOLIVE_VERSION);
    app.require_subcommand(1);
    evolive::addDiffCommand(app);
    evolive::addEvalCommand(app);
    evolive::addHydraCommand(app);
    evolive::addPushCommand(app);
    evolive::addServeCommand(app);
    evolive::addWorkerCommand(app);
    if (sodium_init() < 0) return 1;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    }
    return 0;
}
