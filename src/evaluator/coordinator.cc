#include "coordinator.hh"

#include "attr_path_list.hh"
#include "channel.hh"
#include "constituents.hh"
#include "drv_batch_store.hh"
#include "fd_io.hh"
#include "job_info.hh"
#include "nix_api.hh"
#include "worker.hh"

#include <nix/globals.hh>
#include <nix/logging.hh>
#include <nix/util.hh>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace evolive {

using nlohmann::json;

// Workers evaluate deeply nested derivations (a chain of 20,000 dependencies
// recurses that deep in the evaluator) on the main thread's stack.
constexpr rlim_t workerStackBytes = 512ull * 1024 * 1024;

struct WorkerProcess
{
    pid_t pid = -1;
    int requestFd = -1;
    int replyFd = -1;
    std::unique_ptr<LineReader> reader;
    bool ready = false;
    bool exiting = false;            // asked to restart after its last reply
    std::vector<AttrPath> batch;     // what it is evaluating now
    size_t current = 0;              // index in batch it reported last
    std::string fatal;               // the reason it gave before dying
    uint64_t written = 0;            // its .drv hand-offs written so far

    void closeRequests()
    {
        if (requestFd >= 0) ::close(requestFd);
        requestFd = -1;
    }
};

namespace {

std::string describeStatus(int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return nix::fmt("killed by signal %d (%s)", sig, strsignal(sig));
    }
    if (WIFEXITED(status)) return nix::fmt("exited with status %d", WEXITSTATUS(status));
    return "stopped";
}

// Moves `fd` to exactly `target` in a freshly forked child.
void placeFd(int fd, int target)
{
    if (fd == target) {
        fcntl(fd, F_SETFD, 0);
        return;
    }
    dup2(fd, target);
}

// --paths FILE, `-` for standard input. Read before any worker starts, so
// that bad input costs nothing.
std::vector<AttrPath> readPathsFile(const std::string & file)
{
    std::string text;
    try {
        text = file == "-" ? nix::drainFD(STDIN_FILENO) : nix::readFile(file);
    } catch (nix::Error & e) {
        throw nix::UsageError("--paths: %s", nix_api::plainMessage(e));
    }
    try {
        return parseAttrPathList(text);
    } catch (std::exception & e) {
        throw nix::UsageError("--paths %s: %s", file, e.what());
    }
}

} // namespace

Coordinator::Coordinator(EvalJobsArgs & args, std::vector<std::string> argv) : args_(args), argv_(std::move(argv))
{
}

Coordinator::~Coordinator()
{
    for (auto & w : workers_) {
        w->closeRequests();
        if (w->replyFd >= 0) ::close(w->replyFd);
        if (w->pid > 0) {
            ::kill(w->pid, SIGKILL);
            ::waitpid(w->pid, nullptr, 0);
        }
    }
}

void Coordinator::spawnWorker()
{
    int request[2], reply[2];
    if (pipe2(request, O_CLOEXEC) || pipe2(reply, O_CLOEXEC)) throw nix::SysError("creating worker pipes");

    std::vector<char *> cargv;
    for (auto & a : argv_) cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) throw nix::SysError("starting a worker");
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec. Lift the pipe ends
        // above the target numbers first so that dup2 cannot clobber them.
        int in = fcntl(request[0], F_DUPFD_CLOEXEC, 10);
        int out = fcntl(reply[1], F_DUPFD_CLOEXEC, 10);
        placeFd(in, workerRequestFd);
        placeFd(out, workerReplyFd);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(2, 1); // anything a worker prints is log output, never job lines
        struct rlimit stack;
        if (getrlimit(RLIMIT_STACK, &stack) == 0) {
            stack.rlim_cur = stack.rlim_max == RLIM_INFINITY || stack.rlim_max >= workerStackBytes
                                 ? workerStackBytes
                                 : stack.rlim_max;
            setrlimit(RLIMIT_STACK, &stack);
        }
        setenv("EVOLIVE_EVAL_WORKER", "1", 1);
        execv("/proc/self/exe", cargv.data());
        _exit(127);
    }
    ::close(request[0]);
    ::close(reply[1]);

    auto worker = std::make_unique<WorkerProcess>();
    worker->pid = pid;
    worker->requestFd = request[1];
    worker->replyFd = reply[0];
    worker->reader = std::make_unique<LineReader>(reply[0]);
    workers_.push_back(std::move(worker));
}

size_t Coordinator::nextBatchSize() const
{
    if (args_.batchSize) return args_.batchSize;
    // Large enough that writing .drv files and messages is amortised, small
    // enough that every worker stays busy until the end.
    size_t share = queue_.size() / (4 * args_.workers);
    return std::clamp<size_t>(share, 1, 64);
}

void Coordinator::dispatch(WorkerProcess & worker)
{
    size_t n = std::min(nextBatchSize(), queue_.size());
    worker.batch.assign(queue_.begin(), queue_.begin() + n);
    queue_.erase(queue_.begin(), queue_.begin() + n);
    worker.current = 0;
    json paths = json::array(), entered = json::array();
    for (auto & p : worker.batch) {
        if (entered_.count(p)) entered.push_back(paths.size());
        paths.push_back(p);
    }
    json request{{"paths", paths}, {"written", worker.written}};
    if (!entered.empty()) request["entered"] = entered;
    try {
        writeAll(worker.requestFd, request.dump() + "\n", "writing to pipe");
    } catch (std::system_error &) {
        // It died; its exit is noticed on the reply pipe and the batch is
        // handled there.
    }
}

void Coordinator::emit(json job)
{
    ++jobs_;
    if (job.contains("error")) ++errors_;
    if (args_.listPaths) {
        std::cout << listedPathLine(job).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
        return;
    }
    if (args_.constituents) {
        if (job.contains("namedConstituents") && !job["namedConstituents"].empty() && !job.contains("error")) {
            aggregates_.push_back(std::move(job));
            return;
        }
        jobsByName_[job["attr"].get<std::string>()] = job;
    }
    std::cout << job.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

void Coordinator::handleResults(WorkerProcess & worker, const json & reply)
{
    auto batch = std::move(worker.batch);
    worker.batch.clear();
    auto & results = reply.at("results");
    std::vector<json> jobs;
    size_t i = 0;
    for (; i < results.size() && i < batch.size(); ++i) {
        auto & result = results[i];
        if (result.contains("job")) {
            jobs.push_back(result["job"]);
        } else if (result.contains("children")) {
            for (auto & name : result["children"]) {
                AttrPath child = batch[i];
                child.push_back(name.get<std::string>());
                // A path also given with --paths is evaluated once, as given.
                if (!entered_.count(child)) queue_.push_back(std::move(child));
            }
        }
    }
    // A worker that stopped early leaves the rest to others, in order.
    queue_.insert(queue_.begin(), batch.begin() + i, batch.end());

    if (reply.value("restart", false)) {
        ++restarts_;
        nix::logger->log(nix::lvlInfo, nix::fmt("evolive-eval-jobs: restarting a worker (memory above "
                                                "--max-memory-size %d MiB)",
                                                args_.maxMemoryMiB));
        worker.exiting = true;
        worker.closeRequests();
    } else if (!queue_.empty()) {
        dispatch(worker); // it evaluates the next batch while we write this one's .drv files
    }

    if (reply.contains("drvs")) {
        try {
            drvWriter().writeHandedOff(reply["drvs"]);
            worker.written = reply.value("handOff", worker.written);
        } catch (nix::Error & e) {
            for (auto & job : jobs)
                if (!job.contains("error")) job = environmentErrorJob(job["attrPath"].get<AttrPath>(), nix_api::renderError(e));
        }
    }
    for (auto & job : jobs) emit(std::move(job));
    std::cout.flush();
}

DrvBatchStore & Coordinator::drvWriter()
{
    if (!drvWriter_) {
        auto store = DrvBatchStore::open().dynamic_pointer_cast<DrvBatchStore>();
        if (!store) throw nix::Error("workers handed over .drv files, but the store is not a local store");
        drvWriter_ = store;
    }
    return *drvWriter_;
}

void Coordinator::handleLine(WorkerProcess & worker, const std::string & line)
{
    json message;
    try {
        message = json::parse(line);
    } catch (json::exception &) {
        worker.fatal = "the worker sent a malformed message";
        return;
    }
    if (message.contains("at")) {
        worker.current = message["at"].get<size_t>();
    } else if (message.contains("ready")) {
        worker.ready = true;
    } else if (message.contains("fatal")) {
        worker.fatal = message["fatal"].get<std::string>();
    } else if (message.contains("results")) {
        handleResults(worker, message);
    }
}

void Coordinator::handleExit(WorkerProcess & worker)
{
    int status = 0;
    ::waitpid(worker.pid, &status, 0);
    worker.pid = -1;

    if (!worker.ready) {
        // The root could not be evaluated: nothing can be.
        fatal_ = !worker.fatal.empty() ? worker.fatal
                                       : nix::fmt("error: the evaluation worker %s before it was ready",
                                                  describeStatus(status));
        return;
    }
    if (worker.batch.empty()) return; // between batches: a restart, or killed while idle

    // The job it was evaluating fails; what it had finished but not yet
    // reported (its .drv files may not be written) and what it had not
    // started go to another worker.
    size_t culprit = std::min(worker.current, worker.batch.size() - 1);
    std::string why = !worker.fatal.empty() ? worker.fatal : describeStatus(status);
    // A stack overflow is the expression's (the stack is the same every
    // time); a signal, a crash or an exit is the machine's.
    bool expressionCaused = worker.fatal.rfind("stack overflow", 0) == 0;
    if (why.rfind("error:", 0) != 0) why = "error: the evaluation worker died: " + why;
    nix::logger->log(nix::lvlError, nix::fmt("evolive-eval-jobs: '%s': %s", showAttrPath(worker.batch[culprit]), why));
    auto & path = worker.batch[culprit];
    emit(expressionCaused ? errorJob(path, why) : environmentErrorJob(path, why));
    std::cout.flush();
    for (size_t i = 0; i < worker.batch.size(); ++i)
        if (i != culprit) queue_.push_front(worker.batch[i]);
    worker.batch.clear();
}

void Coordinator::enter(std::vector<AttrPath> paths)
{
    entered_.clear();
    for (auto & path : paths) {
        entered_.insert(path);
        queue_.push_back(std::move(path));
    }
}

bool Coordinator::evaluateQueue()
{
    if (workers_.empty() && !queue_.empty()) {
        // Opening a local store creates its directories and database when
        // it is new (a chroot store): once, here, before the workers open it
        // together and race to create them (Nix 2.8 fails one of them with
        // "creating symlink ... File exists" or "database is busy").
        if (!storeOpened_) {
            if (args_.noInstantiate || args_.listPaths) nix::settings.readOnlyMode = true; // as the workers
            drvWriter_ = DrvBatchStore::open().dynamic_pointer_cast<DrvBatchStore>();
            storeOpened_ = true;
        }
        spawnWorker(); // one worker lists the top level; the others start once there is work
    }

    while (fatal_.empty()) {
        // Start workers while there is work for them.
        size_t alive = workers_.size();
        if (alive < args_.workers && !queue_.empty()) {
            spawnWorker();
            continue;
        }
        bool busy = false;
        for (auto & w : workers_) {
            if (w->ready && !w->exiting && w->batch.empty() && !queue_.empty()) dispatch(*w);
            if (!w->batch.empty() || !w->ready) busy = true;
        }
        if (!busy && queue_.empty()) break;

        std::vector<pollfd> fds;
        for (auto & w : workers_) fds.push_back({w->replyFd, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw nix::SysError("waiting for workers");
        }
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            auto & w = *workers_[i];
            bool open = w.reader->fill();
            while (auto line = w.reader->nextBufferedLine()) handleLine(w, *line);
            if (!open) {
                handleExit(w);
                w.closeRequests();
                ::close(w.replyFd);
                w.replyFd = -1;
            }
        }
        workers_.erase(std::remove_if(workers_.begin(), workers_.end(), [](auto & w) { return w->replyFd < 0; }),
                       workers_.end());
    }
    if (fatal_.empty()) return true;
    std::cout.flush();
    std::cerr << fatal_ << (fatal_.back() == '\n' ? "" : "\n");
    return false;
}

void Coordinator::emitAggregates()
{
    if (args_.constituents && !aggregates_.empty()) {
        for (auto & aggregate : resolveAggregates(args_, jobsByName_, std::move(aggregates_))) {
            if (aggregate.contains("error")) ++errors_; // counted as a job when it was held back
            std::cout << aggregate.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
        }
    }
    aggregates_.clear();
    jobsByName_.clear();
    std::cout.flush();
}

void Coordinator::logSummary(std::chrono::steady_clock::time_point started) const
{
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nix::logger->log(nix::lvlInfo, nix::fmt("evolive-eval-jobs: %d jobs, %d errors, %.1f s, %d workers, %d restarts", jobs_, errors_,
                                            seconds, args_.workers, restarts_));
}

int Coordinator::run()
{
    auto started = std::chrono::steady_clock::now();
    if (args_.servePaths) return servePaths(started);
    if (args_.pathsFile.empty()) queue_.push_back({});
    else enter(readPathsFile(args_.pathsFile));
    if (!evaluateQueue()) return 1;
    emitAggregates();
    logSummary(started);
    return 0;
}

int Coordinator::servePaths(std::chrono::steady_clock::time_point started)
{
    // The workers stay between requests, and with them what they have
    // evaluated: the root and everything the jobs share. That is the point
    // of this mode: the fleet's chunks of one evaluation cost what they
    // would in one run.
    LineReader input(STDIN_FILENO);
    size_t requests = 0;
    while (auto line = input.readLine()) {
        ++requests;
        json done{{"pathsDone", requests}};
        size_t jobsBefore = jobs_, errorsBefore = errors_;
        try {
            enter(parseAttrPathList(*line));
        } catch (std::exception & e) {
            done["error"] = nix::fmt("--serve-paths: request %d: %s", requests, e.what());
            std::cout << done.dump() << std::endl;
            continue;
        }
        if (!evaluateQueue()) return 1;
        emitAggregates();
        done["jobs"] = jobs_ - jobsBefore;
        done["errors"] = errors_ - errorsBefore;
        std::cout << done.dump() << std::endl;
    }
    logSummary(started);
    return 0;
}

} // namespace evolive
