// A fleet evaluation gives what a local one gives: the same job lines (as
// sets, ignoring the push outcome), the same fingerprint, no duplicates,
// nothing missing, on the synthetic jobset and the evaluator tests'
// jobsets; and `nix` reads every job's .drv closure from the shared cache,
// the only place the workers' .drv files meet (each worker has a store of
// its own).
#include "fleet_fixture.hh"

#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <thread>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json pathJobset(const std::string & dir, const std::string & file, const std::map<std::string, std::string> & strings,
                json options)
{
    auto j = fileJobset(dir, file, strings);
    j["options"] = options;
    return j;
}

// Job lines without what may differ between a fleet and a local run.
std::multiset<std::string> comparable(const std::vector<json> & lines)
{
    std::multiset<std::string> out;
    for (auto job : ofType(lines, "job")) {
        job.erase("push");
        out.insert(job.dump());
    }
    return out;
}

std::string attrsOf(const std::multiset<std::string> & jobs)
{
    std::string s;
    for (auto & j : jobs) s += json::parse(j)["attr"].get<std::string>() + " ";
    return s;
}

// Evaluates each jobset on the fleet and locally (the same server,
// "fleet": false, forced) and compares.
void expectFleetEqualsLocal(Fleet & fleet, const std::vector<std::pair<std::string, json>> & jobsets)
{
    auto server = fleet.startServer({"--allow-path", EVOLIVE_TEST_DATA_DIR, "--allow-path", EVOLIVE_WORKLOADS_DIR,
                                     "--chunk-size", "7", "--claim-timeout", "60"});
    auto url = server->url() + "/v1/evaluations";
    for (auto & [name, jobset] : jobsets) {
        SCOPED_TRACE(name);
        auto fleetLines = streamLines(url, jobset.dump());
        ASSERT_GE(fleetLines.size(), 3u) << server->log();
        ASSERT_EQ(fleetLines.back()["type"], "finished") << fleetLines.back().dump() << server->log();
        ASSERT_EQ(fleetLines[1]["type"], "started");
        EXPECT_EQ(fleetLines[1]["cached"], false);

        auto local = jobset;
        local["options"]["fleet"] = false;
        local["force"] = true;
        auto localLines = streamLines(url, local.dump());
        ASSERT_EQ(localLines.back()["type"], "finished") << localLines.back().dump();

        // The same fingerprint: where it ran does not change the result.
        EXPECT_EQ(fleetLines[1]["fingerprint"], localLines[1]["fingerprint"]);
        auto fleetJobs = comparable(fleetLines), localJobs = comparable(localLines);
        EXPECT_GT(fleetJobs.size(), 5u);
        EXPECT_EQ(fleetJobs, localJobs) << "fleet: " << attrsOf(fleetJobs) << "\nlocal: " << attrsOf(localJobs);
        std::set<std::string> attrs;
        for (auto & j : ofType(fleetLines, "job")) EXPECT_TRUE(attrs.insert(j["attr"].get<std::string>()).second) << j;
        EXPECT_EQ(fleetLines.back()["jobs"], fleetJobs.size());

        // Every .drv closure is in the cache, read by `nix` itself, and the
        // line says so.
        std::vector<std::string> drvs;
        for (auto & j : ofType(fleetLines, "job"))
            if (j.contains("drvPath")) {
                drvs.push_back(j["drvPath"]);
                EXPECT_TRUE(j.contains("push") && !j["push"].contains("error")) << j;
            }
        ASSERT_FALSE(drvs.empty());
        std::vector<std::string> args{"path-info", "--derivation", "--recursive", "--store", fleet.readableCache()};
        args.insert(args.end(), drvs.begin(), drvs.end());
        auto info = runNix(args);
        EXPECT_EQ(info.exitCode, 0) << info.err;
        for (auto & drv : drvs) EXPECT_NE(info.out.find(drv), std::string::npos) << drv;
    }

}

} // namespace

TEST(Fleet, EvaluatesAsALocalEvaluationDoesAndTheCacheHoldsEveryDrv)
{
    Fleet fleet(3);
    auto salt = freshSalt();
    json synthetic = pathJobset(EVOLIVE_WORKLOADS_DIR, "synthetic.nix", {{"salt", salt}}, {{"constituents", true}, {"meta", true}});
    synthetic["inputs"]["n"] = {{"type", "nix"}, {"value", "300"}};
    synthetic["inputs"]["work"] = {{"type", "nix"}, {"value", "10"}};
    expectFleetEqualsLocal(fleet, {{"synthetic", synthetic},
                                   {"names", pathJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", salt}}, json::object())},
                                   {"aggregates", pathJobset(EVOLIVE_TEST_DATA_DIR, "aggregates.nix", {{"salt", salt}},
                                                             {{"constituents", true}})}});
    // More than one machine did the work (each with a store of its own).
    size_t busy = 0;
    for (auto & w : fleet.workers) busy += w->log().find("done:") != std::string::npos;
    EXPECT_GE(busy, 2u);
}

// errors.nix has a chain of 20,000 derivations: its closure goes to a
// directory cache, which takes it in seconds (the S3 server, in minutes).
TEST(Fleet, EvaluatesTheErrorsJobsetAsALocalEvaluationDoes)
{
    Fleet fleet(3, false);
    expectFleetEqualsLocal(fleet, {{"errors", pathJobset(EVOLIVE_TEST_DATA_DIR, "errors.nix", {{"salt", freshSalt()}}, json::object())}});
}

// The chunks of one evaluation share a worker's evaluator (the root and the
// shared dependencies are evaluated once per worker, not once per chunk);
// once the evaluation is over, the evaluator ends and its memory is freed.
TEST(Fleet, AWorkerKeepsOneEvaluatorForAnEvaluationsChunksAndEndsItAfter)
{
    Fleet fleet(1, false);
    auto server = fleet.startServer({"--allow-path", EVOLIVE_WORKLOADS_DIR, "--chunk-size", "40"});
    auto & worker = *fleet.workers[0];
    for (int round = 1; round <= 2; ++round) {
        SCOPED_TRACE(round);
        json jobset = pathJobset(EVOLIVE_WORKLOADS_DIR, "synthetic.nix", {{"salt", freshSalt()}}, json::object());
        jobset["inputs"]["n"] = {{"type", "nix"}, {"value", "150"}};
        jobset["inputs"]["work"] = {{"type", "nix"}, {"value", "10"}};
        auto lines = streamLines(server->url() + "/v1/evaluations", jobset.dump());
        ASSERT_EQ(lines.back()["type"], "finished") << lines.back() << server->log();
        std::string fp = lines[1]["fingerprint"];

        auto log = worker.log();
        size_t chunks = 0, started = 0;
        for (size_t at = 0; (at = log.find("of " + fp + " done:", at)) != std::string::npos; ++at) ++chunks;
        for (size_t at = 0; (at = log.find("starting an evaluator for " + fp, at)) != std::string::npos; ++at) ++started;
        EXPECT_GE(chunks, 4u) << log;
        EXPECT_EQ(started, 1u) << log;

        EXPECT_TRUE(worker.waitForLog("ending the evaluator for " + fp, std::chrono::seconds(10))) << worker.log();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!worker.processesBelow().empty() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_TRUE(worker.processesBelow().empty()) << "the evaluator outlived its evaluation";
    }
}

TEST(Fleet, AJobsetAskingForAFleetIsRefusedByAServerWithoutOne)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", EVOLIVE_TEST_DATA_DIR});
    auto jobset = pathJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", "x"}}, {{"fleet", true}});
    auto response = httpRequest("POST", server.url() + "/v1/evaluations", jobset.dump());
    EXPECT_EQ(response.status, 400);
    EXPECT_NE(response.body.find("options.fleet: this server has no fleet"), std::string::npos) << response.body;
}

TEST(Fleet, TheConfigurationFileSetsTheFleetAndRefusesWhatItDoesNotKnow)
{
    TempDir dir;
    auto bad = dir.write("bad.toml", "[fleet]\nredis = \"unix:///nowhere.sock\"\nchunk-size = 0\n");
    auto refused = runCommand({EVOLIVE_BINARY, "serve", "--config", bad, "--state-dir", dir.path() + "/s"});
    EXPECT_EQ(refused.exitCode, 2);
    EXPECT_NE(refused.err.find("fleet.chunk-size must be a whole number >= 1"), std::string::npos) << refused.err;
    auto unknown = dir.write("unknown.toml", "[fleet]\nredis = \"unix:///nowhere.sock\"\nchunks = 5\n");
    refused = runCommand({EVOLIVE_BINARY, "serve", "--config", unknown, "--state-dir", dir.path() + "/s"});
    EXPECT_EQ(refused.exitCode, 2);
    EXPECT_NE(refused.err.find("fleet.chunks"), std::string::npos) << refused.err;
    auto endless = dir.write("endless.toml", "[fleet]\nredis = \"unix:///nowhere.sock\"\nchunk-timeout = 9223372036854775807\n");
    refused = runCommand({EVOLIVE_BINARY, "serve", "--config", endless, "--state-dir", dir.path() + "/s"});
    EXPECT_EQ(refused.exitCode, 2);
    EXPECT_NE(refused.err.find("fleet.chunk-timeout must be between 0 (no limit) and 2592000 seconds"), std::string::npos) << refused.err;
    auto url = dir.write("url.toml", "[fleet]\nredis = \"http://redis:6379\"\n");
    refused = runCommand({EVOLIVE_BINARY, "serve", "--config", url, "--state-dir", dir.path() + "/s"});
    EXPECT_EQ(refused.exitCode, 2);
    EXPECT_NE(refused.err.find("fleet.redis: a Redis address is redis://HOST:PORT or unix:///PATH"), std::string::npos)
        << refused.err;

    // A good one: evaluations go to the fleet the file names.
    Fleet fleet(1, false);
    auto good = dir.write("good.toml", "[fleet]\nredis = \"" + fleet.redis->url() +
                                           "\"\nchunk-size = 2\nclaim-timeout = 5\nmax-attempts = 2\nmax-machines = 4\nchunk-timeout = 600\n");
    EvoliveServer server(dir.path() + "/state", {"--config", good, "--allow-path", EVOLIVE_TEST_DATA_DIR});
    EXPECT_NE(server.log().find("evaluating on the fleet at " + fleet.redis->url() + " (2 paths a chunk)"),
              std::string::npos)
        << server.log();
    auto lines = streamLines(server.url() + "/v1/evaluations",
                             fileJobset(EVOLIVE_TEST_DATA_DIR, "names.nix", {{"salt", freshSalt()}}).dump());
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    EXPECT_TRUE(fleet.workers[0]->waitForLog("done:", std::chrono::seconds(1)));
}

TEST(Fleet, AWorkerGivenABadRedisAddressOrDaemonSaysSoAndExits)
{
    TempDir dir;
    auto bad = runCommand({EVOLIVE_BINARY, "worker", "--redis", "http://redis:6379", "--cache", dir.path() + "/cache",
                           "--state-dir", dir.path() + "/state"});
    EXPECT_EQ(bad.exitCode, 1);
    EXPECT_NE(bad.err.find("evolive worker: a Redis address is redis://HOST:PORT or unix:///PATH"), std::string::npos)
        << bad.err;
    auto noDaemon = runCommand({EVOLIVE_BINARY, "worker", "--redis", "unix://" + dir.path() + "/redis.sock", "--cache",
                                dir.path() + "/cache", "--state-dir", dir.path() + "/state", "--daemon-socket",
                                dir.path() + "/no-daemon.sock"});
    EXPECT_EQ(noDaemon.exitCode, 1);
    EXPECT_NE(noDaemon.err.find("no-daemon.sock"), std::string::npos) << noDaemon.err;
    auto missing = runCommand({EVOLIVE_BINARY, "worker", "--cache", dir.path() + "/cache"});
    EXPECT_NE(missing.exitCode, 0);
    EXPECT_NE(missing.err.find("--redis is required"), std::string::npos) << missing.err;
}
