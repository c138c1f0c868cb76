// Browsers and hosts: a server without tokens answers only requests that
// name it by a loopback name or a configured one (DNS rebinding), refuses
// requests and WebSocket upgrades from pages of other origins, sends CORS
// headers only to configured origins, and ends a stream that fails after
// it started with a `failed` line rather than an HTTP response inside it.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

RawExchange getWith(const std::string & url, const std::string & target, const std::string & headers)
{
    return rawRequest(url, "GET " + target + " HTTP/1.1\r\n" + headers + "Connection: close\r\n\r\n");
}

std::string port(const std::string & url)
{
    return url.substr(url.rfind(':') + 1);
}

bool upgrades(const std::string & url, const std::map<std::string, std::string> & headers, const std::string & token = "")
{
    try {
        PushClient client(url, token, headers);
        return true;
    } catch (boost::system::system_error &) {
        return false;
    }
}

} // namespace

TEST(Browsers, ForeignHostNamesAreRefusedWithoutTokens)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url();
    auto p = port(url);
    for (auto & host : {"127.0.0.1:" + p, "localhost:" + p, "[::1]:" + p, std::string("localhost"), "LOCALHOST:" + p}) {
        SCOPED_TRACE(host);
        EXPECT_EQ(getWith(url, "/v1/evaluations", "Host: " + host + "\r\n").status(), 200);
    }
    for (auto & host : {"evil.example:" + p, std::string("evil.example"), "localhost.evil.example:" + p,
                        std::string("127.0.0.1.evil.example"), "127.0.0.2:" + p}) {
        SCOPED_TRACE(host);
        auto r = getWith(url, "/v1/evaluations", "Host: " + host + "\r\n");
        EXPECT_EQ(r.status(), 403) << r.response;
        EXPECT_NE(r.response.find("allowed-hosts"), std::string::npos) << r.response;
    }
    // HTTP/1.1 without a Host at all.
    EXPECT_EQ(getWith(url, "/v1/evaluations", "").status(), 400);

    // A name the configuration allows.
    auto config = dir.write("evolive.toml", "allowed-hosts = [\"ci.internal\"]\n");
    EvoliveServer named(dir.path() + "/named", {"--config", config});
    EXPECT_EQ(getWith(named.url(), "/v1/evaluations", "Host: ci.internal:" + port(named.url()) + "\r\n").status(), 200);
    EXPECT_EQ(getWith(named.url(), "/v1/evaluations", "Host: ci.internal.evil.example\r\n").status(), 403);

    // With tokens, the token is what protects the server.
    std::string token = "browser-test-token-" + freshSalt();
    EvoliveServer tokened(dir.path() + "/tokened", {"--token", token});
    EXPECT_EQ(getWith(tokened.url(), "/v1/evaluations", "Host: ci.example.org\r\nAuthorization: Bearer " + token + "\r\n")
                  .status(),
              200);
}

TEST(Browsers, RequestsAndWebSocketsFromOtherOriginsAreRefused)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url();
    EXPECT_TRUE(upgrades(url, {}));
    EXPECT_TRUE(upgrades(url, {{"Origin", url}}));
    EXPECT_FALSE(upgrades(url, {{"Origin", "http://evil.example"}}));
    EXPECT_FALSE(upgrades(url, {{"Origin", "null"}}));
    EXPECT_FALSE(upgrades(url, {{"Origin", "http://127.0.0.1:1"}})); // another port is another origin

    auto host = "Host: " + hostPort(url) + "\r\n";
    auto foreign = getWith(url, "/v1/evaluations", host + "Origin: http://evil.example\r\n");
    EXPECT_EQ(foreign.status(), 403) << foreign.response;
    EXPECT_EQ(foreign.response.find("Access-Control-"), std::string::npos) << foreign.response;
    auto same = getWith(url, "/v1/evaluations", host + "Origin: " + url + "\r\n");
    EXPECT_EQ(same.status(), 200) << same.response;
    EXPECT_EQ(same.response.find("Access-Control-"), std::string::npos) << same.response;

    // A token does not let another origin's page open a WebSocket either.
    std::string token = "browser-test-token-" + freshSalt();
    EvoliveServer tokened(dir.path() + "/tokened", {"--token", token});
    EXPECT_TRUE(upgrades(tokened.url(), {}, token));
    EXPECT_FALSE(upgrades(tokened.url(), {{"Origin", "http://evil.example"}}, token));
}

TEST(Browsers, CorsHeadersOnlyForConfiguredOrigins)
{
    TempDir dir;
    auto config = dir.write("evolive.toml", "allowed-origins = [\"https://app.example\"]\n");
    EvoliveServer server(dir.path() + "/state", {"--config", config});
    auto url = server.url();
    auto host = "Host: " + hostPort(url) + "\r\n";
    auto allowed = getWith(url, "/v1/evaluations", host + "Origin: https://app.example\r\n");
    EXPECT_EQ(allowed.status(), 200) << allowed.response;
    EXPECT_NE(allowed.response.find("Access-Control-Allow-Origin: https://app.example\r\n"), std::string::npos)
        << allowed.response;
    EXPECT_NE(allowed.response.find("Vary: Origin\r\n"), std::string::npos) << allowed.response;
    auto preflight = rawRequest(url, "OPTIONS /v1/evaluations HTTP/1.1\r\n" + host +
                                         "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                                         "Access-Control-Request-Headers: authorization, content-type\r\n"
                                         "Connection: close\r\n\r\n");
    EXPECT_EQ(preflight.status(), 204) << preflight.response;
    EXPECT_NE(preflight.response.find("Access-Control-Allow-Methods: "), std::string::npos) << preflight.response;
    EXPECT_NE(preflight.response.find("Access-Control-Allow-Headers: "), std::string::npos) << preflight.response;
    EXPECT_TRUE(upgrades(url, {{"Origin", "https://app.example"}}));
    auto other = getWith(url, "/v1/evaluations", host + "Origin: https://other.example\r\n");
    EXPECT_EQ(other.status(), 403);
    EXPECT_EQ(other.response.find("Access-Control-"), std::string::npos) << other.response;
    // Without an Origin (not a browser's cross-site request): no CORS headers.
    auto plain = getWith(url, "/v1/evaluations", host);
    EXPECT_EQ(plain.status(), 200);
    EXPECT_EQ(plain.response.find("Access-Control-"), std::string::npos) << plain.response;
}

TEST(Browsers, AnErrorAfterAStreamStartedEndsItWithAFailedLine)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    auto lines = streamLines(url, fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "200"}, {"spin", "1"}}).dump());
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    auto fingerprint = lines.back()["fingerprint"].get<std::string>();
    auto result = dir.path() + "/state/results/" + fingerprint + ".parquet";
    // Damage the rows but not the footer: the file opens, then reading fails.
    {
        auto size = fs::file_size(result);
        std::fstream file(result, std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(8);
        file << std::string(size / 2, '\x5a');
    }
    auto r = rawRequest(server.url(), "GET /v1/evaluations/" + fingerprint + "/jobs HTTP/1.1\r\nHost: " +
                                          hostPort(server.url()) + "\r\n\r\n");
    EXPECT_TRUE(r.closed);
    // Never a second HTTP response inside the first one's body.
    EXPECT_EQ(r.response.find("HTTP/1.1", 1), std::string::npos) << r.response.substr(0, 2000);
    if (r.status() == 200) {
        auto text = r.response;
        auto failed = text.find("\"type\":\"failed\"");
        ASSERT_NE(failed, std::string::npos) << text.substr(0, 2000);
        auto start = text.rfind('\n', failed) + 1;
        auto line = json::parse(text.substr(start, text.find('\n', failed) - start));
        EXPECT_FALSE(line.value("message", "").empty()) << line;
        EXPECT_EQ(line.value("fingerprint", ""), fingerprint) << line;
    } else {
        // Found to be damaged before the stream started: a plain error.
        EXPECT_GE(r.status(), 400) << r.response.substr(0, 2000);
    }
    EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200);
}
