// evolive_server: the evaluation runs on a real `evolive serve` (with its
// own nix-daemon and a binary cache directory); hydra-eval-jobset reads the
// stream and copies the .drv closures from the cache into a second, empty
// Nix store standing in for Hydra's machine before it commits the builds.
#include "hydra_fixture.hh"
#include "service_client.hh"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

namespace evolive::test {

namespace fs = std::filesystem;

namespace {

std::string str(int n) { return std::to_string(n); }

long count(HydraFixture & h, const std::string & sql) { return std::stol(h.scalar(sql).value_or("0")); }

// A server evaluating for the fixture's Hydra, and that Hydra's own store.
struct RemoteSetup
{
    explicit RemoteSetup(HydraFixture & h, const std::vector<std::string> & serverArgs = {},
                         const std::string & extraConfig = "")
        : daemon(h.dataDir()), cache(h.dataDir() + "/cache"),
          server(h.dataDir() + "/server", withDefaults(h, serverArgs))
    {
        h.writeConfig("path_input_cache_validity_seconds = 0\nevolive_server = " + server.url() +
                      "\nevolive_cache = file://" + cache + "\n" + extraConfig);
    }
    std::vector<std::string> withDefaults(HydraFixture & h, std::vector<std::string> args)
    {
        args.insert(args.end(), {"--cache", cache, "--daemon-socket", daemon.socket(), "--allow-path", h.dataDir()});
        return args;
    }
    // NIX_REMOTE for a store of its own, empty until hydra-eval-jobset fills it.
    static std::map<std::string, std::string> storeEnv(const std::string & root) { return {{"NIX_REMOTE", "local?root=" + root}}; }

    NixDaemon daemon;
    std::string cache;
    EvoliveServer server;
};

bool validIn(const std::string & root, const std::string & path)
{
    return runCommand({"nix-store", "--check-validity", path}, RemoteSetup::storeEnv(root)).exitCode == 0;
}

} // namespace

TEST(HydraRemote, EvaluatesOnTheServerAndImportsTheDerivations)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    RemoteSetup remote(h);
    auto store = h.dataDir() + "/hydra-store";
    int id = h.createJobset("constituents", "constituents.nix");
    auto r = h.evalJobset("constituents", "tests", RemoteSetup::storeEnv(store));
    ASSERT_EQ(r.exitCode, 0) << r.err << remote.server.log();
    EXPECT_NE(r.err.find("evaluating on the evolive server at " + remote.server.url()), std::string::npos) << r.err;

    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 6u) << r.err;
    for (auto & [job, b] : builds) {
        auto drv = b["drvpath"];
        // In Hydra's store, with its closure, and rooted.
        EXPECT_TRUE(validIn(store, drv)) << job << " " << drv;
        auto closure = runCommand({"nix-store", "--query", "--requisites", drv}, RemoteSetup::storeEnv(store));
        EXPECT_EQ(closure.exitCode, 0) << closure.err;
        EXPECT_TRUE(fs::exists(h.rootsDir() + "/" + fs::path(drv).filename().string())) << job;
    }
    std::set<std::string> mixed;
    for (auto row : h.query("select c.job from aggregateconstituents x join builds a on a.id = x.aggregate "
                            "join builds c on c.id = x.constituent where a.job = 'mixed_aggregate'"))
        mixed.insert(row[0].as<std::string>());
    EXPECT_EQ(mixed, (std::set<std::string>{"constituentA", "constituentB"}));

    auto n = listener.drain();
    ASSERT_EQ(n.size(), 9u);
    EXPECT_EQ(n[0].channel, "eval_started");
    EXPECT_EQ(n[7].channel, "eval_added");
    EXPECT_EQ(n[8].channel, "builds_added");

    // The same inputs again: eval_cached, without asking the server.
    r = h.evalJobset("constituents", "tests", RemoteSetup::storeEnv(store));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[1].channel, "eval_cached");
    EXPECT_EQ(r.err.find("evaluating on the evolive server"), std::string::npos) << r.err;
}

TEST(HydraRemote, TheSameFingerprintFromTwoHydrasIsEvaluatedOnce)
{
    HydraFixture h;
    RemoteSetup remote(h);
    // Two Hydras (two jobsets with the same inputs, and two stores).
    int first = h.createJobset("first", "basic.nix");
    int second = h.createJobset("second", "basic.nix");
    auto r = h.evalJobset("first", "tests", RemoteSetup::storeEnv(h.dataDir() + "/store-1"));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = h.evalJobset("second", "tests", RemoteSetup::storeEnv(h.dataDir() + "/store-2"));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("answered from its stored result"), std::string::npos) << r.err;
    auto metrics = readMetrics(remote.server.url());
    EXPECT_EQ(metrics["evolive_evaluations_total{outcome=\"finished\"}"], 1) << "evaluated once";
    EXPECT_EQ(metrics["evolive_replays_total"], 1);
    auto a = h.builds(first), b = h.builds(second);
    ASSERT_EQ(b.size(), 3u);
    for (auto & [job, build] : b) {
        EXPECT_EQ(build["drvpath"], a[job]["drvpath"]);
        EXPECT_TRUE(validIn(h.dataDir() + "/store-2", build["drvpath"])) << job;
    }
}

TEST(HydraRemote, TokensAreSentAndRefusalsRecorded)
{
    HydraFixture h;
    std::string token = "a-token-for-the-hydra-tests-" + h.salt();
    RemoteSetup remote(h, {"--token", token}, "evolive_token = wrong-token-of-enough-length\n");
    int id = h.createJobset("basic", "basic.nix");
    auto store = h.dataDir() + "/hydra-store";
    auto r = h.evalJobset("basic", "tests", RemoteSetup::storeEnv(store));
    EXPECT_EQ(r.exitCode, 1) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("refused the evaluation (HTTP 401)"), std::string::npos) << error;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals"), 0);

    std::ofstream(h.dataDir() + "/token") << token << "\n";
    h.writeConfig("evolive_server = " + remote.server.url() + "\nevolive_cache = file://" + remote.cache +
                  "\nevolive_token_file = " + h.dataDir() + "/token\n");
    r = h.evalJobset("basic", "tests", RemoteSetup::storeEnv(store));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + str(id)), 3);
}

TEST(HydraRemote, ServerGoneMidStreamWritesNothing)
{
    HydraFixture h;
    RemoteSetup remote(h);
    auto dir = h.dataDir() + "/synthetic";
    fs::create_directories(dir);
    fs::copy_file(std::string(EVOLIVE_WORKLOADS_DIR) + "/synthetic.nix", dir + "/synthetic.nix");
    std::ofstream(dir + "/release.nix") << "import ./synthetic.nix { n = 4000; salt = \"" << h.salt() << "\"; }\n";
    int id = h.createJobset("big", "release.nix", dir);
    auto env = h.environment();
    env["NIX_REMOTE"] = "local?root=" + h.dataDir() + "/hydra-store";
    Subprocess run({hydraEvalJobsetBinary(), "tests", "big"}, env);
    ASSERT_TRUE(run.waitForStderr(" started", std::chrono::seconds(120))) << run.stderrSoFar();
    kill(remote.server.pid(), SIGKILL);
    auto r = run.wait();
    EXPECT_EQ(r.exitCode, 1) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("the evolive server at " + remote.server.url()), std::string::npos) << error;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals"), 0);
    EXPECT_EQ(count(h, "select count(*) from builds"), 0);
    EXPECT_EQ(count(h, "select count(*) from evaluationerrors"), 0);
}

} // namespace evolive::test
