#include "evaluation.hh"

#include "evaluator_environment.hh"
#include "git_fetcher.hh"
#include "parquet_reader.hh"
#include "parquet_writer.hh"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/utsname.h>

namespace evolive {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// `seconds` since the epoch in UTC, as strftime's `format` has it.
std::string formatUtc(time_t seconds, const char * format)
{
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char buf[32];
    strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// The argument a path-bearing input gives the expression, as Hydra does.
std::string inputAttrs(const ResolvedInput & input)
{
    std::string attrs = "{ outPath = /. + " + nixString(input.path) + ";";
    if (input.git) {
        auto & g = *input.git;
        attrs += " rev = " + nixString(g.rev) + "; shortRev = " + nixString(g.rev.substr(0, 7)) + ";";
        if (g.revCount) attrs += " revCount = " + std::to_string(*g.revCount) + ";";
        attrs += " lastModified = " + std::to_string(g.lastModified) + ";";
        attrs += " lastModifiedDate = " + nixString(formatUtc(g.lastModified, "%Y%m%d%H%M%S")) + ";";
        attrs += std::string(" submodules = ") + (g.submodules ? "true" : "false") + ";";
    }
    return attrs + " }";
}

json describeInput(const ResolvedInput & input)
{
    json d{{"type", inputTypeName(input.spec.type)}};
    if (input.git) {
        auto & g = *input.git;
        d["url"] = input.spec.git.url;
        if (!input.spec.git.ref.empty()) d["ref"] = input.spec.git.ref;
        d["rev"] = g.rev;
        if (g.revCount) d["revCount"] = *g.revCount;
        d["lastModified"] = g.lastModified;
        d["shallow"] = g.shallow;
        d["submodules"] = g.submodules;
        d["path"] = input.path;
    } else if (input.spec.type == InputType::Path) {
        d["path"] = input.path;
        d["contentHash"] = input.contentHash;
    } else {
        d["value"] = input.spec.value;
    }
    return d;
}

std::string machineId()
{
    std::ifstream in("/etc/machine-id");
    std::string id;
    in >> id;
    return id;
}

} // namespace

std::string isoTime(std::chrono::system_clock::time_point t)
{
    return formatUtc(std::chrono::system_clock::to_time_t(t), "%Y-%m-%dT%H:%M:%SZ");
}

std::string defaultStateDir()
{
    if (const char * dir = getenv("EVOLIVE_STATE_DIR")) return dir;
    if (const char * xdg = getenv("XDG_STATE_HOME")) return std::string(xdg) + "/evolive";
    if (const char * home = getenv("HOME")) return std::string(home) + "/.local/state/evolive";
    return "/var/lib/evolive";
}

std::string logPathFor(const std::string & stateDir, const std::string & fingerprint)
{
    return stateDir + "/logs/" + fingerprint + ".log";
}

std::string nixString(const std::string & s)
{
    std::string out = "\"";
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"' || c == '\\') out += '\\';
        if (c == '$' && i + 1 < s.size() && s[i + 1] == '{') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string expressionFile(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs)
{
    auto & input = inputs.at(jobset.expression.input);
    std::error_code ec;
    auto root = fs::canonical(input.path, ec);
    if (ec) throw JobsetError("expression.input: '" + input.path + "' cannot be read: " + ec.message());
    auto file = fs::canonical(root / jobset.expression.path, ec);
    if (ec) throw JobsetError("expression.path: '" + jobset.expression.path + "' does not exist in input '" +
                              jobset.expression.input + "'");
    auto rel = file.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..")
        throw JobsetError("expression.path: '" + jobset.expression.path + "' leads outside input '" +
                          jobset.expression.input + "' (through a symlink)");
    if (!fs::is_regular_file(file)) throw JobsetError("expression.path: '" + jobset.expression.path + "' is not a file");
    return file;
}

std::vector<std::string> evaluatorArguments(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs,
                                            const std::string & file)
{
    std::vector<std::string> args;
    auto & o = jobset.options;
    args.insert(args.end(), {"--workers", std::to_string(o.workers), "--max-memory-size", std::to_string(o.maxMemoryMiB)});
    if (o.meta) args.push_back("--meta");
    if (o.constituents) args.push_back("--constituents");
    if (o.forceRecurse) args.push_back("--force-recurse");
    if (o.checkCacheStatus) args.push_back("--check-cache-status");
    if (o.showTrace) args.push_back("--show-trace");
    // An input the expression cannot see is a mistake in the jobset; only
    // evolive's own evaluator can tell (nix-eval-jobs drops it silently).
    if (o.evaluator == "evolive-eval-jobs") args.push_back("--reject-unused-args");
    for (auto & [name, input] : inputs) {
        switch (input.spec.type) {
        case InputType::Git:
        case InputType::Path:
            args.insert(args.end(), {"-I", name + "=" + input.path, "--arg", name, inputAttrs(input)});
            break;
        case InputType::Nix:
            args.insert(args.end(), {"--arg", name, input.spec.value.get<std::string>()});
            break;
        case InputType::Json:
            args.insert(args.end(), {"--arg", name, "builtins.fromJSON " + nixString(input.spec.value.dump())});
            break;
        case InputType::String:
            args.insert(args.end(), {"--argstr", name, input.spec.value.get<std::string>()});
            break;
        case InputType::Boolean:
            args.insert(args.end(), {"--arg", name, input.spec.value.get<bool>() ? "true" : "false"});
            break;
        }
    }
    args.push_back(file);
    return args;
}

Evaluation::Evaluation(Jobset jobset, EvaluationSettings settings)
    : jobset_(std::move(jobset)), settings_(std::move(settings)), started_(Clock::now())
{
    if (!settings_.results)
        settings_.results = std::make_shared<results::DirectoryResultStore>(settings_.stateDir + "/results");
}

Evaluation::~Evaluation() = default;

bool Evaluation::fail(const Emit & emit, const std::string & message)
{
    json failed{{"type", "failed"}, {"stage", stage_}, {"message", message}};
    if (!fingerprint_.empty()) failed["fingerprint"] = fingerprint_;
    emit(failed);
    return false;
}

void Evaluation::cancel()
{
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    if (source_) source_->cancel();
}

bool Evaluation::resolve(const Emit & emit)
{
    stage_ = "fetch";
    try {
        GitFetcher fetcher(settings_.stateDir, settings_.gitTimeout, settings_.checkLocalPath);
        for (auto & [name, spec] : jobset_.inputs) {
            ResolvedInput input{spec};
            if (spec.type == InputType::Git) {
                input.git = FetchedGit{fetcher.resolve(spec.git)};
            } else if (spec.type == InputType::Path) {
                if (!fs::is_directory(spec.path))
                    throw JobsetError("inputs." + name + ".path: '" + spec.path + "' is not a directory");
                // Restricted evaluation allows reading under the input's
                // path with its symlinks resolved, so that is the path given.
                input.path = fs::canonical(spec.path);
                input.contentHash = hashDirectory(input.path);
            }
            inputs_.insert_or_assign(name, std::move(input));
        }
        stage_ = "prepare";
        if (!jobset_.inputs.count(jobset_.expression.input))
            throw JobsetError("expression.input: no input named '" + jobset_.expression.input + "'");
        checkRestrictions(settings_.restrictions);
        fingerprint_ = fingerprintOf(fingerprintDocument(jobset_, inputs_, settings_.restrictions));
        logPath_ = logPathFor(settings_.stateDir, fingerprint_);
        fs::create_directories(fs::path(logPath_).parent_path());
        if (!settings_.force) stored_ = settings_.results->find(fingerprint_);
        if (stored_) {
            auto [why, damaged] = whyNotReplayed(*stored_);
            if (!why.empty()) {
                stored_.reset();
                if (settings_.refusedResult) settings_.refusedResult(fingerprint_, why, damaged);
                else fprintf(stderr, "evolive: evaluating %s again: %s\n", fingerprint_.c_str(), why.c_str());
            }
        }
        resolveSeconds_ = secondsSince(started_);
        return true;
    } catch (std::exception & e) {
        return fail(emit, e.what());
    }
}

std::pair<std::string, bool> Evaluation::whyNotReplayed(const std::string & path) const
{
    results::ParquetContents contents;
    try {
        contents = results::readParquet(path, {});
    } catch (std::exception & e) {
        return {std::string("the stored result is damaged: ") + e.what(), true};
    }
    auto & m = contents.metadata;
    if (!contents.checksummed) return {"the stored result has no checksum (written by an older evolive, or not by evolive)", true};
    if (m["fingerprint"] != fingerprint_) return {"the stored result is of another fingerprint (" + m["fingerprint"] + ")", true};
    if (m["jobs"] != std::to_string(contents.rows)) return {"the stored result's job count is not its row count", true};
    if (!m.count("environmentErrors")) return {"the stored result does not say whether the environment caused errors", true};
    if (m["environmentErrors"] != "0")
        return {"the stored result has " + m["environmentErrors"] +
                    " job errors caused by the environment (a killed or crashed worker, memory, the store), "
                    "not by the expression",
                false};
    return {"", false};
}

bool Evaluation::run(const Emit & emit, const JobLineEmit & jobLine)
{
    runStarted_ = Clock::now();
    queuedSeconds_ = std::chrono::duration<double>(runStarted_ - started_).count() - resolveSeconds_;
    try {
        if (stored_ && jobset_.options.push && !settings_.push)
            throw JobsetError("options.push: no binary cache is configured for pushing");
        return stored_ ? replay(emit, jobLine) : evaluate(emit);
    } catch (std::exception & e) {
        std::lock_guard lock(mutex_);
        if (cancelled_) stage_ = "cancelled";
        return fail(emit, cancelled_ ? "the evaluation was cancelled" : e.what());
    }
}

namespace {

// Counts what went by and pushes each job when the jobset asks for it.
struct JobDelivery
{
    const Jobset & jobset;
    const EvaluationSettings & settings;
    const Emit & emit;
    bool sourcePushes = false; // the job source pushed, and says how in `push`
    size_t jobs = 0, errors = 0, environmentErrors = 0;
    json pushed{{"uploaded", 0}, {"present", 0}, {"errors", 0}};

    bool pushing() const { return jobset.options.push && (settings.push || sourcePushes); }

    void operator()(json job)
    {
        ++jobs;
        if (job.contains("error")) ++errors;
        if (job.contains("errorCause")) ++environmentErrors;
        job["type"] = "job";
        if (pushing() && job.contains("drvPath")) {
            auto outcome = !sourcePushes ? settings.push(job["drvPath"].get<std::string>())
                                         : job.value("push", json{{"error", "the job source did not say"}});
            if (outcome.contains("error")) {
                pushed["errors"] = pushed["errors"].get<size_t>() + 1;
            } else {
                pushed["uploaded"] = pushed["uploaded"].get<size_t>() + outcome.value("uploaded", 0);
                pushed["present"] = pushed["present"].get<size_t>() + outcome.value("present", 0);
            }
            job["push"] = outcome;
        }
        emit(job);
        if (settings.progress) settings.progress(jobs, errors);
    }

    json finished(const std::string & fingerprint, bool cached, double queuedSeconds, double fetchSeconds, double seconds,
                  double total, const std::string & result) const
    {
        json f{{"type", "finished"},
               {"fingerprint", fingerprint},
               {"cached", cached},
               {"jobs", jobs},
               {"errors", errors},
               {"environmentErrors", environmentErrors},
               {"durations",
                {{"queued", queuedSeconds}, {"fetch", fetchSeconds}, {cached ? "replay" : "evaluate", seconds}, {"total", total}}},
               {"result", result}};
        if (pushing()) f["push"] = pushed;
        return f;
    }
};

} // namespace

bool Evaluation::replay(const Emit & emit, const JobLineEmit & jobLine)
{
    // The same fingerprint was evaluated before: stream the stored result
    // instead of fetching and evaluating again. The inputs as they were
    // fetched then come from the result's metadata.
    stage_ = "replay";
    std::ofstream(logPath_, std::ios::app) << "evolive: replayed from " << *stored_ << "\n";
    auto replayStarted = Clock::now();
    JobDelivery deliver{jobset_, settings_, emit};
    size_t rowNumber = 0;
    results::readParquet(
        *stored_,
        [&](auto & columns, auto & row) {
            // Each row is checked and its line encoded anew: the file may
            // have been written by anyone who can write the results.
            ++rowNumber;
            json job;
            try {
                job = jobFromRow(columns, row);
            } catch (std::exception & e) {
                throw std::runtime_error("the stored result's row " + std::to_string(rowNumber) +
                                         " is not a job as evolive stores it (" + e.what() + ")");
            }
            if (!jobLine || deliver.pushing()) return deliver(std::move(job));
            deliver.jobs++;
            if (job.contains("error")) deliver.errors++;
            job["type"] = "job";
            jobLine(jsonLine(job));
            if (settings_.progress) settings_.progress(deliver.jobs, deliver.errors);
        },
        [&](const results::ParquetContents & contents) {
            // Checked in resolve(); the file may have been replaced since.
            if (!contents.checksummed) throw std::runtime_error("the stored result has no checksum");
            emit(json{{"type", "started"},
                      {"fingerprint", fingerprint_},
                      {"cached", true},
                      {"inputs", metadataValue(contents.metadata, "inputs")},
                      {"expression", {{"input", jobset_.expression.input}, {"path", jobset_.expression.path}}},
                      {"evaluator", jobset_.options.evaluator},
                      {"log", logPath_}});
        });
    emit(deliver.finished(fingerprint_, true, queuedSeconds_, resolveSeconds_, secondsSince(replayStarted),
                          secondsSince(started_), *stored_));
    return true;
}

bool Evaluation::evaluate(const Emit & emit)
{
    auto source = settings_.jobSource ? settings_.jobSource(jobset_)
                                      : std::make_unique<LocalJobSource>(settings_.evaluatorDir);
    if (jobset_.options.push && !settings_.push && !source->pushes())
        throw JobsetError("options.push: no binary cache is configured for pushing");
    stage_ = "fetch";
    GitFetcher fetcher(settings_.stateDir, settings_.gitTimeout, settings_.checkLocalPath);
    for (auto & [name, input] : inputs_)
        if (input.git) {
            input.git = fetcher.fetch(input.spec.git, input.git->rev);
            input.path = input.git->path;
        }
    stage_ = "prepare";
    auto file = expressionFile(jobset_, inputs_);
    // Resolving, then fetching: the time waiting for a slot between them
    // is `queued`.
    double fetchSeconds = resolveSeconds_ + secondsSince(runStarted_);

    json described = json::object();
    for (auto & [name, input] : inputs_) described[name] = describeInput(input);
    {
        std::ofstream log(logPath_, std::ios::trunc);
        log << "evolive: evaluation " << fingerprint_ << "\n" << "inputs: " << described.dump() << "\n";
    }
    emit(json{{"type", "started"},
              {"fingerprint", fingerprint_},
              {"cached", false},
              {"inputs", described},
              {"expression", {{"input", jobset_.expression.input}, {"path", jobset_.expression.path}}},
              {"evaluator", jobset_.options.evaluator},
              {"log", logPath_}});

    stage_ = "evaluate";
    auto evalStarted = Clock::now();
    {
        std::lock_guard lock(mutex_);
        if (cancelled_) source->cancel();
        source_ = source.get();
    }
    struct Forget // the source is gone when this scope is left, however it is left
    {
        Evaluation & e;
        ~Forget()
        {
            std::lock_guard lock(e.mutex_);
            e.source_ = nullptr;
        }
    } forget{*this};

    auto resultPath = settings_.results->pathFor(fingerprint_);
    fs::create_directories(fs::path(resultPath).parent_path());
    results::ParquetWriter result(resultPath, resultColumns);
    auto startedAt = std::chrono::system_clock::now();
    JobDelivery deliver{jobset_, settings_, emit, source->pushes()};
    JobSourceRequest request{jobset_, inputs_, file, fingerprint_, logPath_, settings_.restrictions,
                             fs::absolute(settings_.stateDir + "/evaluator-home").lexically_normal().string()};
    source->run(request, [&](json job) {
        // A source that pushes says how in `push`: in the stream, not in the result.
        json outcome;
        if (auto it = job.find("push"); it != job.end()) {
            outcome = std::move(*it);
            job.erase(it);
        }
        result.addRow(resultRow(job));
        if (!outcome.is_null()) job["push"] = std::move(outcome);
        deliver(std::move(job));
    });
    {
        std::lock_guard lock(mutex_);
        if (cancelled_) throw std::runtime_error("cancelled");
    }

    // The result file is complete only now, and only now gets its name.
    struct utsname host;
    uname(&host);
    result.setMetadata("fingerprint", fingerprint_);
    result.setMetadata("inputs", described.dump());
    result.setMetadata("expression", json{{"input", jobset_.expression.input}, {"path", jobset_.expression.path}}.dump());
    result.setMetadata("evaluator", jobset_.options.evaluator);
    result.setMetadata("evolive.version", EVOLIVE_VERSION);
    result.setMetadata("machine.id", machineId());
    result.setMetadata("machine.arch", host.machine);
    result.setMetadata("machine.os", std::string(host.sysname) + " " + host.release);
    result.setMetadata("started", isoTime(startedAt));
    result.setMetadata("finished", isoTime(std::chrono::system_clock::now()));
    result.setMetadata("jobs", std::to_string(deliver.jobs));
    result.setMetadata("errors", std::to_string(deliver.errors));
    result.setMetadata("environmentErrors", std::to_string(deliver.environmentErrors));
    result.finish();
    settings_.results->stored(fingerprint_);
    emit(deliver.finished(fingerprint_, false, queuedSeconds_, fetchSeconds, secondsSince(evalStarted),
                          secondsSince(started_), resultPath));
    return true;
}

bool runEvaluation(const Jobset & jobset, const EvaluationSettings & settings, const Emit & emit)
{
    Evaluation evaluation(jobset, settings);
    return evaluation.resolve(emit) && evaluation.run(emit);
}

} // namespace evolive
