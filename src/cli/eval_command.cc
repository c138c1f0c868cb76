#include "eval_command.hh"

#include "evaluation.hh"
#include "fingerprint.hh"
#include "hash.hh"
#include "jobset.hh"
#include "push_session.hh"
#include "s3_result_store.hh"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace evolive {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct EvalCommandOptions
{
    std::string target;
    std::string expr;
    std::string stateDir;
    size_t workers = 0;
    int gitTimeout = 60;
    bool progress = false;
    bool noProgress = false;
    bool push = false;
    bool force = false;
    std::string results; // "": STATE/results; a directory or s3://BUCKET?...
    std::string evaluatorDir; // "": beside this program
    bool noRestrictEval = false;
    EvalRestrictions restrictions;
    cache::PushSettings pushTo; // cache "" means STATE/binary-cache
};

// A Nix file (or expression) without a jobset: its folder is a path input
// named `src`, and the expression is the file.
Jobset jobsetForFile(const std::string & file)
{
    auto absolute = fs::absolute(file);
    return parseJobset(json{
        {"inputs", {{"src", {{"type", "path"}, {"path", absolute.parent_path().string()}}}}},
        {"expression", {{"input", "src"}, {"path", absolute.filename().string()}}},
    });
}

Jobset loadJobset(const EvalCommandOptions & o)
{
    if (!o.expr.empty()) {
        // The expression becomes a file named by its hash, so that its
        // fingerprint is the same every time.
        auto dir = o.stateDir + "/expressions/" + nix::sha256Hex(o.expr).substr(0, 32);
        fs::create_directories(dir);
        std::ofstream(dir + "/default.nix") << o.expr;
        return jobsetForFile(dir + "/default.nix");
    }
    if (fs::path(o.target).extension() == ".nix") return jobsetForFile(o.target);
    std::ifstream in(o.target);
    if (!in) throw JobsetError(o.target + ": cannot be read");
    auto document = json::parse(in, nullptr, false);
    if (document.is_discarded()) throw JobsetError(o.target + ": not valid JSON");
    return parseJobset(document, fs::absolute(o.target).parent_path().string());
}

int runEvalCommand(EvalCommandOptions & o)
{
    if (o.target.empty() == o.expr.empty()) {
        std::cerr << "evolive eval: give a jobset (.json), a Nix file (.nix), or --expr EXPR\n";
        return 2;
    }
    if (o.stateDir.empty()) o.stateDir = defaultStateDir();

    Jobset jobset;
    try {
        jobset = loadJobset(o);
    } catch (std::exception & e) {
        std::cout << json{{"type", "failed"}, {"stage", "parse"}, {"message", e.what()}}.dump() << std::endl;
        return 1;
    }
    if (o.workers) jobset.options.workers = o.workers;
    if (o.push) jobset.options.push = true;

    EvaluationSettings settings;
    settings.stateDir = o.stateDir;
    settings.gitTimeout = std::chrono::seconds(o.gitTimeout);
    settings.force = o.force;
    settings.restrictions = o.restrictions;
    settings.restrictions.restrictEval = !o.noRestrictEval;
    try {
        settings.evaluatorDir = evaluatorDirFor(o.evaluatorDir);
        settings.results = results::openResultStore(o.results, o.stateDir);
    } catch (std::exception & e) {
        std::cout << json{{"type", "failed"}, {"stage", "prepare"}, {"message", e.what()}}.dump() << std::endl;
        return 1;
    }

    // Pushing: one daemon connection and one presence cache for the whole
    // evaluation, so that shared dependencies are looked at once.
    std::unique_ptr<cache::PushSession> pushSession;
    if (jobset.options.push) {
        try {
            if (o.pushTo.cache.empty()) o.pushTo.cache = o.stateDir + "/binary-cache";
            pushSession = std::make_unique<cache::PushSession>(o.pushTo);
        } catch (std::exception & e) {
            std::cout << json{{"type", "failed"}, {"stage", "push"}, {"message", e.what()}}.dump() << std::endl;
            return 1;
        }
        settings.push = [&](const std::string & drvPath) -> json {
            try {
                auto summary = pushSession->pusher().push({drvPath});
                return {{"uploaded", summary.uploaded.size()}, {"present", summary.present.size()}};
            } catch (std::exception & e) {
                return {{"error", e.what()}};
            }
        };
    }

    // Progress goes to the terminal when the stream itself goes elsewhere.
    bool showProgress = o.progress || (!o.noProgress && isatty(2) && !isatty(1));
    auto started = std::chrono::steady_clock::now();
    auto lastShown = started;
    if (showProgress) {
        settings.progress = [&](size_t jobs, size_t errors) {
            auto now = std::chrono::steady_clock::now();
            if (now - lastShown < std::chrono::milliseconds(200)) return;
            lastShown = now;
            double secs = std::chrono::duration<double>(now - started).count();
            std::fprintf(stderr, "\revaluating: %zu jobs, %zu errors, %.0f jobs/s   ", jobs, errors,
                         secs > 0 ? jobs / secs : 0.0);
        };
    }
    bool ok = runEvaluation(jobset, settings, [&](const json & message) {
        std::cout << jsonLine(message) << '\n';
        auto type = message.value("type", "");
        if (type != "job") std::cout.flush();
        if (showProgress && (type == "finished" || type == "failed")) std::fprintf(stderr, "\r\033[K");
    });
    std::cout.flush();
    return ok ? 0 : 1;
}

} // namespace

void addEvalCommand(CLI::App & app)
{
    auto options = std::make_shared<EvalCommandOptions>();
    auto * cmd = app.add_subcommand("eval", "Evaluate a jobset and print its jobs as JSON lines");
    cmd->add_option("target", options->target, "a jobset (.json) or a Nix file (.nix)");
    cmd->add_option("--expr", options->expr, "evaluate this Nix expression instead");
    cmd->add_option("--state-dir", options->stateDir,
                    "git mirrors, checkouts and logs (default: $EVOLIVE_STATE_DIR, else ~/.local/state/evolive)");
    cmd->add_option("--workers", options->workers, "evaluation workers (overrides the jobset's options)");
    cmd->add_option("--git-timeout", options->gitTimeout, "seconds before a git command is given up (default 60)")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--progress", options->progress, "show progress on stderr");
    cmd->add_flag("--no-progress", options->noProgress, "never show progress");
    cmd->add_flag("--force", options->force, "evaluate again even when the same fingerprint has a stored result");
    cmd->add_option("--evaluator-dir", options->evaluatorDir,
                    "the directory whose evolive-eval-jobs evaluates (e.g. the Nix 2.26 build's bin; default: beside evolive)");
    cmd->add_option("--results", options->results,
                    "where results are kept: a directory or s3://BUCKET?...&prefix=P (default: STATE/results)");
    // What the evaluation may see: restricted unless loosened here (docs/security.md).
    cmd->add_flag("--no-restrict-eval", options->noRestrictEval,
                  "let the expression read files outside its inputs (Nix's restrict-eval off)");
    cmd->add_option("--allowed-uri", options->restrictions.allowedUris,
                    "a URI prefix the expression may fetch from (Nix's allowed-uris; repeatable)")
        ->allow_extra_args(false); // one value each time, so that the jobset after it is not taken
    cmd->add_flag("--allow-import-from-derivation", options->restrictions.importFromDerivation,
                  "let the expression build derivations while it is evaluated");
    cmd->add_option("--evaluator-env", options->restrictions.evaluatorEnv,
                    "an environment variable the evaluator may see besides Nix's own (repeatable)")
        ->allow_extra_args(false);
    cmd->add_flag("--push", options->push, "push each job's .drv closure to the binary cache (as options.push)");
    cmd->add_option("--cache", options->pushTo.cache, "the binary cache to push to: a directory or s3://BUCKET?... (default: STATE/binary-cache)");
    cmd->add_option("--key", options->pushTo.keyFile, "a secret key file to sign pushed paths with");
    cmd->add_option("--redis", options->pushTo.redis, "share presence through Redis: redis://HOST:PORT or unix:///PATH");
    cmd->add_option("--daemon-socket", options->pushTo.daemonSocket,
                    "the Nix daemon's socket (default: $NIX_DAEMON_SOCKET_PATH, else /nix/var/nix/daemon-socket/socket)");
    cmd->callback([options]() { throw CLI::RuntimeError(runEvalCommand(*options)); });
}

} // namespace evolive
