// Smaller points found by the adversarial pass: the JSON media type in any
// case, HTTP/1.0 clients, the token checked before routing, an exact
// `accepted.queue` under concurrent submissions, time queued apart from
// fetching in `durations`, and push answers that do not echo large messages.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <algorithm>
#include <atomic>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

using namespace evolive::test;
using nlohmann::json;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

json slowJobset(const std::string & salt, const std::string & n, const std::string & spin)
{
    auto j = fileJobset(serviceData, "slow.nix", {{"salt", salt}, {"n", n}, {"spin", spin}});
    j["options"] = {{"workers", 1}};
    return j;
}

} // namespace

TEST(SmallPoints, TheJsonMediaTypeIsMatchedInAnyCaseWithParameters)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url() + "/v1/evaluations";
    // A jobset the server refuses (403) once it has taken it as JSON.
    auto refused = fileJobset("/etc", "hosts").dump();
    for (auto & type : {"Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/json ; charset=utf-8"}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(httpRequest("POST", url, refused, {std::string("Content-Type: ") + type}).status, 403);
    }
    for (auto & type : {"application/jsonx", "text/plain", "application/x-www-form-urlencoded"}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(httpRequest("POST", url, refused, {std::string("Content-Type: ") + type}).status, 415);
    }
}

TEST(SmallPoints, Http10ClientsGetACloseDelimitedResponse)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData});
    auto body = slowJobset(freshSalt(), "3", "1").dump();
    auto r = rawRequest(server.url(), "POST /v1/evaluations HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
                                          std::to_string(body.size()) + "\r\n\r\n" + body,
                        std::chrono::seconds(60));
    ASSERT_EQ(r.status(), 200) << r.response;
    EXPECT_TRUE(r.closed);
    auto end = r.response.find("\r\n\r\n");
    auto headers = r.response.substr(0, end);
    EXPECT_EQ(headers.find("Transfer-Encoding"), std::string::npos) << headers;
    // The body is the stream's lines as they are, up to the close.
    std::vector<json> lines;
    std::istringstream in(r.response.substr(end + 4));
    for (std::string line; std::getline(in, line);) {
        auto parsed = json::parse(line, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << "not a JSON line: " << line;
        lines.push_back(parsed);
    }
    ASSERT_GE(lines.size(), 3u);
    EXPECT_EQ(lines.front()["type"], "accepted");
    EXPECT_EQ(lines.back()["type"], "finished");
    auto fingerprint = lines.back()["fingerprint"].get<std::string>();

    // The stored jobs, too.
    auto jobs = rawRequest(server.url(), "GET /v1/evaluations/" + fingerprint + "/jobs HTTP/1.0\r\n\r\n");
    ASSERT_EQ(jobs.status(), 200) << jobs.response;
    EXPECT_EQ(jobs.response.find("Transfer-Encoding"), std::string::npos) << jobs.response;
    EXPECT_NE(jobs.response.find("\r\n\r\n{\"attr\":\"job"), std::string::npos) << jobs.response;
}

TEST(SmallPoints, TheTokenIsCheckedBeforeRouting)
{
    TempDir dir;
    std::string token = "small-points-token-" + freshSalt();
    EvoliveServer server(dir.path() + "/state", {"--token", token});
    auto url = server.url();
    auto auth = "Authorization: Bearer " + token;
    // Without a token, nothing says which endpoints exist.
    EXPECT_EQ(httpRequest("GET", url + "/no/such/thing").status, 401);
    EXPECT_EQ(httpRequest("GET", url + "/v1/evaluations/not-a-fingerprint").status, 401);
    EXPECT_EQ(httpRequest("PUT", url + "/v1/evaluations").status, 401);
    EXPECT_EQ(httpRequest("POST", url + "/").status, 401);
    EXPECT_EQ(httpRequest("GET", url + "/no/such/thing", "", {auth}).status, 404);
    EXPECT_EQ(httpRequest("PUT", url + "/v1/evaluations", "", {auth}).status, 405);
    // Exempt: /healthz, and the status page's static files (they hold no
    // data; the page asks for a token itself).
    EXPECT_EQ(httpRequest("GET", url + "/healthz").status, 200);
    EXPECT_NE(httpRequest("GET", url + "/").status, 401);
    EXPECT_NE(httpRequest("GET", url + "/ui/app.js").status, 401);
    EXPECT_EQ(httpRequest("DELETE", url + "/ui/app.js").status, 401);
}

TEST(SmallPoints, AcceptedQueueIsExactUnderConcurrentSubmissions)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData, "--concurrency", "1"});
    auto url = server.url() + "/v1/evaluations";
    const int n = 6;
    std::vector<int> queue(n, -1), finishedOrder(n, -1);
    std::atomic<int> ready{0}, finished{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i)
        clients.emplace_back([&, i] {
            auto body = slowJobset(freshSalt(), "2", "300000").dump();
            ready++;
            while (ready < n) std::this_thread::yield();
            streamLines(url, body, [&](const json & line) {
                if (line["type"] == "accepted") queue[i] = line["queue"];
                if (line["type"] == "finished") finishedOrder[i] = finished++;
                return true;
            });
        });
    for (auto & c : clients) c.join();
    auto sorted = queue;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, std::vector<int>({0, 1, 2, 3, 4, 5}));
    // One at a time, in the order they were told.
    EXPECT_EQ(finishedOrder, queue);
}

TEST(SmallPoints, DurationsSeparateTimeQueuedFromFetching)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData, "--concurrency", "1"});
    auto url = server.url() + "/v1/evaluations";
    std::atomic<bool> started{false};
    std::thread first([&] {
        streamLines(url, slowJobset(freshSalt(), "20", "300000").dump(), [&](const json & line) {
            if (line["type"] == "started") started = true;
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    auto lines = streamLines(url, slowJobset(freshSalt(), "1", "1").dump());
    first.join();
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    auto durations = lines.back()["durations"];
    ASSERT_TRUE(durations.contains("queued")) << durations;
    EXPECT_GT(durations["queued"].get<double>(), 0.2) << durations;
    EXPECT_LT(durations["fetch"].get<double>(), durations["queued"].get<double>()) << durations;
    EXPECT_GE(durations["total"].get<double>(), durations["queued"].get<double>() + durations["fetch"].get<double>())
        << durations;
}

TEST(SmallPoints, APushAnswerDoesNotEchoALargeMessage)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    PushClient client(server.url());
    auto longPath = "/nix/store/" + std::string(600000, 'a') + ".drv";
    for (auto & message : {json{{"drv", longPath}, {"id", 1}}, json{{"drv", "/nix/store/x.drv"}, {"id", std::string(600000, 'i')}},
                           json{{"drv", 1}, {"id", json::array({std::string(600000, 'i')})}}}) {
        auto answer = client.askText(message.dump());
        EXPECT_LT(answer.size(), 4096u) << answer.substr(0, 300);
        EXPECT_TRUE(json::parse(answer).contains("error")) << answer.substr(0, 300);
    }
    // Over the message limit (max-request-bytes): the socket is closed as
    // too big, and the server goes on.
    bool closed = false;
    try {
        client.socket().text(true);
        client.socket().write(boost::asio::buffer(json{{"drv", std::string(10 << 20, 'a')}}.dump()));
        closed = client.closedByServer();
    } catch (boost::system::system_error &) {
        closed = true; // closed while the message was still being sent
    }
    EXPECT_TRUE(closed);
    PushClient next(server.url());
    EXPECT_NE(next.push("/etc/passwd")["error"].get<std::string>().find("not in the Nix store"), std::string::npos);
}
