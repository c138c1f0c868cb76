// `evolive diff` and GET /v1/evaluations/OLD/diff/NEW end to end: real
// evaluations of a jobset made for the test (tests/data/diff/jobs.nix) in
// two versions, stored in a directory or in S3 (@20minutes/s3rver), and
// compared by fingerprint or by file; the page's other routes (previous
// evaluation, pages of jobs, following a running evaluation).
#include "../server/service_client.hh"
#include "subprocess.hh"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <algorithm>
#include <gtest/gtest.h>
#include <thread>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string diffData = EVOLIVE_TEST_DATA_DIR "/diff";

struct Evaluated
{
    std::string fingerprint, result;
};

json versionJobset(const std::string & salt, const std::string & version)
{
    return fileJobset(diffData, "jobs.nix", {{"salt", salt}, {"version", version}});
}

Evaluated evaluate(const TempDir & dir, const json & jobset, const std::vector<std::string> & extra = {},
                   const std::map<std::string, std::string> & env = {})
{
    static int n = 0;
    auto file = dir.write("jobset-" + std::to_string(n++) + ".json", jobset.dump());
    std::vector<std::string> argv{EVOLIVE_BINARY, "eval", file, "--state-dir", dir.path() + "/state"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = runCommand(argv, env);
    EXPECT_EQ(r.exitCode, 0) << r.err << r.out;
    auto lines = lineSet(r.out);
    for (auto & line : lines) {
        auto m = json::parse(line, nullptr, false);
        if (m.is_object() && m.value("type", "") == "finished") return {m["fingerprint"], m["result"]};
    }
    ADD_FAILURE() << "no finished line: " << r.out << r.err;
    return {};
}

Completed diff(const std::vector<std::string> & args, const std::map<std::string, std::string> & env = {})
{
    std::vector<std::string> argv{EVOLIVE_BINARY, "diff"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, env);
}

std::vector<std::string> names(const json & list) { return list.get<std::vector<std::string>>(); }

// What tests/data/diff/jobs.nix changes from version 1 to 2.
void expectVersionDiff(const json & d)
{
    using V = std::vector<std::string>;
    EXPECT_EQ(names(d["added"]), (V{"added", "darwinAdded", "sameAlias"}));
    EXPECT_EQ(names(d["removed"]), (V{"removed"}));
    EXPECT_EQ(names(d["changed"]), (V{"aggregate", "armChanged", "changed", "source"}));
    // Not `source` (a fixed output: same path) nor `sameAlias` (its output
    // was built for `same` already).
    EXPECT_EQ(names(d["rebuilds"]), (V{"added", "aggregate", "armChanged", "changed", "darwinAdded", "repaired"}));
    EXPECT_EQ(names(d["newlyFailing"]), (V{"breaks"}));
    EXPECT_EQ(names(d["fixed"]), (V{"repaired"}));
    EXPECT_EQ(d["old"]["jobs"], 10);
    EXPECT_EQ(d["old"]["errors"], 2);
    EXPECT_EQ(d["new"]["jobs"], 12);
    EXPECT_EQ(d["new"]["errors"], 2);
    EXPECT_EQ(d["old"]["inputs"]["version"]["value"], "1");
    EXPECT_EQ(d["new"]["inputs"]["version"]["value"], "2");

    auto & x86 = d["systems"]["x86_64-linux"];
    EXPECT_EQ(x86["added"], 2);
    EXPECT_EQ(x86["removed"], 1);
    EXPECT_EQ(x86["changed"], 3);
    EXPECT_EQ(x86["rebuilds"], 4);
    EXPECT_EQ(x86["newlyFailing"], 1);
    EXPECT_EQ(x86["fixed"], 1);
    EXPECT_EQ(x86["label"], "1-10");
    EXPECT_EQ(d["systems"]["aarch64-linux"]["changed"], 1);
    EXPECT_EQ(d["systems"]["aarch64-linux"]["rebuilds"], 1);
    EXPECT_EQ(d["systems"]["x86_64-darwin"]["added"], 1);
    EXPECT_EQ(d["systems"]["x86_64-darwin"]["rebuilds"], 1);
    EXPECT_EQ(d["systems"].size(), 3u);
    EXPECT_EQ(d["counts"]["rebuilds"], 6);
    EXPECT_EQ(d["counts"]["rebuildDerivations"], 6);
    EXPECT_EQ(d["kernels"]["linux"], 5);
    EXPECT_EQ(d["kernels"]["darwin"], 1);
    EXPECT_EQ(d["labels"], json({"10.rebuild-darwin: 1", "10.rebuild-darwin: 1-10", "10.rebuild-linux: 1-10"}));
}

} // namespace

TEST(DiffCommand, ComparesTwoEvaluationsByFingerprintOrFile)
{
    TempDir dir;
    auto salt = freshSalt();
    auto v1 = evaluate(dir, versionJobset(salt, "1"));
    auto v2 = evaluate(dir, versionJobset(salt, "2"));
    auto state = dir.path() + "/state";

    auto byFingerprint = diff({v1.fingerprint, v2.fingerprint, "--state-dir", state});
    ASSERT_EQ(byFingerprint.exitCode, 0) << byFingerprint.err;
    auto d = json::parse(byFingerprint.out);
    EXPECT_EQ(d["old"]["fingerprint"], v1.fingerprint);
    EXPECT_EQ(d["new"]["fingerprint"], v2.fingerprint);
    expectVersionDiff(d);

    // Result files, anywhere; the other way round swaps the categories.
    auto copy = dir.path() + "/copy.parquet";
    fs::copy_file(v1.result, copy);
    auto byFile = diff({copy, v2.result});
    ASSERT_EQ(byFile.exitCode, 0) << byFile.err;
    EXPECT_EQ(json::parse(byFile.out), d);
    auto back = json::parse(diff({v2.result, v1.result}).out);
    EXPECT_EQ(names(back["removed"]), names(d["added"]));
    EXPECT_EQ(names(back["newlyFailing"]), names(d["fixed"]));
    // Going back, `removed` is built already: nothing but what v1 had new.
    EXPECT_EQ(names(back["rebuilds"]), (std::vector<std::string>{"aggregate", "armChanged", "breaks", "changed", "removed"}));

    auto text = diff({v1.result, v2.result, "--format", "text"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_NE(text.out.find("x86_64-linux       2        1        3         4              1      1  1-10"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("rebuilds (6):\n  added\n"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("version 1"), std::string::npos) << text.out;
    auto markdown = diff({v1.result, v2.result, "--format", "markdown", "--limit", "1"});
    ASSERT_EQ(markdown.exitCode, 0) << markdown.err;
    EXPECT_NE(markdown.out.find("<details><summary>Rebuilds (6)</summary>"), std::string::npos) << markdown.out;
    EXPECT_NE(markdown.out.find("- ... and 5 more"), std::string::npos) << markdown.out;
    auto limited = json::parse(diff({v1.result, v2.result, "--limit", "2"}).out);
    EXPECT_EQ(limited["rebuilds"].size(), 2u);
    EXPECT_EQ(limited["counts"]["rebuilds"], 6);
    EXPECT_EQ(limited["truncated"], true);
}

TEST(DiffCommand, ComparesEvaluationsOfDifferentJobsets)
{
    TempDir dir;
    auto salt = freshSalt();
    auto ours = evaluate(dir, versionJobset(salt, "1"));
    auto example = evaluate(dir, fileJobset(EXAMPLES_DIR, "release.nix", {{"salt", salt}, {"system", "x86_64-linux"}}));
    auto r = diff({ours.fingerprint, example.fingerprint, "--state-dir", dir.path() + "/state"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto d = json::parse(r.out);
    // No attribute in common: all of one removed, all of the other added.
    EXPECT_EQ(d["counts"]["removed"], 10);
    EXPECT_EQ(d["counts"]["added"], d["new"]["jobs"]);
    EXPECT_EQ(d["counts"]["changed"], 0);
    EXPECT_EQ(d["counts"]["rebuilds"], d["new"]["jobs"].get<int>() - d["new"]["errors"].get<int>());
    EXPECT_EQ(d["new"]["expression"]["path"], "release.nix");
}

TEST(DiffCommand, SaysWhatItCannotFind)
{
    TempDir dir;
    auto unknown = std::string(64, 'e');
    auto r = diff({unknown, unknown, "--state-dir", dir.path()});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("no stored result for " + unknown + " in " + dir.path() + "/results"), std::string::npos) << r.err;
    r = diff({"nonsense", unknown, "--state-dir", dir.path()});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("'nonsense' is neither a result file nor a fingerprint"), std::string::npos) << r.err;
    auto notResult = dir.write("x.parquet", "PAR1 but not really");
    r = diff({notResult, notResult});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("not a readable evolive result file"), std::string::npos) << r.err;
    r = diff({notResult, notResult, "--format", "yaml"});
    EXPECT_NE(r.exitCode, 0);
}

TEST(DiffCommand, ComparesResultsStoredInS3)
{
    TempDir dir;
    std::map<std::string, std::string> credentials{{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};
    S3Server s3(dir.path() + "/s3", "results");
    auto url = "s3://results?endpoint=" + s3.endpoint() + "&prefix=evals/";
    auto salt = freshSalt();
    auto v1 = evaluate(dir, versionJobset(salt, "1"), {"--results", url}, credentials);
    auto v2 = evaluate(dir, versionJobset(salt, "2"), {"--results", url}, credentials);
    // A fresh state directory: both results come from the bucket.
    TempDir elsewhere;
    auto r = diff({v1.fingerprint, v2.fingerprint, "--results", url, "--state-dir", elsewhere.path()}, credentials);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    expectVersionDiff(json::parse(r.out));
    EXPECT_TRUE(fs::exists(elsewhere.path() + "/results-cache/" + v2.fingerprint + ".parquet"));
    // Wrong credentials: S3's refusal, not "no such result".
    auto refused = diff({v1.fingerprint, v2.fingerprint, "--results", url, "--state-dir", elsewhere.path() + "/2"},
                        {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "wrong"}});
    EXPECT_EQ(refused.exitCode, 1);
    EXPECT_NE(refused.err.find("403"), std::string::npos) << refused.err;
}

TEST(DiffService, ComparesStoredEvaluationsAndFindsThePreviousOne)
{
    TempDir dir;
    std::string token = "a-token-for-the-diff-test-" + freshSalt();
    EvoliveServer server(dir.path() + "/state", {"--allow-path", diffData, "--allow-path", EXAMPLES_DIR, "--token", token});
    std::vector<std::string> auth{"Authorization: Bearer " + token};
    auto salt = freshSalt();
    auto submit = [&](const json & jobset) {
        auto lines = streamLines(server.url() + "/v1/evaluations", jobset.dump(), {}, auth);
        EXPECT_FALSE(lines.empty());
        EXPECT_EQ(lines.back()["type"], "finished") << lines.back();
        return lines.back()["fingerprint"].get<std::string>();
    };
    // Result times have seconds: each evaluation starts in a second of its own.
    auto nextSecond = [] {
        auto now = time(nullptr);
        ASSERT_TRUE(eventually([&] { return time(nullptr) != now; }, std::chrono::seconds(5)));
    };
    auto v1 = submit(versionJobset(salt, "1"));
    nextSecond();
    auto other = submit(fileJobset(EXAMPLES_DIR, "release.nix", {{"salt", salt}, {"system", "x86_64-linux"}}));
    nextSecond();
    auto v2 = submit(versionJobset(salt, "2"));
    auto evals = server.url() + "/v1/evaluations/";

    auto r = httpRequest("GET", evals + v1 + "/diff/" + v2, "", auth);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.contentType, "application/json");
    expectVersionDiff(r.json());
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/diff/" + v2).status, 401);
    auto text = httpRequest("GET", evals + v1 + "/diff/" + v2 + "?format=text&limit=1", "", auth);
    EXPECT_EQ(text.status, 200);
    EXPECT_NE(text.body.find("... and 5 more"), std::string::npos) << text.body;
    auto md = httpRequest("GET", evals + v1 + "/diff/" + v2 + "?format=markdown", "", auth);
    EXPECT_NE(md.body.find("| **all** | 3 | 1 | 4 | 6 | 1 | 1 | 1-10 |"), std::string::npos) << md.body;
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/diff/" + v2 + "?limit=2", "", auth).json()["rebuilds"].size(), 2u);
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/diff/" + v2 + "?limit=x", "", auth).status, 400);
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/diff/" + v2 + "?format=yaml", "", auth).status, 400);
    auto missing = httpRequest("GET", evals + v1 + "/diff/" + std::string(64, 'd'), "", auth);
    EXPECT_EQ(missing.status, 404);
    EXPECT_NE(missing.json()["error"].get<std::string>().find(std::string(64, 'd')), std::string::npos);
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/diff/nope", "", auth).status, 404);
    EXPECT_EQ(httpRequest("POST", evals + v1 + "/diff/" + v2, "{}", auth).status, 405);

    // The previous evaluation of the same jobset skips the other jobset's,
    // though it was stored in between.
    auto previous = httpRequest("GET", evals + v2 + "/previous", "", auth);
    ASSERT_EQ(previous.status, 200) << previous.body;
    EXPECT_EQ(previous.json()["fingerprint"], v1);
    EXPECT_EQ(httpRequest("GET", evals + v1 + "/previous", "", auth).status, 404);
    EXPECT_EQ(httpRequest("GET", evals + other + "/previous", "", auth).status, 404);

    // The status says how many workers an evaluation had.
    EXPECT_EQ(httpRequest("GET", evals + v2, "", auth).json()["workers"], 1);
}

TEST(DiffService, PagesOfJobsBySearch)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", diffData});
    auto lines = streamLines(server.url() + "/v1/evaluations", versionJobset(freshSalt(), "2").dump());
    ASSERT_EQ(lines.back()["type"], "finished");
    auto jobs = server.url() + "/v1/evaluations/" + lines.back()["fingerprint"].get<std::string>() + "/jobs";
    auto page = [&](const std::string & query) {
        auto r = httpRequest("GET", jobs + query);
        EXPECT_EQ(r.status, 200) << r.body;
        std::vector<std::string> attrs;
        for (auto & line : lineSet(r.body)) attrs.push_back(json::parse(line)["attr"]);
        std::sort(attrs.begin(), attrs.end());
        return attrs;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(page("?search=CHANGED"), (V{"armChanged", "changed"}));
    EXPECT_EQ(page("?search=&errors=1"), (V{"breaks", "stillBroken"}));
    EXPECT_EQ(page("?search=a&limit=3").size(), 3u);
    EXPECT_EQ(page("?search=a&offset=3&limit=100").size(), 7u); // 10 of the 12 contain an a
    EXPECT_EQ(page("?search=%61rm+").size(), 0u);             // "arm " with a space: none
    EXPECT_EQ(page("?search=%61rm"), (V{"armChanged", "armSame"}));
    // How many match, and how many there are, go in headers.
    auto counted = runCommand({"curl", "-si", jobs + "?search=same&limit=1"});
    EXPECT_NE(counted.out.find("X-Total-Count: 3\r\n"), std::string::npos) << counted.out; // same, sameAlias, armSame
    EXPECT_NE(counted.out.find("X-Jobs-Total: 12\r\n"), std::string::npos) << counted.out;
    EXPECT_EQ(lineSet(counted.out.substr(counted.out.find("\r\n\r\n") + 4)).size(), 1u);
    auto all = httpRequest("GET", jobs);
    EXPECT_EQ(lineSet(all.body).size(), 12u); // without a query: every job, as before
    EXPECT_EQ(httpRequest("GET", jobs + "?limit=ten").status, 400);
    EXPECT_EQ(httpRequest("GET", jobs + "?errors=maybe").status, 400);
}

TEST(DiffService, FollowsARunningEvaluationToItsEnd)
{
    TempDir dir;
    auto slowData = EVOLIVE_TEST_DATA_DIR "/service";
    EvoliveServer server(dir.path() + "/state", {"--allow-path", slowData});
    auto jobset = fileJobset(slowData, "slow.nix", {{"salt", freshSalt()}, {"n", "30"}, {"spin", "300000"}});
    jobset["options"] = {{"workers", 1}};
    std::string fingerprint;
    std::thread submitter([&] {
        streamLines(server.url() + "/v1/evaluations", jobset.dump(), [&](const json & line) {
            if (line.value("type", "") == "started") fingerprint = line["fingerprint"];
            return true;
        });
    });
    auto evals = server.url() + "/v1/evaluations/";
    ASSERT_TRUE(eventually([&] {
        auto list = httpRequest("GET", server.url() + "/v1/evaluations").json()["evaluations"];
        return !list.empty() && list[0]["status"] == "running";
    }));
    auto running = httpRequest("GET", server.url() + "/v1/evaluations").json()["evaluations"][0]["fingerprint"].get<std::string>();
    // Every line of the evaluation from the first, until it ends.
    auto followed = httpRequest("GET", evals + running + "/jobs?follow=1");
    submitter.join();
    EXPECT_EQ(fingerprint, running);
    ASSERT_EQ(followed.status, 200);
    std::vector<json> lines;
    for (size_t start = 0; start < followed.body.size();) {
        auto end = followed.body.find('\n', start);
        lines.push_back(json::parse(followed.body.substr(start, end - start)));
        start = end + 1;
    }
    ASSERT_GE(lines.size(), 32u);
    EXPECT_EQ(lines.front()["type"], "started");
    EXPECT_EQ(lines.back()["type"], "finished");
    EXPECT_EQ(lines.back()["jobs"], 30);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](auto & l) { return l["type"] == "job"; }), 30);
    // Once it has ended: the stored jobs.
    EXPECT_EQ(lineSet(httpRequest("GET", evals + running + "/jobs?follow=1").body).size(), 30u);
}
