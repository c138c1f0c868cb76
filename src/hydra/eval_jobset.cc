#include "eval_jobset.hh"

#include "database.hh"
#include "eval_arguments.hh"
#include "evaluation_writer.hh"
#include "input_fetch.hh"
#include "jobset_record.hh"
#include "json_parse.hh"
#include "local_evaluator.hh"
#include "notifications.hh"
#include "remote_evaluator.hh"
#include "remote_plan.hh"
#include "settings.hh"
#include "staging.hh"

#include "process.hh"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

namespace evolive::hydra {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string withNewline(std::string s)
{
    if (s.empty() || s.back() != '\n') s += '\n';
    return s;
}

// `nix flake metadata --refresh --json`: the locked URL of `flake`.
std::string lockFlake(const std::string & flake)
{
    ProcessSpec spec;
    spec.argv = {"nix", "--extra-experimental-features", "nix-command flakes", "flake", "metadata", "--refresh",
                 "--json", "--", flake};
    spec.timeout = std::chrono::seconds(600);
    auto r = runProcess(spec);
    if (!r.ok())
        throw EvaluationFailure("'nix flake metadata' " + r.describe(spec.timeout) + ":\n" +
                                (r.err.empty() ? "(no output)\n" : withNewline(r.err)));
    auto metadata = parseJson(r.out, "nix flake metadata");
    if (!metadata.contains("url") || !metadata["url"].is_string())
        throw EvaluationFailure("'nix flake metadata' gave no url for " + flake + "\n");
    return metadata["url"].get<std::string>();
}

// What one run collects from the jobs as they come, besides the staged rows.
struct JobCollector
{
    std::string errorMsg;                       // Hydra's per-job error text
    std::optional<std::string> failedAggregate; // the first aggregate with an error
    std::optional<std::string> fatal;           // a job Hydra cannot make a build of
    std::set<std::string> seen;
    size_t jobs = 0, errors = 0;
};

class Run
{
public:
    Run(std::string project, std::string jobset) : project_(std::move(project)), jobsetName_(std::move(jobset)) {}

    int main()
    {
        try {
            conn_ = connectDatabase(databaseUrlFromEnvironment());
        } catch (std::exception & e) {
            std::cerr << "hydra-eval-jobset: " << e.what() << "\n";
            return 1;
        }
        SchemaProblems schema;
        try {
            schema = checkSchema(*conn_);
            if (!schema.canRecordErrors) {
                std::cerr << "hydra-eval-jobset: " << schema.message() << "\n";
                return 1;
            }
            auto record = readJobset(*conn_, project_, jobsetName_);
            if (!record) {
                std::cerr << "hydra-eval-jobset: specified jobset \"" << project_ << ":" << jobsetName_
                          << "\" does not exist\n";
                return 1;
            }
            jobset_ = *record;
        } catch (std::exception & e) {
            std::cerr << "hydra-eval-jobset: cannot read the jobset from Hydra's database: " << e.what() << "\n";
            return 1;
        }

        traceId_ = makeTraceId();
        std::string failure;
        try {
            notifyNow(*conn_, "eval_started", payload({traceId_, std::to_string(jobset_.id)}));
            if (!schema.missing.empty()) throw EvaluationFailure(schema.message() + "\n");
            evaluate();
            return 0;
        } catch (EvaluationFailure & e) {
            failure = e.what();
        } catch (std::exception & e) {
            failure = withNewline(e.what());
        }
        std::cerr << failure;
        recordFailure(failure);
        return 1;
    }

private:
    // Hydra's checkJobset error path: errormsg, errortime, eval_failed.
    void recordFailure(const std::string & message)
    {
        if (dryRun_) return;
        auto record = [&](pqxx::connection & conn) {
            long now = time(nullptr);
            pqxx::work tx(conn);
            tx.exec_params("update jobsets set lastcheckedtime = $1, errormsg = $2, errortime = $1, "
                           "fetcherrormsg = null where id = $3",
                           now, message, jobset_.id);
            notify(tx, "eval_failed", payload({traceId_, std::to_string(jobset_.id)}));
            tx.commit();
        };
        try {
            try {
                record(*conn_);
            } catch (pqxx::broken_connection &) {
                // The evaluation's connection broke: a new one.
                record(*connectDatabase(databaseUrlFromEnvironment()));
            }
        } catch (std::exception & e) {
            std::cerr << "hydra-eval-jobset: cannot record the error in Hydra's database: " << e.what() << "\n";
        }
    }

    void evaluate()
    {
        settings_ = loadSettings();
        fs::create_directories(settings_.stateDir());
        fs::create_directories(settings_.gcRootsDir);
        if (jobset_.declFile && !jobset_.declFile->empty() && jobset_.name == ".jobsets")
            throw EvaluationFailure("declarative projects (the .jobsets jobset of a project with a declfile) are not "
                                    "supported by evolive's hydra-eval-jobset\n");

        // On the configured server, unless this jobset can only be evaluated here.
        bool remote = !settings_.server.empty();
        if (remote)
            if (auto why = whyNotRemote(jobset_)) {
                std::cerr << "evolive_server is set, but " << *why << "\n";
                remote = false;
            }

        auto checkoutStart = Clock::now();
        InputInfo inputs;
        RemotePlan plan;
        std::string fetchError;
        try {
            FetchContext ctx{*conn_, settings_, jobset_};
            if (remote) {
                plan = planRemote(ctx);
                inputs = plan.inputs;
            } else {
                for (auto & input : jobset_.inputs)
                    for (auto & value : input.values)
                        for (auto & fetched : fetchInput(ctx, input, value)) inputs[input.name].push_back(fetched);
            }
        } catch (InputsError & e) {
            throw EvaluationFailure(withNewline(e.what()));
        } catch (std::exception & e) {
            fetchError = withNewline(e.what());
        }
        std::optional<std::string> flakeRef;
        if (jobset_.flake) flakeRef = lockFlake(*jobset_.flake);
        double checkoutExact = std::chrono::duration<double>(Clock::now() - checkoutStart).count();
        long checkoutSeconds = (long) checkoutExact;

        if (!fetchError.empty()) {
            std::cerr << fetchError;
            pqxx::work tx(*conn_);
            if (!dryRun_)
                tx.exec_params("update jobsets set lastcheckedtime = $1, fetcherrormsg = $2 where id = $3",
                               (long) time(nullptr), fetchError, jobset_.id);
            notify(tx, "eval_failed", payload({traceId_, std::to_string(jobset_.id)}));
            tx.commit();
            return;
        }

        std::vector<std::string> args;
        std::string hash = plan.hash;
        if (!remote) {
            try {
                args = inputsToArgs(inputs);
            } catch (InputsError & e) {
                throw EvaluationFailure(withNewline(e.what()));
            }
            hash = argumentsHash(jobset_.nixExprInput, jobset_.nixExprPath, args);
            auto allowed = allowedPathArgs(inputs);
            args.insert(args.end(), allowed.begin(), allowed.end());
        }
        if (!dryRun_ && unchanged(hash, flakeRef)) return;

        auto evalStart = Clock::now();
        long errorTime = time(nullptr);
        std::cerr << "(" << jobset_.project << ":" << jobset_.name << ") Evaluating...\n";
        std::unique_ptr<JobSource> source;
        if (remote)
            source = std::make_unique<RemoteEvaluator>(settings_, plan.jobset);
        else
            source = std::make_unique<LocalEvaluator>(evaluatorProgram(settings_),
                                                      evaluatorArguments(settings_, jobset_, args, flakeRef));
        if (dryRun_) {
            // HYDRA_DRY_RUN: the jobs on stderr, nothing written.
            source->run([&](const nlohmann::json & job) {
                auto attr = job.value("attr", "");
                if (job.contains("drvPath") && !job.contains("error"))
                    std::cerr << "good job " << attr << ": " << job["drvPath"].get<std::string>() << "\n";
                else
                    std::cerr << "failed job " << attr << ": " << job.value("error", "") << "\n";
            });
            return;
        }
        StagingTable staging(*conn_);
        JobCollector jobs;
        {
            StagingWriter writer(staging);
            source->run([&](const nlohmann::json & job) { collect(job, jobs, writer); });
            writer.finish();
        }
        staging.analyze();
        std::cerr << "(" << jobset_.project << ":" << jobset_.name << ") " << jobs.jobs << " jobs, " << jobs.errors
                  << " errors\n";
        if (jobs.fatal) throw EvaluationFailure(*jobs.fatal);

        EvaluationToWrite e;
        e.jobset = &jobset_;
        e.inputs = &inputs;
        e.traceId = traceId_;
        e.hash = hash;
        e.flake = flakeRef;
        e.checkoutSeconds = checkoutSeconds;
        e.errorTime = errorTime;
        e.errorMsg = jobs.errorMsg;
        e.failedAggregate = jobs.failedAggregate;
        e.evalStart = evalStart;
        auto evaluated = Clock::now();
        auto written = writeEvaluation(*conn_, e);
        std::cerr << "  created " << (written.changed ? "new" : "cached") << " eval " << written.evalId << " ("
                  << written.builds << " builds, " << written.newBuilds << " new)\n";
        auto committed = Clock::now();
        updateBuildsAfterEvaluation(*conn_, jobset_.id, written);
        auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
        char line[256];
        snprintf(line, sizeof line,
                 "  timings: fetch %.3f s, evaluation %.3f s (staging %.3f s of it, alongside), transaction %.3f s "
                 "(%d attempt%s), after the commit %.3f s\n",
                 checkoutExact, seconds(evalStart, evaluated), staging.writeSeconds(),
                 written.transactionSeconds, written.attempts, written.attempts == 1 ? "" : "s",
                 seconds(committed, Clock::now()));
        std::cerr << line;
    }

    // Hydra's unchanged check: the last evaluation had the same hash (and
    // flake), and no evaluation is forced.
    bool unchanged(const std::string & hash, const std::optional<std::string> & flakeRef)
    {
        pqxx::work tx(*conn_);
        auto prev = tx.exec_params("select id, hash, flake from jobsetevals where jobset_id = $1 order by id desc limit 1",
                                   jobset_.id);
        if (prev.empty() || jobset_.forceEval || prev[0][1].as<std::string>() != hash) return false;
        if (flakeRef && (prev[0][2].is_null() || prev[0][2].as<std::string>() != *flakeRef)) return false;
        std::cerr << "  jobset is unchanged, skipping\n";
        tx.exec_params("update jobsets set lastcheckedtime = $1, fetcherrormsg = null where id = $2",
                       (long) time(nullptr), jobset_.id);
        notify(tx, "eval_cached", payload({traceId_, std::to_string(jobset_.id), prev[0][0].as<std::string>()}));
        tx.commit();
        return true;
    }

    void collect(const nlohmann::json & job, JobCollector & c, StagingWriter & writer)
    {
        writer.check();
        ++c.jobs;
        std::string attr = job.contains("attr") && job["attr"].is_string() ? job["attr"].get<std::string>() : "";
        if (job.contains("error")) {
            ++c.errors;
            std::string error = job["error"].is_string() ? job["error"].get<std::string>() : job["error"].dump();
            c.errorMsg += (attr.empty() ? "at top-level" : "in job ‘" + attr + "’") + ":\n" + error + "\n\n";
            if (job.contains("constituents") && !c.failedAggregate)
                c.failedAggregate = "aggregate job ‘" + attr + "’ failed with the error: " + error + "\n";
            return;
        }
        if (c.fatal) return;
        try {
            auto row = buildRowFor(job, settings_.legacyBuildLimits);
            if (!c.seen.insert(row.job).second) {
                std::cerr << "the evaluator reported job ‘" << row.job << "’ twice; the second is ignored\n";
                return;
            }
            writer.add(std::move(row));
        } catch (JobError & e) {
            c.fatal = withNewline(e.what());
        }
    }

    std::string project_, jobsetName_;
    std::unique_ptr<pqxx::connection> conn_;
    JobsetRecord jobset_;
    HydraSettings settings_;
    std::string traceId_;
    bool dryRun_ = getenv("HYDRA_DRY_RUN") != nullptr; // as Hydra's script: evaluate, print, write nothing
};

} // namespace

int evalJobset(const std::string & project, const std::string & jobset)
{
    return Run(project, jobset).main();
}

} // namespace evolive::hydra
