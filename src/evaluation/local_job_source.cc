// The evaluator as a child process of this one (LocalJobSource), and what
// any caller needs to start it the same way (evaluatorProcess): which
// program, its arguments, its restricted environment, its failure message.
#include "job_source.hh"

#include "channel.hh"
#include "evaluation.hh"
#include "evaluator_environment.hh"
#include "process.hh"

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

namespace evolive {

namespace fs = std::filesystem;
using nlohmann::json;

std::string evaluatorDirFor(const std::string & configured)
{
    if (configured.empty()) return fs::canonical("/proc/self/exe").parent_path();
    std::error_code ec;
    auto dir = fs::canonical(configured, ec);
    if (ec) throw JobsetError("evaluator directory '" + configured + "': " + ec.message());
    if (access((dir / "evolive-eval-jobs").c_str(), X_OK) != 0)
        throw JobsetError("evaluator directory '" + configured + "' has no executable evolive-eval-jobs");
    return dir;
}

namespace {

std::string findEvaluator(const std::string & evaluatorDir, const std::string & name)
{
    if (name == "evolive-eval-jobs" && !evaluatorDir.empty()) {
        auto sibling = evaluatorDir + "/" + name;
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

// The end of a log for a `failed` message: its last `lines` lines, within
// its last `bytes` bytes (a longer line is cut at its start, marked
// "[...]"), however long the log is: only that much is read.
std::string logTail(const std::string & file, size_t lines = 20, size_t bytes = 8192)
{
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) return "";
    uint64_t size = in.tellg();
    uint64_t start = size > bytes ? size - bytes : 0;
    std::string text(size - start, '\0');
    in.seekg(start);
    in.read(text.data(), text.size());
    text.resize(in.gcount());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    // Back from the end to the newline before the first line kept.
    size_t from = text.size(), count = 0;
    while (from > 0) {
        auto nl = text.rfind('\n', from - 1);
        if (nl == std::string::npos) {
            from = 0;
            break;
        }
        if (++count == lines) {
            from = nl + 1;
            break;
        }
        from = nl;
    }
    // All that was read, and it began in the middle of the file: its first
    // line is cut.
    bool cut = from == 0 && start > 0;
    return (cut ? "[...]" : "") + text.substr(from);
}

} // namespace

LocalJobSource::LocalJobSource(std::string evaluatorDir, std::vector<std::string> extraArgs)
    : evaluatorDir_(std::move(evaluatorDir)), extraArgs_(std::move(extraArgs))
{
}

void LocalJobSource::cancel()
{
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    if (evaluator_) evaluator_->kill();
}

ProcessSpec evaluatorProcess(const std::string & evaluatorDir, const JobSourceRequest & request,
                             const std::vector<std::string> & extraArgs)
{
    ProcessSpec spec;
    spec.argv = {findEvaluator(evaluatorDir, request.jobset.options.evaluator)};
    auto restrictions = restrictionArguments(request.restrictions);
    spec.argv.insert(spec.argv.end(), restrictions.begin(), restrictions.end());
    auto args = evaluatorArguments(request.jobset, request.inputs, request.expressionFile);
    args.insert(args.end() - 1, extraArgs.begin(), extraArgs.end());
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    // Nothing of this process's environment but what Nix needs, and a home
    // and working directory of its own (relative paths in `nix` inputs
    // resolve there, not in the service's directory).
    fs::create_directories(request.evaluatorHome);
    spec.inheritEnvironment = false;
    spec.env = evaluatorEnvironment(request.restrictions, request.evaluatorHome);
    spec.cwd = request.evaluatorHome;
    return spec;
}

std::unique_ptr<ChildProcess> startEvaluator(const ProcessSpec & spec, const std::string & logPath)
{
    int logFd = ::open(logPath.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (logFd < 0) throw std::runtime_error("cannot open " + logPath);
    std::unique_ptr<ChildProcess> child;
    try {
        child = std::make_unique<ChildProcess>(spec, logFd);
    } catch (...) {
        ::close(logFd);
        throw;
    }
    ::close(logFd);
    return child;
}

std::string evaluatorFailure(int status, const std::string & logPath)
{
    auto tail = logTail(logPath);
    return "the evaluator failed (" +
           std::string(WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                           : "exit status " + std::to_string(WEXITSTATUS(status))) +
           ")" + (tail.empty() ? "" : ":\n" + tail);
}

void LocalJobSource::run(const JobSourceRequest & request, const JobSink & sink)
{
    auto evaluator = startEvaluator(evaluatorProcess(evaluatorDir_, request, extraArgs_), request.logPath);
    {
        std::lock_guard lock(mutex_);
        if (cancelled_) evaluator->kill();
        evaluator_ = evaluator.get();
    }
    struct Forget // the evaluator is gone when this scope is left, however it is left
    {
        LocalJobSource & s;
        ~Forget()
        {
            std::lock_guard lock(s.mutex_);
            s.evaluator_ = nullptr;
        }
    } forget{*this};

    LineReader reader(evaluator->stdoutFd());
    while (auto line = reader.readLine()) {
        auto job = json::parse(*line, nullptr, false);
        if (job.is_discarded() || !job.is_object()) continue; // not a job line; it is in the log
        sink(std::move(job));
    }
    int status = evaluator->wait();
    {
        std::lock_guard lock(mutex_);
        if (cancelled_) throw std::runtime_error("cancelled");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(evaluatorFailure(status, request.logPath));
}

} // namespace evolive
