// evolive-eval-jobs: evaluates a Nix jobset with parallel worker processes
// and prints one JSON line per job, as nix-eval-jobs does.
#include "coordinator.hh"
#include "eval_args.hh"
#include "nix_api.hh"
#include "worker.hh"

#include <nix/globals.hh>
#include <nix/shared.hh>

#include <cstdlib>
#include <iostream>
#include <pthread.h>

int main(int argc, char ** argv)
{
    bool isWorker = getenv("EVOLIVE_EVAL_WORKER") != nullptr;
    std::vector<std::string> argvCopy(argv, argv + argc);

    if (isWorker) {
        // Workers run with a large main-thread stack (see coordinator.cc);
        // glibc would give every helper thread that much address space too,
        // which counts against --max-memory-hard.
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
        pthread_setattr_default_np(&attr);
    }

    return nix::handleExceptions(argv[0], [&]() {
        evolive::nix_api::initLibraries();

        evolive::EvalJobsArgs args;
        args.parseCmdline(nix::argvToStrings(argc, argv));
        if (args.helpRequested) {
            std::cout << "Usage: evolive-eval-jobs [options] FILE | --expr EXPR | --flake REF#ATTR\n\n"
                         "Options (and every Nix setting as --NAME VALUE):\n"
                         "  --workers N, --max-memory-size MiB, --max-memory-hard MiB, --gc-roots-dir DIR,\n"
                         "  --meta, --force-recurse, --constituents, --check-cache-status, --show-input-drvs,\n"
                         "  --no-instantiate, --select EXPR, --apply EXPR, --batch-size N, --reject-unused-args,\n"
                         "  --list-paths, --paths FILE, --serve-paths,\n"
                         "  --arg NAME EXPR, --argstr NAME STRING, -I PATH, --impure, --option NAME VALUE,\n"
                         "  --show-trace\n\n"
                         "See docs/evaluator.md for the output fields.\n";
            return;
        }
        args.validate();
        if (!args.flake.empty()) evolive::nix_api::setSetting("extra-experimental-features", "flakes");

        if (isWorker) {
            auto code = evolive::runWorker(args);
            if (code) throw nix::Exit(code);
            return;
        }
        unsetenv("EVOLIVE_EVAL_WORKER");
        evolive::Coordinator coordinator(args, argvCopy);
        auto code = coordinator.run();
        if (code) throw nix::Exit(code);
    });
}
