#include "local_evaluator.hh"

#include "evaluation.hh"
#include "evaluation_writer.hh"
#include "fd_io.hh"
#include "json_parse.hh"
#include "process.hh"

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace evolive::hydra {

namespace fs = std::filesystem;

std::string evaluatorProgram(const HydraSettings & settings)
{
    if (!settings.evaluator.empty()) return settings.evaluator;
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = self.parent_path() / "evolive-eval-jobs";
        if (fs::exists(beside)) return beside.string();
    }
    return "evolive-eval-jobs";
}

std::vector<std::string> evaluatorArguments(const HydraSettings & settings, const JobsetRecord & jobset,
                                            const std::vector<std::string> & inputArgs,
                                            const std::optional<std::string> & flakeRef)
{
    std::vector<std::string> args;
    const std::string select = "flake.outputs.hydraJobs or flake.outputs.checks or "
                               "(throw \"flake does not provide any Hydra jobs or checks\")";
    if (flakeRef && fs::path(evaluatorProgram(settings)).filename() == "nix-eval-jobs") {
        // No evaluation cache: each revision is evaluated once, and
        // parallel workers would only contend for its database.
        args = {"--option", "eval-cache", "false", "--flake", *flakeRef, "--select", "flake: " + select};
    } else if (flakeRef) {
        // evolive-eval-jobs' --flake starts from hydraJobs (as nix-eval-jobs
        // 2.8 did), so the same selection is made from the flake itself,
        // evaluated purely as --flake would.
        args = {"--extra-experimental-features", "nix-command flakes", "--option", "pure-eval", "true", "--option",
                "eval-cache", "false", "--expr",
                "let flake = builtins.getFlake " + nixString(*flakeRef) + "; in " + select};
    } else {
        args = {"--option", "restrict-eval", "true",
                "<" + jobset.nixExprInput.value_or("") + "/" + jobset.nixExprPath.value_or("") + ">"};
        args.insert(args.end(), inputArgs.begin(), inputArgs.end());
    }
    args.insert(args.end(), {"--gc-roots-dir", settings.gcRootsDir, "--max-jobs", "1", "--meta", "--constituents",
                             "--force-recurse"});
    if (!settings.allowImportFromDerivation)
        args.insert(args.end(), {"--option", "allow-import-from-derivation", "false"});
    args.insert(args.end(), {"--workers", std::to_string(settings.workers), "--max-memory-size",
                             std::to_string(settings.maxMemoryMiB)});
    return args;
}

LocalEvaluator::LocalEvaluator(std::string program, std::vector<std::string> args)
    : program_(std::move(program)), args_(std::move(args))
{
}

namespace {

// Copies the evaluator's stderr to ours as it comes, keeping its last lines
// for the error message of a failed run.
class StderrRelay
{
public:
    StderrRelay()
    {
        if (pipe2(fds_, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    }
    ~StderrRelay()
    {
        closeWriteEnd();
        if (thread_.joinable()) thread_.join();
        if (fds_[0] >= 0) close(fds_[0]);
    }
    int writeEnd() const { return fds_[1]; }
    void start()
    {
        closeWriteEnd();
        thread_ = std::thread([this] { pump(); });
    }
    // After the evaluator exits: its last lines.
    std::string tail()
    {
        if (thread_.joinable()) thread_.join();
        std::string out;
        for (auto & l : lines_) out += l + "\n";
        return out;
    }

private:
    void closeWriteEnd()
    {
        if (fds_[1] >= 0) close(fds_[1]);
        fds_[1] = -1;
    }
    void pump()
    {
        char buf[65536];
        std::string partial;
        for (;;) {
            ssize_t n = read(fds_[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            try {
                writeAll(2, std::string_view(buf, n), "stderr");
            } catch (std::exception &) {
            }
            partial.append(buf, n);
            size_t nl;
            while ((nl = partial.find('\n')) != std::string::npos) {
                keep(partial.substr(0, nl));
                partial.erase(0, nl + 1);
            }
        }
        if (!partial.empty()) keep(partial);
    }
    void keep(std::string line)
    {
        if (line.size() > 2000) line = line.substr(0, 2000) + "...";
        lines_.push_back(std::move(line));
        if (lines_.size() > 20) lines_.pop_front();
    }

    int fds_[2] = {-1, -1};
    std::thread thread_;
    std::deque<std::string> lines_;
};

} // namespace

void LocalEvaluator::run(const JobHandler & onJob)
{
    ProcessSpec spec;
    spec.argv = {program_};
    spec.argv.insert(spec.argv.end(), args_.begin(), args_.end());
    // Reproducible evaluations: no search path from the environment.
    spec.env = {{"NIX_PATH", ""}};
    if (getenv("HYDRA_DEBUG")) {
        // As Hydra's script prints it: each word in single quotes.
        std::string line = "evaluator:";
        for (auto & a : spec.argv) {
            std::string q;
            for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
            line += " '" + q + "'";
        }
        std::cerr << line << "\n";
    }
    StderrRelay relay;
    std::unique_ptr<ChildProcess> child;
    try {
        child = std::make_unique<ChildProcess>(spec, relay.writeEnd());
    } catch (std::exception & e) {
        throw EvaluationFailure(std::string(e.what()) + "\n");
    }
    relay.start();

    std::string buffer;
    char buf[1 << 16];
    int fd = child->stdoutFd();
    auto handleLine = [&](const std::string & line) {
        if (line.empty()) return;
        nlohmann::json job;
        try {
            job = parseJson(line, "the evaluator's output");
        } catch (JsonParseError & e) {
            std::cerr << "the evaluator sent invalid JSON.\n  parse error: " << e.what() << "\n  invalid json: "
                      << line.substr(0, 1000) << "\n";
            return;
        }
        if (job.is_object()) onJob(job);
    };
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buffer.append(buf, n);
        size_t start = 0, nl;
        while ((nl = buffer.find('\n', start)) != std::string::npos) {
            handleLine(buffer.substr(start, nl - start));
            start = nl + 1;
        }
        buffer.erase(0, start);
    }
    handleLine(buffer);
    int status = child->wait();
    auto tail = relay.tail();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    std::string name = fs::path(program_).filename();
    std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                          : "exit code " + std::to_string(WEXITSTATUS(status));
    throw EvaluationFailure(name + " returned " + how + "\n" + tail);
}

} // namespace evolive::hydra
