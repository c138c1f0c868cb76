// `evolive serve` end to end: streamed evaluations, replay of a stored
// result, joining a running evaluation, the queue, cancelling, the other
// endpoints, tokens and the configuration file. A real server on a free
// loopback port, real evaluations.
#include "service_client.hh"
#include "subprocess.hh"

#include <atomic>
#include <filesystem>
#include <gtest/gtest.h>
#include <set>
#include <signal.h>
#include <thread>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

std::vector<json> ofType(const std::vector<json> & lines, const std::string & type)
{
    std::vector<json> out;
    for (auto & l : lines)
        if (l.value("type", "") == type) out.push_back(l);
    return out;
}

std::set<std::string> attrs(const std::vector<json> & lines)
{
    std::set<std::string> out;
    for (auto & l : ofType(lines, "job")) out.insert(l["attr"].get<std::string>());
    return out;
}

json slowJobset(const std::string & salt, const std::string & n = "20", const std::string & spin = "1000000")
{
    auto j = fileJobset(serviceData, "slow.nix", {{"salt", salt}, {"n", n}, {"spin", spin}});
    j["options"] = {{"workers", 1}};
    return j;
}

bool noEvaluatorRunsFor(const std::string & salt)
{
    auto r = runCommand({"pgrep", "-f", "evolive-eval-jobs.*" + salt});
    return r.exitCode != 0;
}

} // namespace

TEST(Service, StreamsAnEvaluationThenReplaysItFromTheStoredResult)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", EXAMPLES_DIR});
    auto salt = freshSalt();
    auto jobset = fileJobset(EXAMPLES_DIR, "release.nix", {{"salt", salt}, {"system", "x86_64-linux"}});
    jobset["options"] = {{"meta", true}, {"constituents", true}};
    auto url = server.url() + "/v1/evaluations";

    long status = 0;
    auto first = streamLines(url, jobset.dump(), {}, {}, &status);
    EXPECT_EQ(status, 200);
    ASSERT_GE(first.size(), 4u);
    // The first line comes before fetching; `started` names the fingerprint.
    EXPECT_EQ(first[0]["type"], "accepted");
    EXPECT_EQ(first[0]["queue"], 0);
    EXPECT_EQ(first[1]["type"], "started");
    EXPECT_EQ(first[1]["cached"], false);
    auto fingerprint = first[1]["fingerprint"].get<std::string>();
    EXPECT_EQ(fingerprint.size(), 64u);
    EXPECT_EQ(first.back()["type"], "finished");
    EXPECT_EQ(first.back()["jobs"], ofType(first, "job").size());
    std::set<std::string> expected{"release", "curl", "openssl", "zlib", "broken", "pythonPackages.requests"};
    for (auto & a : expected) EXPECT_TRUE(attrs(first).count(a)) << a;
    EXPECT_TRUE(fs::exists(state.path() + "/state/results/" + fingerprint + ".parquet"));
    auto jobsAfterFirst = readMetrics(server.url())["evolive_jobs_total"];
    EXPECT_EQ(jobsAfterFirst, ofType(first, "job").size());

    // Asked again: the stored result, marked cached, the same jobs, no evaluator.
    auto second = streamLines(url, jobset.dump());
    ASSERT_GE(second.size(), 3u);
    EXPECT_EQ(second[1]["type"], "started");
    EXPECT_EQ(second[1]["cached"], true);
    EXPECT_EQ(second[1]["fingerprint"], fingerprint);
    EXPECT_EQ(second[1]["inputs"]["salt"]["value"], salt);
    EXPECT_EQ(second.back()["cached"], true);
    auto jobLines = [](std::vector<json> lines) {
        std::multiset<std::string> out;
        for (auto & l : ofType(lines, "job")) out.insert(l.dump());
        return out;
    };
    EXPECT_EQ(jobLines(second), jobLines(first));
    auto metrics = readMetrics(server.url());
    EXPECT_EQ(metrics["evolive_jobs_total"], jobsAfterFirst);
    EXPECT_EQ(metrics["evolive_replays_total"], 1);

    // force: evaluated again.
    jobset["force"] = true;
    auto forced = streamLines(url, jobset.dump());
    EXPECT_EQ(forced[1]["cached"], false);
    EXPECT_EQ(jobLines(forced), jobLines(first));
    EXPECT_EQ(readMetrics(server.url())["evolive_jobs_total"], 2 * jobsAfterFirst);

    // The other endpoints.
    auto info = httpRequest("GET", url + "/" + fingerprint);
    EXPECT_EQ(info.status, 200);
    EXPECT_EQ(info.json()["status"], "finished");
    EXPECT_EQ(info.json()["metadata"]["fingerprint"], fingerprint);
    EXPECT_EQ(info.json()["metadata"]["inputs"]["salt"]["value"], salt);
    EXPECT_EQ(info.json()["rows"], ofType(first, "job").size());
    auto jobs = httpRequest("GET", url + "/" + fingerprint + "/jobs");
    EXPECT_EQ(jobs.status, 200);
    EXPECT_EQ(jobs.contentType, "application/x-ndjson");
    std::multiset<std::string> listed;
    std::istringstream in(jobs.body);
    for (std::string line; std::getline(in, line);) listed.insert(json::parse(line).dump());
    EXPECT_EQ(listed, jobLines(first));
    auto log = httpRequest("GET", url + "/" + fingerprint + "/log");
    EXPECT_EQ(log.status, 200);
    EXPECT_NE(log.body.find("evaluation " + fingerprint), std::string::npos);
    EXPECT_NE(log.body.find("broken on purpose"), std::string::npos);
    auto recent = httpRequest("GET", url).json()["evaluations"];
    ASSERT_FALSE(recent.empty());
    EXPECT_EQ(recent[0]["fingerprint"], fingerprint);
    auto unknown = httpRequest("GET", url + "/" + std::string(64, 'a'));
    EXPECT_EQ(unknown.status, 404);
    EXPECT_TRUE(unknown.json().contains("error"));
    EXPECT_EQ(httpRequest("GET", url + "/" + std::string(64, 'a') + "/jobs").status, 404);
    EXPECT_EQ(httpRequest("GET", url + "/" + std::string(64, 'a') + "/log").status, 404);
    EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").json()["status"], "ok");
}

TEST(Service, AStoredGitEvaluationIsReplayedWithoutFetching)
{
    TempDir dir;
    auto repo = dir.path() + "/repo";
    fs::create_directories(repo);
    fs::copy_file(serviceData + "/slow.nix", repo + "/release.nix");
    auto git = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"git", "-C", repo, "-c", "user.name=Test", "-c", "user.email=test@example.org"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = runCommand(argv);
        if (r.exitCode != 0) throw std::runtime_error("git failed: " + r.err);
    };
    git({"init", "-q", "-b", "main"});
    git({"add", "."});
    git({"commit", "-q", "-m", "first"});
    EvoliveServer server(dir.path() + "/state", {"--allow-path", repo}); // a local repository, like a path input
    json jobset{{"inputs",
                 {{"src", {{"type", "git"}, {"url", "git+file://" + repo + "?ref=main"}}},
                  {"salt", {{"type", "string"}, {"value", freshSalt()}}},
                  {"n", {{"type", "string"}, {"value", "3"}}},
                  {"spin", {{"type", "string"}, {"value", "1"}}}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
    auto first = streamLines(server.url() + "/v1/evaluations", jobset.dump());
    ASSERT_EQ(first.back()["type"], "finished") << first.back();
    auto rev = first[1]["inputs"]["src"]["rev"];

    // Without its checkout, the replay needs only the remote's revision.
    auto checkouts = dir.path() + "/state/git/checkouts";
    fs::remove_all(checkouts);
    auto again = streamLines(server.url() + "/v1/evaluations", jobset.dump());
    EXPECT_EQ(again[1]["cached"], true);
    EXPECT_EQ(again[1]["inputs"]["src"]["rev"], rev);
    EXPECT_EQ(attrs(again), attrs(first));
    EXPECT_TRUE(!fs::exists(checkouts) || fs::is_empty(checkouts));

    // A new commit is a new fingerprint: evaluated, and fetched.
    git({"commit", "-q", "--allow-empty", "-m", "second"});
    auto changed = streamLines(server.url() + "/v1/evaluations", jobset.dump());
    EXPECT_EQ(changed[1]["cached"], false);
    EXPECT_NE(changed[1]["fingerprint"], first[1]["fingerprint"]);
    EXPECT_FALSE(fs::is_empty(checkouts));
}

TEST(Service, ASecondClientJoinsTheRunningEvaluationAndGetsEveryJob)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    auto jobset = slowJobset(freshSalt());

    std::vector<json> first;
    std::thread early([&] { first = streamLines(url, jobset.dump()); });
    // The second client comes once jobs have been found.
    ASSERT_TRUE(eventually([&] { return readMetrics(server.url())["evolive_jobs_total"] >= 2; }));
    auto second = streamLines(url, jobset.dump());
    early.join();

    EXPECT_EQ(second[1]["type"], "joined");
    EXPECT_EQ(attrs(second).size(), 20u);
    EXPECT_EQ(attrs(second), attrs(first));
    EXPECT_EQ(second.back()["type"], "finished");
    auto metrics = readMetrics(server.url());
    EXPECT_EQ(metrics["evolive_joins_total"], 1);
    EXPECT_EQ(metrics["evolive_jobs_total"], 20); // evaluated once
    EXPECT_EQ(metrics["evolive_evaluations_total{outcome=\"finished\"}"], 1);
}

TEST(Service, EvaluationsBeyondTheConcurrencyWaitInOrder)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", serviceData, "--concurrency", "1"});
    auto url = server.url() + "/v1/evaluations";

    std::vector<json> a, b;
    std::atomic<size_t> aJobs{0};
    std::thread first([&] {
        a = streamLines(url, slowJobset(freshSalt(), "10").dump(), [&](const json & line) {
            if (line["type"] == "job") ++aJobs;
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] { return readMetrics(server.url())["evolive_evaluations_running"] == 1; }));
    size_t aJobsWhenBStarted = 0;
    b = streamLines(url, slowJobset(freshSalt(), "2").dump(), [&](const json & line) {
        if (line["type"] == "started") aJobsWhenBStarted = aJobs;
        return true;
    });
    first.join();

    EXPECT_EQ(b[0]["type"], "accepted");
    EXPECT_EQ(b[0]["queue"], 1);
    EXPECT_EQ(ofType(b, "queued").size(), 1u);
    EXPECT_EQ(ofType(b, "queued")[0]["position"], 1);
    EXPECT_EQ(a.back()["type"], "finished");
    EXPECT_EQ(b.back()["type"], "finished");
    // B started only after A's last job: A had 10 slow jobs, B waited for them.
    EXPECT_EQ(attrs(a).size(), 10u);
    EXPECT_EQ(aJobsWhenBStarted, 10u);
    EXPECT_EQ(readMetrics(server.url())["evolive_evaluations_total{outcome=\"finished\"}"], 2);
}

TEST(Service, DeleteCancelsAnEvaluationAndKillsItsWorkers)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    auto salt = freshSalt();
    std::string fingerprint;
    std::vector<json> lines;
    std::thread client([&] {
        lines = streamLines(url, slowJobset(salt, "200").dump(), [&](const json & line) {
            if (line["type"] == "started") fingerprint = line["fingerprint"];
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] { return readMetrics(server.url())["evolive_jobs_total"] >= 1; }));
    ASSERT_FALSE(noEvaluatorRunsFor(salt));
    auto cancelled = httpRequest("DELETE", url + "/" + fingerprint);
    EXPECT_EQ(cancelled.status, 202);
    client.join();

    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "failed");
    EXPECT_EQ(lines.back()["stage"], "cancelled");
    EXPECT_LT(attrs(lines).size(), 200u);
    EXPECT_TRUE(eventually([&] { return noEvaluatorRunsFor(salt); }, std::chrono::seconds(10)));
    EXPECT_EQ(httpRequest("GET", url + "/" + fingerprint).json()["status"], "cancelled");
    EXPECT_FALSE(fs::exists(state.path() + "/state/results/" + fingerprint + ".parquet"));
    EXPECT_EQ(httpRequest("DELETE", url + "/" + fingerprint).status, 409);
    EXPECT_EQ(httpRequest("DELETE", url + "/" + std::string(64, 'b')).status, 404);
    EXPECT_EQ(readMetrics(server.url())["evolive_evaluations_total{outcome=\"cancelled\"}"], 1);
}

TEST(Service, TokensAreRequiredWhenConfigured)
{
    TempDir state;
    std::string token = "a-long-enough-token-" + freshSalt();
    EvoliveServer server(state.path() + "/state", {"--token", token});
    for (std::string path : {std::string("/metrics"), std::string("/v1/evaluations"), "/v1/evaluations/" + std::string(64, 'c')}) {
        auto none = httpRequest("GET", server.url() + path);
        EXPECT_EQ(none.status, 401) << path;
        EXPECT_TRUE(none.json().contains("error"));
        EXPECT_EQ(httpRequest("GET", server.url() + path, "", {"Authorization: Bearer wrong-token-of-some-length"}).status, 401);
    }
    EXPECT_EQ(httpRequest("GET", server.url() + "/v1/evaluations", "", {"Authorization: Bearer " + token}).status, 200);
    EXPECT_EQ(httpRequest("POST", server.url() + "/v1/evaluations", "{}").status, 401);
    EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200);
}

TEST(Service, RefusesToListenBeyondLoopbackWithoutTokensAndReadsItsConfigFile)
{
    TempDir dir;
    auto open = runCommand({EVOLIVE_BINARY, "serve", "--listen", "0.0.0.0:0", "--state-dir", dir.path()});
    EXPECT_EQ(open.exitCode, 1);
    EXPECT_NE(open.err.find("no tokens are configured"), std::string::npos) << open.err;

    auto bad = dir.write("bad.toml", "listen = \"127.0.0.1:0\"\nconcurrency = 2\nworkerz = 3\n");
    auto refused = runCommand({EVOLIVE_BINARY, "serve", "--config", bad});
    EXPECT_EQ(refused.exitCode, 2);
    EXPECT_NE(refused.err.find("bad.toml:3: unknown setting 'workerz'"), std::string::npos) << refused.err;
    auto typed = dir.write("typed.toml", "concurrency = \"two\"\n");
    EXPECT_NE(runCommand({EVOLIVE_BINARY, "serve", "--config", typed}).err.find("typed.toml:1: concurrency must be"),
              std::string::npos);

    std::string token = "token-from-the-config-file-" + freshSalt();
    auto good = dir.write("good.toml", "listen = \"127.0.0.1:9\"\ntokens = [\"" + token +
                                           "\"]\nconcurrency = 3\n[push]\ncompression = \"xz\"\n");
    // The flag wins over the file's listen; the file's tokens hold.
    EvoliveServer server(dir.path() + "/state", {"--config", good});
    EXPECT_NE(server.log().find("3 evaluation(s) at once"), std::string::npos) << server.log();
    EXPECT_EQ(httpRequest("GET", server.url() + "/metrics").status, 401);
    EXPECT_EQ(httpRequest("GET", server.url() + "/metrics", "", {"Authorization: Bearer " + token}).status, 200);
}
