#include "evaluation.hh"

#include "channel.hh"
#include "git_fetcher.hh"
#include "parquet_reader.hh"
#include "parquet_writer.hh"
#include "process.hh"

#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

namespace evolive {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string utcDate(int64_t seconds)
{
    time_t t = seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
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
        attrs += " lastModifiedDate = " + nixString(utcDate(g.lastModified)) + ";";
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

std::string findEvaluator(const EvaluationSettings & settings, const std::string & name)
{
    if (name == "evolive-eval-jobs" && !settings.evaluatorDir.empty()) {
        auto sibling = settings.evaluatorDir + "/" + name;
        if (access(sibling.c_str(), X_OK) == 0) return sibling;
    }
    if (const char * path = getenv("PATH")) {
        std::string dirs = path;
        size_t start = 0;
        while (start <= dirs.size()) {
            auto end = dirs.find(':', start);
            auto candidate = dirs.substr(start, end - start) + "/" + name;
            if (access(candidate.c_str(), X_OK) == 0) return candidate;
            if (end == std::string::npos) break;
            start = end + 1;
        }
    }
    throw JobsetError("evaluator '" + name + "' not found (looked next to evolive and in PATH)");
}

std::string lastLines(const std::string & file, size_t n)
{
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::string out;
    for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += lines[i] + "\n";
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// The columns of a result file: one row per job; nested values as JSON text.
// `extra` holds every other field of the line (namedConstituents,
// cacheStatus, inputDrvs, ...) as one JSON object, so a replay is lossless.
const std::vector<std::string> resultColumns{"attr", "attrPath", "name", "system", "drvPath",
                                             "outputs", "meta", "error", "constituents", "extra"};

const std::set<std::string> jsonColumns{"attrPath", "outputs", "meta", "constituents"};

std::vector<results::Cell> resultRow(const json & job)
{
    std::vector<results::Cell> row;
    json extra = json::object();
    for (auto & [key, value] : job.items())
        if (std::find(resultColumns.begin(), resultColumns.end(), key) == resultColumns.end()) extra[key] = value;
    for (auto & column : resultColumns) {
        if (column == "extra") row.emplace_back(extra.empty() ? results::Cell() : results::Cell(extra.dump()));
        else if (!job.contains(column)) row.emplace_back();
        else if (jsonColumns.count(column)) row.emplace_back(job[column].dump());
        else row.emplace_back(job[column].get<std::string>());
    }
    return row;
}

// The job line a stored row came from.
json jobFromRow(const std::vector<std::string> & columns, const std::vector<results::Cell> & row)
{
    json job = json::object();
    for (size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        if (columns[i] == "extra") job.update(json::parse(*row[i]));
        else job[columns[i]] = jsonColumns.count(columns[i]) ? json::parse(*row[i]) : json(*row[i]);
    }
    return job;
}

std::string isoTime(std::chrono::system_clock::time_point t)
{
    auto seconds = std::chrono::system_clock::to_time_t(t);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string machineId()
{
    std::ifstream in("/etc/machine-id");
    std::string id;
    in >> id;
    return id;
}

} // namespace

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

bool runEvaluation(const Jobset & jobset, const EvaluationSettings & settings,
                   const std::function<void(const json &)> & emit)
{
    auto started = Clock::now();
    std::string stage = "fetch";
    std::string fingerprint;
    try {
        GitFetcher fetcher(settings.stateDir, settings.gitTimeout);
        std::map<std::string, ResolvedInput> inputs;
        for (auto & [name, spec] : jobset.inputs) {
            ResolvedInput input{spec};
            if (spec.type == InputType::Git) {
                input.git = fetcher.fetch(spec.git, fetcher.resolve(spec.git));
                input.path = input.git->path;
            } else if (spec.type == InputType::Path) {
                if (!fs::is_directory(spec.path))
                    throw JobsetError("inputs." + name + ".path: '" + spec.path + "' is not a directory");
                input.path = spec.path;
                input.contentHash = hashDirectory(spec.path);
            }
            inputs.emplace(name, std::move(input));
        }
        stage = "prepare";
        auto file = expressionFile(jobset, inputs);
        fingerprint = fingerprintOf(fingerprintDocument(jobset, inputs));
        double fetchSeconds = secondsSince(started);

        fs::create_directories(settings.stateDir + "/logs");
        auto logPath = settings.stateDir + "/logs/" + fingerprint + ".log";
        json described = json::object();
        for (auto & [name, input] : inputs) described[name] = describeInput(input);
        auto resultPath = settings.stateDir + "/results/" + fingerprint + ".parquet";
        bool replay = !settings.force && fs::exists(resultPath);
        if (replay) {
            // Keep the evaluation's own log; note the replay after it.
            std::ofstream(logPath, std::ios::app) << "evolive: replayed from " << resultPath << "\n";
        } else {
            std::ofstream log(logPath, std::ios::trunc);
            log << "evolive: evaluation " << fingerprint << "\n" << "inputs: " << described.dump() << "\n";
        }
        json startedMessage{{"type", "started"},
                            {"fingerprint", fingerprint},
                            {"cached", replay},
                            {"inputs", described},
                            {"expression", {{"input", jobset.expression.input}, {"path", jobset.expression.path}}},
                            {"evaluator", jobset.options.evaluator},
                            {"log", logPath}};

        // Each job, live or replayed: pushed when asked, then sent on.
        size_t jobs = 0, errors = 0;
        bool pushing = jobset.options.push && settings.push;
        if (jobset.options.push && !settings.push)
            throw JobsetError("options.push: no binary cache is configured for pushing");
        json pushed{{"uploaded", 0}, {"present", 0}, {"errors", 0}};
        auto deliver = [&](json job) {
            ++jobs;
            if (job.contains("error")) ++errors;
            job["type"] = "job";
            if (pushing && job.contains("drvPath")) {
                auto outcome = settings.push(job["drvPath"].get<std::string>());
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
        };
        auto finish = [&](double evaluateSeconds) {
            json finished{{"type", "finished"},
                          {"fingerprint", fingerprint},
                          {"cached", replay},
                          {"jobs", jobs},
                          {"errors", errors},
                          {"durations",
                           {{"fetch", fetchSeconds}, {replay ? "replay" : "evaluate", evaluateSeconds},
                            {"total", secondsSince(started)}}},
                          {"result", resultPath}};
            if (pushing) finished["push"] = pushed;
            emit(finished);
        };

        if (replay) {
            // The same fingerprint was evaluated before: stream the stored
            // result instead of evaluating again.
            stage = "replay";
            auto replayStarted = Clock::now();
            emit(startedMessage);
            results::readParquet(resultPath, [&](auto & columns, auto & row) { deliver(jobFromRow(columns, row)); });
            finish(secondsSince(replayStarted));
            return true;
        }
        emit(startedMessage);

        stage = "evaluate";
        ProcessSpec spec;
        spec.argv = {findEvaluator(settings, jobset.options.evaluator)};
        auto args = evaluatorArguments(jobset, inputs, file);
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        int logFd = ::open(logPath.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (logFd < 0) throw std::runtime_error("cannot open " + logPath);
        auto evalStarted = Clock::now();
        ChildProcess evaluator(spec, logFd);
        ::close(logFd);

        fs::create_directories(settings.stateDir + "/results");
        results::ParquetWriter result(resultPath, resultColumns);
        auto startedAt = std::chrono::system_clock::now();
        LineReader reader(evaluator.stdoutFd());
        while (auto line = reader.readLine()) {
            auto job = json::parse(*line, nullptr, false);
            if (job.is_discarded() || !job.is_object()) continue; // not a job line; it is in the log
            result.addRow(resultRow(job));
            deliver(std::move(job));
        }
        int status = evaluator.wait();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            auto tail = lastLines(logPath, 20);
            throw std::runtime_error("the evaluator failed (" +
                                     std::string(WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                                     : "exit status " + std::to_string(WEXITSTATUS(status))) +
                                     ")" + (tail.empty() ? "" : ":\n" + tail));
        }

        // The result file is complete only now, and only now gets its name.
        struct utsname host;
        uname(&host);
        result.setMetadata("fingerprint", fingerprint);
        result.setMetadata("inputs", described.dump());
        result.setMetadata("expression", json{{"input", jobset.expression.input}, {"path", jobset.expression.path}}.dump());
        result.setMetadata("evaluator", jobset.options.evaluator);
        result.setMetadata("evolive.version", EVOLIVE_VERSION);
        result.setMetadata("machine.id", machineId());
        result.setMetadata("machine.arch", host.machine);
        result.setMetadata("machine.os", std::string(host.sysname) + " " + host.release);
        result.setMetadata("started", isoTime(startedAt));
        result.setMetadata("finished", isoTime(std::chrono::system_clock::now()));
        result.setMetadata("jobs", std::to_string(jobs));
        result.setMetadata("errors", std::to_string(errors));
        result.finish();
        finish(secondsSince(evalStarted));
        return true;
    } catch (std::exception & e) {
        json failed{{"type", "failed"}, {"stage", stage}, {"message", e.what()}};
        if (!fingerprint.empty()) failed["fingerprint"] = fingerprint;
        emit(failed);
        return false;
    }
}

} // namespace evolive
