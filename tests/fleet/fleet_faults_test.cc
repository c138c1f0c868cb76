// A fleet's faults (docs/fleet.md): a worker killed mid-chunk, a chunk that
// loses every worker it is given, Redis stopped mid-evaluation, a worker
// joining late, a cancelled evaluation, a cache refusing uploads. A chunk
// is held mid-evaluation by a job that reads a FIFO the test controls: the
// test sees which worker's evaluator has it open, and lets it go by writing.
#include "fleet_fixture.hh"

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Six jobs; `held` reads the FIFO `gate` while it is evaluated.
const char * const heldJobset = R"nix({ salt }:
let mk = name: extra: derivation ({ inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; } // extra);
in {
  a = mk "a" { }; b = mk "b" { }; c = mk "c" { };
  held = mk "held" { opened = builtins.readFile ./gate; };
  d = mk "d" { }; e = mk "e" { };
}
)nix";

const std::set<std::string> heldAttrs{"a", "b", "c", "held", "d", "e"};

struct HeldJobset
{
    TempDir dir;
    std::string gate;
    json jobset;
    HeldJobset()
    {
        dir.write("release.nix", heldJobset);
        gate = dir.path() + "/gate";
        if (mkfifo(gate.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
        jobset = fileJobset(dir.path(), "release.nix", {{"salt", freshSalt()}});
    }
    // Lets the evaluator reading the FIFO go on.
    void open() const
    {
        int fd = ::open(gate.c_str(), O_WRONLY | O_NONBLOCK);
        ASSERT_GE(fd, 0) << "nobody reads " << gate;
        ASSERT_EQ(write(fd, "open", 4), 4);
        close(fd);
    }
};

// An evaluation streamed on a thread of its own. A test that stops early
// stops the server, which ends the stream.
struct Streamed
{
    std::vector<json> lines;
    std::atomic<bool> done{false};
    pid_t server;
    std::thread thread;
    Streamed(const EvoliveServer & s, const json & jobset)
        : server(s.pid()), thread([this, url = s.url(), body = jobset.dump()] {
              try {
                  lines = streamLines(url + "/v1/evaluations", body);
              } catch (std::exception & e) {
                  lines.push_back(json{{"type", "test-error"}, {"message", e.what()}});
              }
              if (lines.empty()) lines.push_back(json{{"type", "test-error"}, {"message", "no lines"}});
              done = true;
          })
    {
    }
    ~Streamed()
    {
        if (!thread.joinable()) return;
        if (!done) kill(server, SIGTERM);
        thread.join();
    }
    std::vector<json> & wait()
    {
        thread.join();
        return lines;
    }
};

// Polls for a condition, every 20 ms, up to `seconds`.
template<class F> bool await(F done, int seconds = 60)
{
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

// The live worker whose evaluator reads the FIFO, once there is one (not
// `except`, a worker that may still hold it, frozen).
FleetWorker * holder(Fleet & fleet, const std::string & gate, const FleetWorker * except = nullptr)
{
    FleetWorker * found = nullptr;
    await(
        [&] {
            for (auto p : fifoReaders(gate))
                for (auto & w : fleet.workers)
                    if (w.get() != except && w->pid() > 0 && descendsFrom(p, w->pid())) found = w.get();
            return found != nullptr;
        },
        60);
    return found;
}

std::map<std::string, size_t> attrCounts(const std::vector<json> & lines)
{
    std::map<std::string, size_t> counts;
    for (auto & j : ofType(lines, "job")) counts[j["attr"].get<std::string>()]++;
    return counts;
}

json jobNamed(const std::vector<json> & lines, const std::string & attr)
{
    for (auto & j : ofType(lines, "job"))
        if (j["attr"] == attr) return j;
    return nullptr;
}

// `workers` workers and a server evaluating the held jobset in chunks of
// two (`args`: the server's other settings), streamed from the start.
struct HeldRun
{
    Fleet fleet;
    HeldJobset held;
    std::unique_ptr<EvoliveServer> server;
    std::unique_ptr<Streamed> run; // last, so that it ends before the server
    HeldRun(size_t workers, std::vector<std::string> args) : fleet(workers, false)
    {
        args.insert(args.begin(), {"--allow-path", held.dir.path(), "--chunk-size", "2"});
        server = fleet.startServer(args);
        run = std::make_unique<Streamed>(*server, held.jobset);
    }
};

// Every job of the held jobset is in `lines` once.
void expectEachHeldJobOnce(const std::vector<json> & lines)
{
    auto counts = attrCounts(lines);
    for (auto & attr : heldAttrs) EXPECT_EQ(counts[attr], 1u) << attr;
}

} // namespace

TEST(FleetFaults, AKilledWorkersChunkIsTakenOverWithoutDuplicates)
{
    HeldRun h(2, {"--claim-timeout", "2"});
    auto & [fleet, held, server, run] = h;

    auto * first = holder(fleet, held.gate);
    ASSERT_NE(first, nullptr) << "no worker's evaluator read the FIFO";
    first->kill();
    // After the claim timeout, the other worker takes the chunk and evaluates it again.
    auto * second = holder(fleet, held.gate);
    ASSERT_NE(second, nullptr) << "the chunk was not taken over";
    EXPECT_NE(second, first);
    EXPECT_TRUE(second->waitForLog("took over chunk", std::chrono::seconds(5))) << second->log();
    held.open();

    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    expectEachHeldJobOnce(lines);
    EXPECT_EQ(attrCounts(lines).size(), heldAttrs.size());
    EXPECT_TRUE(jobNamed(lines, "held").contains("drvPath")) << jobNamed(lines, "held");
    EXPECT_EQ(lines.back()["errors"], 0);
}

TEST(FleetFaults, AWorkerStoppedMidChunkLeavesItToAnother)
{
    HeldRun h(2, {"--claim-timeout", "2"});
    auto & [fleet, held, server, run] = h;
    auto * first = holder(fleet, held.gate);
    ASSERT_NE(first, nullptr);
    // SIGTERM: the worker stops its evaluator and exits without finishing the chunk.
    ASSERT_TRUE(first->terminate(std::chrono::seconds(10)));
    EXPECT_NE(first->log().find("this worker is stopping"), std::string::npos) << first->log();
    auto * second = holder(fleet, held.gate);
    ASSERT_NE(second, nullptr) << "the chunk was not taken over";
    held.open();
    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    expectEachHeldJobOnce(lines);
}

// A machine that hangs (SIGSTOP: its worker and its evaluator stop, its
// lease on the chunk is no longer renewed) loses the chunk after the claim
// timeout like a dead one; its evaluator still has the FIFO open, frozen.
TEST(FleetFaults, AHungWorkersChunkIsTakenOverWithoutDuplicates)
{
    HeldRun h(2, {"--claim-timeout", "2"});
    auto & [fleet, held, server, run] = h;
    auto * first = holder(fleet, held.gate);
    ASSERT_NE(first, nullptr) << "no worker's evaluator read the FIFO";
    first->freeze();

    auto * second = holder(fleet, held.gate, first);
    ASSERT_NE(second, nullptr) << "the hung worker's chunk was not taken over";
    EXPECT_TRUE(second->waitForLog("took over chunk", std::chrono::seconds(5))) << second->log();
    held.open(); // only the running evaluator reads it

    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    expectEachHeldJobOnce(lines);
    EXPECT_EQ(attrCounts(lines).size(), heldAttrs.size());
    EXPECT_EQ(lines.back()["errors"], 0);
    first->kill();
}

TEST(FleetFaults, AChunkThatLosesEveryWorkerEndsInErrorLinesAfterMaxAttempts)
{
    HeldRun h(3, {"--claim-timeout", "2", "--max-attempts", "2"});
    auto & [fleet, held, server, run] = h;
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto * w = holder(fleet, held.gate);
        ASSERT_NE(w, nullptr) << "attempt " << attempt << ": no worker took the chunk";
        w->kill();
    }
    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    expectEachHeldJobOnce(lines);
    auto job = jobNamed(lines, "held");
    EXPECT_EQ(job.value("errorCause", ""), "environment") << job;
    EXPECT_NE(job.value("error", "").find("after 2 attempts"), std::string::npos) << job;
    EXPECT_GE(lines.back()["environmentErrors"].get<int>(), 1);
    // Nothing evaluates the abandoned chunk any more (a killed evaluator may
    // take a moment to let go of the FIFO; one still evaluating never does).
    EXPECT_TRUE(await([&] { return fifoReaders(held.gate).empty(); }, 10));
}

// A worker alive but stuck on a chunk (its lease renewed all along) stops
// it at chunk-timeout: a failed attempt, so that after max-attempts the
// chunk's unfinished jobs are error lines and the evaluation finishes.
TEST(FleetFaults, AChunkRunningPastChunkTimeoutIsStoppedAndGivenUp)
{
    // Nobody ever opens the gate.
    HeldRun h(1, {"--claim-timeout", "1", "--max-attempts", "2", "--chunk-timeout", "2"});
    auto & [fleet, held, server, run] = h;
    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    expectEachHeldJobOnce(lines);
    auto job = jobNamed(lines, "held");
    EXPECT_EQ(job.value("errorCause", ""), "environment") << job;
    EXPECT_NE(job.value("error", "").find("chunk-timeout (2 s)"), std::string::npos) << job;
    EXPECT_NE(jobNamed(lines, "a").value("drvPath", ""), "") << "the other chunks are evaluated";
    EXPECT_TRUE(fleet.workers[0]->waitForLog("failed: the chunk ran longer than chunk-timeout", std::chrono::seconds(1)));
    EXPECT_TRUE(await([&] { return fifoReaders(held.gate).empty(); }, 10));
}

TEST(FleetFaults, RedisStoppedMidEvaluationFailsItStoresNothingAndWorkersComeBack)
{
    HeldRun h(2, {"--allow-path", EVOLIVE_TEST_DATA_DIR, "--claim-timeout", "2"});
    auto & [fleet, held, server, run] = h;
    ASSERT_NE(holder(fleet, held.gate), nullptr);
    fleet.redis->stop();
    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "failed") << lines.back();
    EXPECT_NE(lines.back()["message"].get<std::string>().find("Redis"), std::string::npos) << lines.back();
    auto fingerprint = lines[1]["fingerprint"].get<std::string>();
    EXPECT_FALSE(fs::exists(fleet.dir.path() + "/server/results/" + fingerprint + ".parquet"));

    // Redis back (empty): the workers reconnect, the held chunk's evaluator
    // is stopped (its evaluation is gone), and a new evaluation finishes.
    fleet.redis->start();
    for (auto & w : fleet.workers) EXPECT_TRUE(w->waitForLog("Redis is back", std::chrono::seconds(30))) << w->log();
    EXPECT_TRUE(await([&] { return fifoReaders(held.gate).empty(); }, 30));
    auto again = streamLines(server->url() + "/v1/evaluations",
                             fileJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", freshSalt()}}).dump());
    ASSERT_EQ(again.back()["type"], "finished") << again.back() << server->log();
    EXPECT_GT(again.back()["jobs"].get<int>(), 3);
}

TEST(FleetFaults, AWorkerJoiningLateGetsTheWork)
{
    Fleet fleet(0, false);
    auto server = fleet.startServer({"--allow-path", EVOLIVE_TEST_DATA_DIR, "--chunk-size", "3"});
    Streamed run(*server, fileJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", freshSalt()}}));
    // The chunks wait on the stream for a worker.
    ASSERT_TRUE(await([&] { return fleet.redis->cli({"SCARD", "evolive:fleet:v1:evaluations"}) == "1\n"; }));
    EXPECT_FALSE(run.done);
    fleet.workers.push_back(fleet.startWorker("late"));
    auto & lines = run.wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    EXPECT_TRUE(fleet.workers[0]->waitForLog("done:", std::chrono::seconds(1)));
    EXPECT_GT(lines.back()["jobs"].get<int>(), 3);
}

TEST(FleetFaults, MaxMachinesKeepsOtherWorkersOffAnEvaluation)
{
    HeldRun h(2, {"--claim-timeout", "1", "--max-machines", "1"});
    auto & [fleet, held, server, run] = h;
    auto * busy = holder(fleet, held.gate);
    ASSERT_NE(busy, nullptr);
    auto * other = busy == fleet.workers[0].get() ? fleet.workers[1].get() : fleet.workers[0].get();
    // The evaluation's one machine is held, well past the claim timeout
    // (its lease keeps its place): the other worker takes nothing of it.
    EXPECT_FALSE(other->waitForLog("took", std::chrono::seconds(4))) << other->log();
    held.open();
    auto & lines = run->wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    EXPECT_EQ(other->log().find("took"), std::string::npos) << other->log();
    EXPECT_EQ(attrCounts(lines).size(), heldAttrs.size());
}

TEST(FleetFaults, CancellingRemovesTheChunksAndStopsTheWorkers)
{
    HeldRun h(1, {});
    auto & [fleet, held, server, run] = h;
    auto * w = holder(fleet, held.gate);
    ASSERT_NE(w, nullptr);
    auto keys = fleet.redis->cli({"KEYS", "evolive:fleet:v1:chunks:*"});
    ASSERT_NE(keys, "\n");
    auto fingerprint = keys.substr(keys.rfind(':') + 1, 64);
    auto cancelled = httpRequest("DELETE", server->url() + "/v1/evaluations/" + fingerprint);
    EXPECT_EQ(cancelled.status, 202) << cancelled.body;
    auto & lines = run->wait();
    EXPECT_EQ(lines.back()["type"], "failed");
    EXPECT_EQ(lines.back()["stage"], "cancelled");
    // The worker stops within seconds: its evaluator no longer reads the FIFO.
    EXPECT_TRUE(w->waitForLog("stopped: the evaluation was cancelled", std::chrono::seconds(10))) << w->log();
    EXPECT_TRUE(await([&] { return fifoReaders(held.gate).empty(); }, 10));
    EXPECT_EQ(fleet.redis->cli({"EXISTS", "evolive:fleet:v1:chunks:" + fingerprint}), "0\n");
    EXPECT_EQ(fleet.redis->cli({"SCARD", "evolive:fleet:v1:evaluations"}), "0\n");
}

TEST(FleetFaults, ACacheRefusingUploadsGivesPushErrorsOnTheJobs)
{
    // A directory cache that takes no NAR: where its nar/ folder should be
    // is a file (as root, permissions would not stop the worker).
    Fleet fleet(1, false);
    auto cache = fleet.dir.path() + "/cache";
    fs::remove_all(cache + "/nar");
    fleet.dir.write("cache/nar", "not a folder");
    auto server = fleet.startServer({"--allow-path", EVOLIVE_TEST_DATA_DIR, "--chunk-size", "3"});
    auto lines = streamLines(server->url() + "/v1/evaluations",
                             fileJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", freshSalt()}}).dump());
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    size_t withDrv = 0;
    for (auto & j : ofType(lines, "job"))
        if (j.contains("drvPath")) {
            ++withDrv;
            EXPECT_TRUE(j.contains("push") && j["push"].contains("error")) << j;
        }
    EXPECT_GT(withDrv, 0u);
    // Each chunk is reported done but not pushed.
    auto log = readFile(lines[1]["log"].get<std::string>());
    EXPECT_NE(log.find("(pushed: false)"), std::string::npos) << log;
    EXPECT_EQ(log.find("(pushed: true)"), std::string::npos) << log;
}

// Redis is shared: a job line on the results stream nested deep enough to
// overflow a stack when freed (60,000 levels) is refused and logged, and
// messages naming chunks that are not the evaluation's are ignored; the
// coordinator goes on and the evaluation finishes with the workers' lines.
TEST(FleetFaults, HostileMessagesOnTheResultsStreamAreRefused)
{
    Fleet fleet(0, false);
    auto server = fleet.startServer({"--allow-path", EVOLIVE_TEST_DATA_DIR, "--chunk-size", "3"});
    Streamed run(*server, fileJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", freshSalt()}}));
    ASSERT_TRUE(await([&] { return fleet.redis->cli({"SCARD", "evolive:fleet:v1:evaluations"}) == "1\n"; }));
    auto members = fleet.redis->cli({"SMEMBERS", "evolive:fleet:v1:evaluations"});
    auto fingerprint = members.substr(0, members.find('\n'));
    std::string deep = std::string(60000, '[') + std::string(60000, ']');
    auto added = fleet.redis->cli({"XADD", "evolive:fleet:v1:results:" + fingerprint, "*", "v", "1", "chunk", "0",
                                   "worker", "intruder", "type", "job", "job",
                                   R"({"attr": "intruded", "meta": )" + deep + "}"});
    ASSERT_NE(added.find('-'), std::string::npos) << added; // an entry id
    // And messages naming no chunk of the evaluation.
    for (auto chunk : {"not-a-number", "99999999999999999999999", "-1"})
        fleet.redis->cli({"XADD", "evolive:fleet:v1:results:" + fingerprint, "*", "v", "1", "chunk", chunk, "worker",
                          "intruder", "type", "done", "pushed", "true", "stats", "{}"});

    fleet.workers.push_back(fleet.startWorker("m1"));
    auto & lines = run.wait();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
    EXPECT_TRUE(jobNamed(lines, "intruded").is_null());
    EXPECT_GT(lines.back()["jobs"].get<int>(), 3);
    std::ifstream logFile(lines[1]["log"].get<std::string>());
    std::string log((std::istreambuf_iterator<char>(logFile)), std::istreambuf_iterator<char>());
    EXPECT_NE(log.find("a job line of chunk 0: nested deeper than 10000 levels (from intruder)"), std::string::npos)
        << log;
}
