// A fleet on this machine, of real parts: redis-server on a Unix socket,
// the S3 server holding the shared binary cache, `evolive worker`s each
// with a Nix store of its own (a chroot store served by its own
// nix-daemon, so that the cache is the only way their .drv files travel),
// and `evolive serve --fleet`.
#pragma once

#include "service_client.hh"
#include "subprocess.hh"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace evolive::test {

// redis-server on DIR/redis.sock, no persistence; stop() and start() again
// at the same socket.
class RedisServer
{
public:
    explicit RedisServer(const std::string & dir);
    void start();
    void stop();
    std::string url() const { return "unix://" + socket_; }
    // `redis-cli` on the socket; its output.
    std::string cli(const std::vector<std::string> & args) const;

private:
    std::string socket_;
    std::unique_ptr<Subprocess> process_;
};

// One machine of the fleet: its daemon, its chroot store, its worker.
class FleetWorker
{
public:
    FleetWorker(const std::string & dir, const std::string & name, const std::string & redis, const std::string & cache,
                const std::map<std::string, std::string> & env, const std::vector<std::string> & extraArgs = {});
    ~FleetWorker();
    const std::string & name() const { return name_; }
    pid_t pid() const { return pid_; }
    std::string log() const;
    // Waits until its log contains `needle`.
    bool waitForLog(const std::string & needle, std::chrono::seconds timeout) const;
    // SIGKILL: the worker, then the evaluator processes under it.
    void kill();
    // SIGSTOP to the worker and every process under it: a machine that
    // hangs (its lease on a chunk is no longer renewed). kill() still ends it.
    void freeze();
    // SIGTERM, then waits for the worker to exit; false if it did not
    // within `timeout` (it is killed then).
    bool terminate(std::chrono::seconds timeout);
    const std::string & storeRoot() const { return root_; }
    // Its descendants (the evaluator and the evaluator's workers).
    std::vector<pid_t> processesBelow() const;

private:
    std::string dir_, name_, root_, logFile_;
    std::unique_ptr<NixDaemon> daemon_;
    pid_t pid_ = -1;
};

// Everything but the server, whose arguments each test chooses.
struct Fleet
{
    // `s3`: the shared cache on the S3 server; otherwise a directory.
    explicit Fleet(size_t workers = 3, bool s3 = true);
    TempDir dir;
    std::unique_ptr<S3Server> s3;
    std::unique_ptr<RedisServer> redis;
    std::vector<std::unique_ptr<FleetWorker>> workers;

    // As the workers write it, and as `nix` reads it.
    std::string cacheUrl() const { return s3 ? "s3://cache?endpoint=" + s3->endpoint() : "file://" + dir.path() + "/cache"; }
    std::string readableCache() const { return s3 ? s3->endpoint() + "/cache" : "file://" + dir.path() + "/cache"; }
    static std::map<std::string, std::string> credentials();
    std::unique_ptr<FleetWorker> startWorker(const std::string & name,
                                             const std::map<std::string, std::string> & env = credentials());
    // `evolive serve --fleet` with a fleet's settings and `args`; data
    // directories must be allowed with --allow-path.
    std::unique_ptr<EvoliveServer> startServer(const std::vector<std::string> & args);
};

// The processes that read the FIFO `path`: those that have it open, and
// those blocked opening a FIFO (wchan wait_for_partner: until a writer
// comes, the file is not among their descriptors yet).
std::set<pid_t> fifoReaders(const std::string & path);
// Whether `ancestor` is `pid` or one of its ancestors.
bool descendsFrom(pid_t pid, pid_t ancestor);

// The lines of `type`.
std::vector<nlohmann::json> ofType(const std::vector<nlohmann::json> & lines, const std::string & type);

} // namespace evolive::test
