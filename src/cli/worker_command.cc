#include "worker_command.hh"

#include "evaluation.hh"
#include "fleet_worker.hh"
#include "stop_signals.hh"

#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <pthread.h>
#include <thread>

namespace evolive {

namespace {

struct WorkerOptions
{
    fleet::WorkerSettings settings;
};

int runWorker(WorkerOptions & o)
{
    auto & s = o.settings;
    if (s.stateDir.empty()) s.stateDir = defaultStateDir() + "/worker";
    s.evaluatorDir = std::filesystem::canonical("/proc/self/exe").parent_path();
    // SIGINT and SIGTERM stop the worker: a chunk under way is left to be
    // taken over by another.
    blockStopSignals();
    std::unique_ptr<fleet::Worker> worker;
    try {
        worker = std::make_unique<fleet::Worker>(s);
    } catch (std::exception & e) {
        std::cerr << "evolive worker: " << e.what() << "\n";
        return 1;
    }
    onStopSignal([&worker](int) { worker->stop(); });
    worker->run();
    return 0;
}

} // namespace

void addWorkerCommand(CLI::App & app)
{
    auto o = std::make_shared<WorkerOptions>();
    auto & s = o->settings;
    auto * cmd = app.add_subcommand("worker", "Evaluate chunks of fleet evaluations from Redis (docs/fleet.md)");
    cmd->add_option("--redis", s.redis, "the fleet's Redis: redis://HOST:PORT or unix:///PATH")->required();
    cmd->add_option("--cache", s.push.cache, "the shared binary cache every job's .drv closure is pushed to: a directory or s3://BUCKET?...")->required();
    cmd->add_option("--key", s.push.keyFile, "a secret key file to sign pushed paths with");
    cmd->add_option("--workers", s.workers, "evaluator processes (default 1)")->check(CLI::PositiveNumber);
    cmd->add_option("--max-memory-size", s.maxMemoryMiB, "MiB an evaluator process may grow to before it is restarted (default: the jobset's)");
    cmd->add_option("--state-dir", s.stateDir, "git mirrors, checkouts and the evaluators' logs (default: STATE/worker)");
    cmd->add_option("--name", s.name, "this worker's name in the fleet (default HOST-PID)");
    cmd->add_option("--daemon-socket", s.push.daemonSocket, "the Nix daemon's socket (default: $NIX_DAEMON_SOCKET_PATH, else /nix/var/nix/daemon-socket/socket)");
    cmd->add_option("--store-root", s.push.storeRoot,
                    "a chroot store (Nix's local?root=DIR) to evaluate into: the evaluator writes its .drv files "
                    "there and the pusher reads them there; --daemon-socket must name a daemon serving it");
    cmd->add_option("--uploads", s.push.uploads, "paths uploaded at once (default: one per core; 8 for S3)");
    cmd->callback([o]() { throw CLI::RuntimeError(runWorker(*o)); });
}

} // namespace evolive
