// Bad input and faults: each gets a clear error (a status and a JSON body,
// or a `failed` line) and the service goes on serving others.
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

std::string post(const std::string & url, const std::string & body)
{
    return "POST /v1/evaluations HTTP/1.1\r\nHost: " + hostPort(url) + "\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

void expectError(const HttpResponse & r, long status, const std::string & words)
{
    EXPECT_EQ(r.status, status) << r.body;
    auto body = r.json();
    ASSERT_TRUE(body.is_object() && body.contains("error")) << r.body;
    EXPECT_NE(body["error"].get<std::string>().find(words), std::string::npos) << r.body;
}

} // namespace

TEST(ServiceFaults, BadRequestsGetClearErrorsAndTheServiceGoesOn)
{
    TempDir dir;
    auto config = dir.write("evolive.toml", "max-request-bytes = 2000\n");
    // The test's directory is allowed for the local git input that cannot be fetched.
    EvoliveServer server(dir.path() + "/state", {"--config", config, "--allow-path", serviceData, "--allow-path", dir.path()});
    auto url = server.url() + "/v1/evaluations";
    auto salt = freshSalt();
    auto good = fileJobset(serviceData, "slow.nix", {{"salt", salt}, {"n", "1"}, {"spin", "1"}});

    expectError(httpRequest("POST", url, "{\"inputs\": "), 400, "parse error");
    expectError(httpRequest("POST", url, "[1, 2]"), 400, "must be a JSON object");
    auto unknown = good;
    unknown["expresion"] = good["expression"];
    expectError(httpRequest("POST", url, unknown.dump()), 400, "expresion");
    auto wrongType = good;
    wrongType["inputs"]["n"]["value"] = 3;
    expectError(httpRequest("POST", url, wrongType.dump()), 400, "inputs.n");
    auto force = good;
    force["force"] = "yes";
    expectError(httpRequest("POST", url, force.dump()), 400, "force");
    expectError(httpRequest("POST", url, good.dump(), {"Content-Type: text/plain"}), 415, "application/json");
    auto large = good;
    large["inputs"]["padding"] = {{"type", "string"}, {"value", std::string(3000, 'x')}};
    expectError(httpRequest("POST", url, large.dump()), 413, "max-request-bytes");
    auto outside = fileJobset("/etc", "hosts", {});
    expectError(httpRequest("POST", url, outside.dump()), 403, "allowed-paths");
    expectError(httpRequest("GET", server.url() + "/v2/things"), 404, "no such endpoint");
    expectError(httpRequest("PUT", url), 405, "not allowed");
    expectError(httpRequest("GET", url + "/not-a-fingerprint"), 404, "not a fingerprint");
    expectError(httpRequest("GET", server.url() + "/v1/push"), 426, "WebSocket");

    // Not HTTP at all.
    int fd = connectTo(server.url());
    sendAll(fd, "HELLO THERE\r\n\r\n");
    EXPECT_NE(readAll(fd).find("400 Bad Request"), std::string::npos);
    close(fd);

    // An input the expression does not take, and a git input that cannot be
    // fetched: a `failed` line naming the problem.
    auto extra = good;
    extra["inputs"]["extra"] = {{"type", "string"}, {"value", "x"}};
    auto lines = streamLines(url, extra.dump());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "failed");
    EXPECT_NE(lines.back()["message"].get<std::string>().find("argument 'extra' is given but"), std::string::npos)
        << lines.back();
    auto gone = good;
    gone["inputs"]["repo"] = {{"type", "git"}, {"url", "file://" + dir.path() + "/no-such-repository"}};
    lines = streamLines(url, gone.dump());
    EXPECT_EQ(lines.back()["type"], "failed");
    EXPECT_EQ(lines.back()["stage"], "fetch");

    // Through all of that, the service kept serving.
    lines = streamLines(url, good.dump());
    EXPECT_EQ(lines.back()["type"], "finished") << lines.back();
    EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200);
    auto metrics = readMetrics(server.url());
    EXPECT_GE(metrics["evolive_http_responses_total{code=\"400\"}"], 4);
    EXPECT_EQ(metrics["evolive_http_responses_total{code=\"413\"}"], 1);
}

TEST(ServiceFaults, AClientThatNeverReadsIsDroppedWhileOthersAreServed)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData, "--write-timeout", "2"});
    auto url = server.url() + "/v1/evaluations";
    auto big = fileJobset(serviceData, "big.nix", {{"salt", freshSalt()}});
    big["options"] = {{"meta", true}};

    int stuck = connectTo(server.url(), 4096);
    sendAll(stuck, post(url, big.dump()));
    // Others are served meanwhile, and the stuck client is dropped once its
    // buffers are full and it has not read for the write timeout.
    auto other = fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "2"}, {"spin", "1"}});
    EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200);
    EXPECT_TRUE(eventually([&] { return readMetrics(server.url())["evolive_clients_dropped_total"] == 1; }));
    auto lines = streamLines(url, other.dump());
    EXPECT_EQ(lines.back()["type"], "finished");
    // The stuck client's evaluation finished and was stored all the same.
    EXPECT_TRUE(eventually([&] { return readMetrics(server.url())["evolive_evaluations_total{outcome=\"finished\"}"] == 2; }));
    EXPECT_EQ(httpRequest("GET", url).json()["evaluations"].size(), 2u);
    close(stuck);
}

TEST(ServiceFaults, AClientThatHangsUpDoesNotStopTheEvaluation)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    std::string fingerprint;
    streamLines(url, fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "5"}, {"spin", "500000"}}).dump(),
                [&](const json & line) {
                    if (line["type"] != "started") return true;
                    fingerprint = line["fingerprint"];
                    return false; // hang up
                });
    ASSERT_EQ(fingerprint.size(), 64u);
    EXPECT_TRUE(eventually([&] { return httpRequest("GET", url + "/" + fingerprint).json()["status"] == "finished"; }));
    EXPECT_EQ(httpRequest("GET", url + "/" + fingerprint).json()["jobs"], 5);
    EXPECT_TRUE(fs::exists(dir.path() + "/state/results/" + fingerprint + ".parquet"));
}

TEST(ServiceFaults, ACrashingEvaluatorGivesAFailedLineAndTheServiceGoesOn)
{
    TempDir dir;
    // A stand-in for nix-eval-jobs that finds one job and then crashes.
    auto bin = dir.path() + "/bin";
    fs::create_directories(bin);
    auto fake = dir.write("bin/nix-eval-jobs", "#!/bin/sh\n"
                                               "echo '{\"attr\":\"first\",\"attrPath\":[\"first\"],\"error\":\"x\"}'\n"
                                               "echo 'about to crash' >&2\n"
                                               "kill -SEGV $$\n");
    fs::permissions(fake, fs::perms::owner_all);
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData},
                         {{"PATH", bin + ":" + std::string(getenv("PATH"))}});
    auto url = server.url() + "/v1/evaluations";
    auto jobset = fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "1"}, {"spin", "1"}});
    jobset["options"] = {{"evaluator", "nix-eval-jobs"}};

    auto lines = streamLines(url, jobset.dump());
    ASSERT_GE(lines.size(), 3u);
    EXPECT_EQ(lines[2]["attr"], "first");
    EXPECT_EQ(lines.back()["type"], "failed");
    EXPECT_EQ(lines.back()["stage"], "evaluate");
    auto message = lines.back()["message"].get<std::string>();
    EXPECT_NE(message.find("killed by signal 11"), std::string::npos) << message;
    EXPECT_NE(message.find("about to crash"), std::string::npos) << message;
    auto fingerprint = lines.back()["fingerprint"].get<std::string>();
    EXPECT_FALSE(fs::exists(dir.path() + "/state/results/" + fingerprint + ".parquet"));
    EXPECT_EQ(httpRequest("GET", url + "/" + fingerprint).json()["status"], "failed");

    jobset["options"] = json::object();
    EXPECT_EQ(streamLines(url, jobset.dump()).back()["type"], "finished");
}
