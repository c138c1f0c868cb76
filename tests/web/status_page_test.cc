// The status page in a real browser: Debian's chromium, headless, driven
// by playwright-core (tests/node/status_page.js) against a real `evolive
// serve` that this test starts and fills with evaluations — two versions
// of a jobset, one full of hostile strings, and a slow one that runs while
// the page watches it. Screenshots land in build/screenshots.
#include "../server/service_client.hh"
#include "subprocess.hh"

#include <ctime>
#include <gtest/gtest.h>
#include <thread>

using namespace evolive::test;
using nlohmann::json;

namespace {

const std::string data = EVOLIVE_TEST_DATA_DIR;

Completed runPage(const std::string & mode, const std::string & url, const std::map<std::string, std::string> & extra)
{
    std::map<std::string, std::string> env{{"NODE_PATH", NODE_MODULES}, {"SCREENSHOTS", SCREENSHOTS_DIR}};
    env.insert(extra.begin(), extra.end());
    return runCommand({"node", STATUS_PAGE_SCRIPT, mode, url + "/"}, env);
}

std::string finishedFingerprint(const std::vector<json> & lines)
{
    EXPECT_FALSE(lines.empty());
    if (lines.empty()) return "";
    EXPECT_EQ(lines.back()["type"], "finished") << lines.back();
    return lines.back().value("fingerprint", "");
}

// Stored results carry times in seconds: one evaluation a second keeps
// their order (newest first, the previous one of a jobset) unambiguous.
void nextSecond()
{
    auto now = time(nullptr);
    ASSERT_TRUE(eventually([&] { return time(nullptr) != now; }, std::chrono::seconds(5)));
}

} // namespace

TEST(StatusPage, ShowsProgressEvaluationsJobsAndComparisonsWithHostileDataAsText)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state",
                         {"--allow-path", data + "/diff", "--allow-path", data + "/web", "--allow-path", data + "/service"});
    auto submit = [&](const json & jobset) {
        auto fingerprint = finishedFingerprint(streamLines(server.url() + "/v1/evaluations", jobset.dump()));
        nextSecond();
        return fingerprint;
    };
    auto salt = freshSalt();
    auto old = submit(fileJobset(data + "/diff", "jobs.nix", {{"salt", salt}, {"version", "1"}}));
    auto now = submit(fileJobset(data + "/diff", "jobs.nix", {{"salt", salt}, {"version", "2"}}));
    auto hostileJobset = fileJobset(data + "/web", "hostile.nix", {{"salt", salt}, {"note", "<img src=x onerror=window.__pwned=7>"}});
    hostileJobset["options"] = {{"meta", true}};
    auto hostile = submit(hostileJobset);

    // A slow evaluation, running while the page watches; cancelled after.
    auto slow = fileJobset(data + "/service", "slow.nix", {{"salt", salt}, {"n", "3000"}, {"spin", "300000"}});
    slow["options"] = {{"workers", 1}};
    std::string running;
    std::thread submitter([&] {
        streamLines(server.url() + "/v1/evaluations", slow.dump(), [&](const json & line) {
            if (line.value("type", "") == "started") running = line["fingerprint"];
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] {
        auto list = httpRequest("GET", server.url() + "/v1/evaluations").json()["evaluations"];
        return !list.empty() && list[0]["status"] == "running" && list[0]["jobs"].get<int>() > 0;
    }));
    auto fingerprint = httpRequest("GET", server.url() + "/v1/evaluations").json()["evaluations"][0]["fingerprint"];

    auto page = runPage("open", server.url(), {{"OLD", old}, {"NEW", now}, {"HOSTILE", hostile}, {"RUNNING", fingerprint}});
    httpRequest("DELETE", server.url() + "/v1/evaluations/" + fingerprint.get<std::string>());
    submitter.join();
    EXPECT_EQ(page.exitCode, 0) << page.out << page.err;
    EXPECT_NE(page.out.find("status page: all checks passed"), std::string::npos) << page.out << page.err;
}

TEST(StatusPage, AsksForATokenAndKeepsIt)
{
    TempDir dir;
    std::string token = "a-token-for-the-page-test-" + freshSalt();
    EvoliveServer server(dir.path() + "/state", {"--allow-path", data + "/diff", "--token", token});
    auto stored = finishedFingerprint(streamLines(server.url() + "/v1/evaluations",
                                                  fileJobset(data + "/diff", "jobs.nix", {{"salt", freshSalt()}, {"version", "1"}}).dump(),
                                                  {}, {"Authorization: Bearer " + token}));
    // The page's files need no token; the API does.
    EXPECT_EQ(httpRequest("GET", server.url() + "/").status, 200);
    EXPECT_EQ(httpRequest("GET", server.url() + "/ui/app.js").status, 200);
    EXPECT_EQ(httpRequest("GET", server.url() + "/v1/evaluations").status, 401);
    EXPECT_EQ(httpRequest("GET", server.url() + "/ui/missing.js").status, 404);

    auto page = runPage("token", server.url(), {{"TOKEN", token}, {"STORED", stored}});
    EXPECT_EQ(page.exitCode, 0) << page.out << page.err;
    EXPECT_NE(page.out.find("status page: all checks passed"), std::string::npos) << page.out << page.err;
}
