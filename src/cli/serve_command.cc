#include "serve_command.hh"

#include "push_session.hh"
#include "server.hh"
#include "stop_signals.hh"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <pthread.h>
#include <sys/resource.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

namespace evolive {

namespace {

struct ServeOptions
{
    std::string configFile;
    server::ServerConfig flags; // only the options given are applied
    std::vector<std::string> tokens, allowedPaths;
    bool noRestrictEval = false;
    size_t claimTimeoutSeconds = 60;
    size_t chunkTimeoutSeconds = 0;
    std::map<std::string, CLI::Option *> given;
};

bool given(const ServeOptions & o, const std::string & name)
{
    auto it = o.given.find(name);
    return it != o.given.end() && it->second->count() > 0;
}

int runServe(ServeOptions & o)
{
    // The log goes to stderr (spdlog's default is stdout).
    spdlog::set_default_logger(spdlog::stderr_color_mt("evolive"));
    server::ServerConfig config;
    try {
        if (!o.configFile.empty()) server::loadConfigFile(o.configFile, config);
        // Flags win over the file.
        auto & f = o.flags;
        if (given(o, "listen")) config.listen = f.listen;
        if (given(o, "state-dir")) config.stateDir = f.stateDir;
        if (given(o, "token")) config.tokens = o.tokens;
        if (given(o, "concurrency")) config.concurrency = f.concurrency;
        if (given(o, "max-workers")) config.maxWorkers = f.maxWorkers;
        if (given(o, "allow-path")) config.allowedPaths = o.allowedPaths;
        if (given(o, "cache")) config.push.cache = f.push.cache;
        if (given(o, "key")) config.push.keyFile = f.push.keyFile;
        if (given(o, "redis")) config.push.redis = f.push.redis;
        if (given(o, "daemon-socket")) config.push.daemonSocket = f.push.daemonSocket;
        if (given(o, "store-root")) config.push.storeRoot = f.push.storeRoot;
        if (given(o, "write-timeout")) config.writeTimeout = f.writeTimeout;
        if (given(o, "results")) config.results = f.results;
        if (given(o, "no-restrict-eval")) config.restrictions.restrictEval = !o.noRestrictEval;
        if (given(o, "allowed-uri")) config.restrictions.allowedUris = f.restrictions.allowedUris;
        if (given(o, "allow-import-from-derivation")) config.restrictions.importFromDerivation = true;
        if (given(o, "evaluator-env")) config.restrictions.evaluatorEnv = f.restrictions.evaluatorEnv;
        if (given(o, "evaluator-dir")) config.evaluatorDir = f.evaluatorDir;
        if (given(o, "fleet")) config.fleet.redis = f.fleet.redis;
        if (given(o, "chunk-size")) config.fleet.chunkSize = f.fleet.chunkSize;
        if (given(o, "max-machines")) config.fleet.maxMachines = f.fleet.maxMachines;
        if (given(o, "claim-timeout")) config.fleet.claimTimeout = std::chrono::seconds(o.claimTimeoutSeconds);
        if (given(o, "max-attempts")) config.fleet.maxAttempts = f.fleet.maxAttempts;
        if (given(o, "chunk-timeout")) config.fleet.chunkTimeout = std::chrono::seconds(o.chunkTimeoutSeconds);
        if (const char * tokens = getenv("EVOLIVE_TOKENS"); tokens && !given(o, "token")) {
            std::stringstream in(tokens);
            for (std::string token; std::getline(in, token, ',');)
                if (!token.empty()) config.tokens.push_back(token);
        }
        server::finishConfig(config);
        cache::evaluateIntoStoreRoot(config.push);
    } catch (std::exception & e) {
        std::cerr << "evolive serve: " << e.what() << "\n";
        return 2;
    }

    blockStopSignals();

    // Each connection costs a few descriptors (its socket, its io_context):
    // take what the hard limit allows, so that max-connections is reached
    // before the descriptors run out.
    if (rlimit files; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &files) != 0) spdlog::warn("cannot raise the open file limit: {}", strerror(errno));
    }

    std::unique_ptr<server::Server> server;
    try {
        server = std::make_unique<server::Server>(config);
    } catch (std::exception & e) {
        std::cerr << "evolive serve: " << e.what() << "\n";
        return 1;
    }
    onStopSignal([&server](int signal) {
        spdlog::info("{}: stopping", strsignal(signal));
        server->stop();
    });
    server->run();
    server->shutdown();
    spdlog::shutdown();
    // Connections still open may be mid-write: leave without destructors.
    std::_Exit(0);
}

} // namespace

void addServeCommand(CLI::App & app)
{
    auto o = std::make_shared<ServeOptions>();
    auto & f = o->flags;
    auto * cmd = app.add_subcommand("serve", "Serve evaluations and pushes over HTTP (docs/service.md)");
    cmd->add_option("--config", o->configFile, "a TOML configuration file; flags override it");
    o->given["listen"] = cmd->add_option("--listen", f.listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0: any free one)");
    o->given["state-dir"] = cmd->add_option("--state-dir", f.stateDir, "git mirrors, logs, results and the binary cache");
    o->given["token"] = cmd->add_option("--token", o->tokens, "a bearer token clients must send (repeatable; also $EVOLIVE_TOKENS, comma-separated)");
    o->given["concurrency"] = cmd->add_option("--concurrency", f.concurrency, "evaluations at once (default 1)")->check(CLI::PositiveNumber);
    o->given["max-workers"] = cmd->add_option("--max-workers", f.maxWorkers, "the most workers an evaluation may use (default: the cores)");
    o->given["allow-path"] = cmd->add_option("--allow-path", o->allowedPaths, "a directory whose subtrees `path` inputs may name (repeatable)");
    o->given["cache"] = cmd->add_option("--cache", f.push.cache, "the binary cache to push to: a directory or s3://BUCKET?... (default STATE/binary-cache)");
    o->given["key"] = cmd->add_option("--key", f.push.keyFile, "a secret key file to sign pushed paths with");
    o->given["redis"] = cmd->add_option("--redis", f.push.redis, "share push presence through Redis: redis://HOST:PORT or unix:///PATH");
    o->given["daemon-socket"] = cmd->add_option("--daemon-socket", f.push.daemonSocket, "the Nix daemon's socket");
    o->given["store-root"] = cmd->add_option("--store-root", f.push.storeRoot, "evaluate into a chroot store (Nix's local?root=DIR) that --daemon-socket's daemon serves; pushes read it there");
    o->given["results"] = cmd->add_option("--results", f.results, "where results are kept: a directory or s3://BUCKET?...&prefix=P (default STATE/results)");
    o->given["write-timeout"] = cmd->add_option("--write-timeout", f.writeTimeout, "seconds a client may take to read what it is sent (default 60)");
    // What evaluations may see (docs/security.md): loosened here or in the file only.
    o->given["no-restrict-eval"] = cmd->add_flag("--no-restrict-eval", o->noRestrictEval, "let expressions read files outside their inputs (Nix's restrict-eval off)");
    o->given["allowed-uri"] = cmd->add_option("--allowed-uri", f.restrictions.allowedUris, "a URI prefix expressions may fetch from (Nix's allowed-uris; repeatable)");
    o->given["allow-import-from-derivation"] = cmd->add_flag("--allow-import-from-derivation", f.restrictions.importFromDerivation, "let expressions build derivations while they are evaluated");
    o->given["evaluator-env"] = cmd->add_option("--evaluator-env", f.restrictions.evaluatorEnv, "an environment variable the evaluator may see besides Nix's own (repeatable)");
    o->given["evaluator-dir"] = cmd->add_option("--evaluator-dir", f.evaluatorDir, "the directory whose evolive-eval-jobs evaluates (e.g. the Nix 2.26 build's bin; default: beside evolive)");
    // The fleet (docs/fleet.md).
    o->given["fleet"] = cmd->add_option("--fleet", f.fleet.redis, "evaluate on a fleet of `evolive worker`s through this Redis: redis://HOST:PORT or unix:///PATH");
    o->given["chunk-size"] = cmd->add_option("--chunk-size", f.fleet.chunkSize, "attribute paths per chunk of a fleet evaluation (default 200)")->check(CLI::PositiveNumber);
    o->given["max-machines"] = cmd->add_option("--max-machines", f.fleet.maxMachines, "workers one fleet evaluation may use at once (default 0: any number)");
    o->given["chunk-timeout"] = cmd->add_option("--chunk-timeout", o->chunkTimeoutSeconds, "seconds one worker may spend on a fleet chunk before it stops and leaves it (a failed attempt; default 0: no limit)");
    o->given["claim-timeout"] = cmd->add_option("--claim-timeout", o->claimTimeoutSeconds, "seconds a fleet chunk may go without a sign of its worker before another takes it (default 60)")->check(CLI::PositiveNumber);
    o->given["max-attempts"] = cmd->add_option("--max-attempts", f.fleet.maxAttempts, "workers a fleet chunk may be given to before its jobs become errors (default 3)")->check(CLI::PositiveNumber);
    cmd->callback([o]() { throw CLI::RuntimeError(runServe(*o)); });
}

} // namespace evolive
