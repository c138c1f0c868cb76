#include "fleet_fixture.hh"

#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace evolive::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Polls `done` every 20 ms for up to `timeout`: a condition awaited.
template<class F> bool awaitCondition(F done, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

pid_t parentOf(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("PPid:", 0) == 0) return std::stoi(line.substr(5));
    return 0;
}

} // namespace

RedisServer::RedisServer(const std::string & dir) : socket_(dir + "/redis.sock")
{
    start();
}

void RedisServer::start()
{
    fs::remove(socket_);
    process_ = std::make_unique<Subprocess>(std::vector<std::string>{"redis-server", "--port", "0", "--unixsocket", socket_,
                                                                     "--save", "", "--appendonly", "no"});
    if (!awaitCondition([&] { return fs::exists(socket_); }, std::chrono::seconds(10)))
        throw std::runtime_error("redis-server did not start");
}

void RedisServer::stop()
{
    process_.reset(); // SIGKILL, then reaped
    fs::remove(socket_);
}

std::string RedisServer::cli(const std::vector<std::string> & args) const
{
    std::vector<std::string> argv{"redis-cli", "-s", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv).out;
}

FleetWorker::FleetWorker(const std::string & dir, const std::string & name, const std::string & redis,
                         const std::string & cache, const std::map<std::string, std::string> & env,
                         const std::vector<std::string> & extraArgs)
    : dir_(dir + "/" + name), name_(name), root_(dir + "/" + name + "/root"), logFile_(dir + "/" + name + "/worker.log")
{
    fs::create_directories(root_);
    daemon_ = std::make_unique<NixDaemon>(dir_, root_);
    std::vector<std::string> argv{EVOLIVE_BINARY, "worker",        "--redis",       redis,          "--cache", cache,
                                  "--name",       name,            "--state-dir",   dir_ + "/state", "--daemon-socket",
                                  daemon_->socket(), "--store-root", root_};
    argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
    // Its stderr into a file: a pipe nobody reads would fill up and stop it.
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        FILE * log = fopen(logFile_.c_str(), "a");
        if (log) dup2(fileno(log), 2), dup2(fileno(log), 1);
        for (auto & [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char *> args;
        for (auto & a : argv) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    if (!waitForLog("serving", std::chrono::seconds(30)))
        throw std::runtime_error("evolive worker " + name + " did not start: " + log());
}

FleetWorker::~FleetWorker()
{
    kill();
}

std::string FleetWorker::log() const
{
    return readFile(logFile_);
}

bool FleetWorker::waitForLog(const std::string & needle, std::chrono::seconds timeout) const
{
    return awaitCondition([&] { return log().find(needle) != std::string::npos; }, timeout);
}

std::vector<pid_t> FleetWorker::processesBelow() const
{
    std::vector<pid_t> below;
    if (DIR * proc = opendir("/proc")) {
        while (auto * e = readdir(proc)) {
            pid_t p = atoi(e->d_name);
            if (p > 0 && p != pid_ && descendsFrom(p, pid_)) below.push_back(p);
        }
        closedir(proc);
    }
    return below;
}

void FleetWorker::freeze()
{
    if (pid_ <= 0) return;
    ::kill(pid_, SIGSTOP);
    for (auto p : processesBelow()) ::kill(p, SIGSTOP);
}

void FleetWorker::kill()
{
    if (pid_ <= 0) return;
    // The whole tree is stopped first, so that nothing in it starts another
    // process (an evaluator replacing a worker it saw die) while it is
    // being killed; then every process of it goes.
    ::kill(pid_, SIGSTOP);
    std::set<pid_t> tree;
    for (int round = 0; round < 5; ++round) {
        bool found = false;
        for (auto p : processesBelow())
            if (tree.insert(p).second) {
                ::kill(p, SIGSTOP);
                found = true;
            }
        if (!found) break;
    }
    ::kill(pid_, SIGKILL);
    for (auto p : tree) ::kill(p, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

bool FleetWorker::terminate(std::chrono::seconds timeout)
{
    ::kill(pid_, SIGTERM);
    bool exited = awaitCondition([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; }, timeout);
    if (exited) pid_ = -1;
    else kill();
    return exited;
}

Fleet::Fleet(size_t n, bool onS3)
{
    if (onS3) s3 = std::make_unique<S3Server>(dir.path() + "/s3", "cache");
    redis = std::make_unique<RedisServer>(dir.path());
    for (size_t i = 0; i < n; ++i) workers.push_back(startWorker("w" + std::to_string(i + 1)));
}

std::map<std::string, std::string> Fleet::credentials()
{
    return {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};
}

std::unique_ptr<FleetWorker> Fleet::startWorker(const std::string & name, const std::map<std::string, std::string> & env)
{
    return std::make_unique<FleetWorker>(dir.path(), name, redis->url(), cacheUrl(), env);
}

std::unique_ptr<EvoliveServer> Fleet::startServer(const std::vector<std::string> & args)
{
    std::vector<std::string> all{"--fleet", redis->url()};
    all.insert(all.end(), args.begin(), args.end());
    return std::make_unique<EvoliveServer>(dir.path() + "/server", all, credentials());
}

std::set<pid_t> fifoReaders(const std::string & path)
{
    std::set<pid_t> out;
    auto target = fs::canonical(path);
    DIR * proc = opendir("/proc");
    if (!proc) return out;
    while (auto * e = readdir(proc)) {
        pid_t p = atoi(e->d_name);
        if (p <= 0) continue;
        if (readFile("/proc/" + std::to_string(p) + "/wchan") == "wait_for_partner") out.insert(p);
        std::error_code ec;
        for (auto & fd : fs::directory_iterator("/proc/" + std::to_string(p) + "/fd", ec)) {
            std::error_code ec2;
            if (fs::read_symlink(fd.path(), ec2) == target) out.insert(p);
        }
    }
    closedir(proc);
    return out;
}

bool descendsFrom(pid_t pid, pid_t ancestor)
{
    for (int depth = 0; pid > 1 && depth < 64; ++depth) {
        if (pid == ancestor) return true;
        pid = parentOf(pid);
    }
    return false;
}

std::vector<json> ofType(const std::vector<json> & lines, const std::string & type)
{
    std::vector<json> out;
    for (auto & l : lines)
        if (l.value("type", "") == type) out.push_back(l);
    return out;
}

} // namespace evolive::test
