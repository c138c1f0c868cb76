// No single request stops the service: every limit on a request's header,
// body and trailer ends in a 4xx answer and a closed connection, framing
// that HTTP/1.1 forbids is refused, and JSON or TOML nested to exhaust the
// stack gets an error. After each, the server still answers /healthz.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

std::string head(const std::string & url, const std::string & requestLine, const std::string & headers)
{
    return requestLine + "\r\nHost: " + hostPort(url) + "\r\n" + headers + "\r\n";
}

void expectRefusedAndClosed(const RawExchange & r, int status, const std::string & words)
{
    EXPECT_EQ(r.status(), status) << r.response.substr(0, 400);
    EXPECT_TRUE(r.closed) << "the connection stayed open after: " << r.response.substr(0, 400);
    EXPECT_NE(r.response.find(words), std::string::npos) << r.response.substr(0, 400);
    // One answer only: nothing sent after the request was taken as another.
    EXPECT_EQ(r.response.find("HTTP/1.1", 1), std::string::npos) << r.response.substr(0, 800);
}

void expectHealthy(const EvoliveServer & server)
{
    ASSERT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200) << server.log();
}

std::string nested(size_t depth, const std::string & open = "[", const std::string & close = "]")
{
    std::string s;
    s.reserve(depth * (open.size() + close.size()));
    for (size_t i = 0; i < depth; ++i) s += open;
    for (size_t i = 0; i < depth; ++i) s += close;
    return s;
}

} // namespace

TEST(RequestLimits, HeaderBodyAndTrailerLimitsEndInA4xxAndAClosedConnection)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url();

    // A trailer field larger than the parser's field limit aborted the
    // whole process (/healthz reads its body, and needs no token).
    auto trailer = head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: chunked\r\n") + "0\r\nX-Trailer: " +
                   std::string(70000, 'a') + "\r\n\r\n";
    expectRefusedAndClosed(rawRequest(url, trailer), 431, "trailer");
    expectHealthy(server);
    // Many small trailer fields add up the same way.
    std::string fields;
    for (int i = 0; i < 4000; ++i) fields += "X-T" + std::to_string(i) + ": value\r\n";
    expectRefusedAndClosed(rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: chunked\r\n") +
                                                "0\r\n" + fields + "\r\n"),
                           431, "trailer");
    expectHealthy(server);

    // A header over the limit.
    expectRefusedAndClosed(rawRequest(url, head(url, "GET /healthz HTTP/1.1", "X-Big: " + std::string(20000, 'b') + "\r\n")),
                           431, "header");
    // A chunked body over max-request-bytes (1 MiB), in one chunk and in many.
    auto post = head(url, "POST /v1/evaluations HTTP/1.1", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
    char size[32];
    snprintf(size, sizeof size, "%x\r\n", 2 << 20);
    expectRefusedAndClosed(rawRequest(url, post + size + std::string(2 << 20, ' ') + "\r\n0\r\n\r\n"), 413,
                           "max-request-bytes");
    std::string chunks;
    for (int i = 0; i < 300; ++i) chunks += "1000\r\n" + std::string(4096, ' ') + "\r\n";
    expectRefusedAndClosed(rawRequest(url, post + chunks + "0\r\n\r\n"), 413, "max-request-bytes");
    // A chunk size that is not a number, and one that overflows.
    expectRefusedAndClosed(rawRequest(url, post + "zz\r\nab\r\n0\r\n\r\n"), 400, "malformed");
    expectRefusedAndClosed(rawRequest(url, post + "ffffffffffffffffffff\r\nab\r\n0\r\n\r\n"), 400, "malformed");
    expectHealthy(server);
}

TEST(RequestLimits, TransferEncodingOtherThanChunkedIsRefused)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url();
    // Each request is followed by a second one hidden in what the first's
    // Content-Length would frame differently: it must never be answered.
    std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: " + hostPort(url) + "\r\n\r\n";
    auto body = "0\r\n\r\n" + smuggled;
    auto withLength = "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (std::string te : {"chunked, identity", "xchunked", "identity", "chunked;q=1", "chunked, chunked"}) {
        SCOPED_TRACE(te);
        expectRefusedAndClosed(
            rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: " + te + "\r\n" + withLength) + body),
            400, "Transfer-Encoding");
        expectRefusedAndClosed(rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: " + te + "\r\n") + body),
                               400, "Transfer-Encoding");
    }
    // A coding before chunked that the server does not implement.
    expectRefusedAndClosed(
        rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n") + body), 501,
        "Transfer-Encoding");
    // chunked together with Content-Length, and chunked given twice.
    expectRefusedAndClosed(
        rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: chunked\r\n" + withLength) + body), 400,
        "Content-Length");
    expectRefusedAndClosed(rawRequest(url, head(url, "GET /healthz HTTP/1.1",
                                                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") +
                                               body),
                           400, "Transfer-Encoding");
    // Exactly `chunked` (in any case) is fine.
    auto ok = rawRequest(url, head(url, "GET /healthz HTTP/1.1", "Transfer-Encoding: Chunked\r\nConnection: close\r\n") +
                                  "0\r\n\r\n");
    EXPECT_EQ(ok.status(), 200) << ok.response;
    expectHealthy(server);
}

TEST(RequestLimits, DeeplyNestedJsonInARequestGets400)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    // About 100,000 levels in under 200 KB: in a json input's value, and as
    // the whole body.
    auto jobset = fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "1"}, {"spin", "1"}});
    jobset["inputs"]["deep"] = {{"type", "json"}, {"value", "PLACEHOLDER"}};
    auto text = jobset.dump();
    text.replace(text.find("\"PLACEHOLDER\""), 13, nested(100000));
    ASSERT_LT(text.size(), 200u << 10);
    for (auto & body : std::vector<std::string>{text, nested(100000), nested(50000, "{\"a\":[", "]}")}) {
        auto r = httpRequest("POST", url, body);
        EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
        EXPECT_NE(r.body.find("nested deeper than"), std::string::npos) << r.body.substr(0, 300);
        expectHealthy(server);
    }
    // A json value nested a little is still fine.
    jobset["inputs"].erase("deep");
    jobset["inputs"]["n"] = {{"type", "json"}, {"value", json::parse("[[[[1]]]]")}};
    long status = 0;
    auto lines = streamLines(url, jobset.dump(), {}, {}, &status);
    EXPECT_EQ(status, 200);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0]["type"], "accepted");
}

TEST(RequestLimits, ADeeplyNestedPushMessageGetsAnErrorAnswer)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    PushClient client(server.url());
    for (auto & message : std::vector<std::string>{nested(100000), "{\"drv\":\"/nix/store/x.drv\",\"id\":" + nested(100000) + "}"}) {
        auto answer = client.ask(message);
        ASSERT_TRUE(answer.contains("error")) << answer;
        EXPECT_NE(answer["error"].get<std::string>().find("nested deeper than"), std::string::npos) << answer;
    }
    // The socket stays open and answers the next message.
    EXPECT_NE(client.push("/etc/passwd")["error"].get<std::string>().find("not in the Nix store"), std::string::npos);
    expectHealthy(server);
}

TEST(RequestLimits, AHostileConfigurationIsAnErrorNotACrash)
{
    TempDir dir;
    std::string dotted = "a";
    for (int i = 0; i < 300000; ++i) dotted += ".a";
    std::vector<std::pair<std::string, std::string>> configs{
        {"dotted-key", dotted + " = 1\n"},
        {"table-header", "[" + dotted + "]\n"},
        {"arrays", "tokens = " + nested(100000) + "\n"},
        {"inline-tables", "push = " + nested(100000, "{a=", "}") + "\n"},
    };
    for (auto & [name, text] : configs) {
        SCOPED_TRACE(name);
        auto file = dir.write(name + ".toml", text);
        auto r = runCommand({EVOLIVE_BINARY, "serve", "--config", file, "--listen", "127.0.0.1:0", "--state-dir",
                             dir.path() + "/state"});
        EXPECT_EQ(r.signal, 0) << "killed by signal " << r.signal;
        EXPECT_EQ(r.exitCode, 2) << r.err.substr(0, 300);
        EXPECT_NE(r.err.find(file), std::string::npos) << r.err.substr(0, 300);
    }
    // A dotted key of a few parts is still a key (and this one unknown).
    auto file = dir.write("plain.toml", "push.cache.x = 1\n");
    auto r = runCommand({EVOLIVE_BINARY, "serve", "--config", file, "--state-dir", dir.path() + "/state"});
    EXPECT_EQ(r.exitCode, 2);
    EXPECT_NE(r.err.find("push.cache"), std::string::npos) << r.err;
}
