// GET /v1/push: a WebSocket client (Beast) asks for closures to be pushed
// into the server's binary cache; `nix` then reads the cache.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;
namespace beast = boost::beast;

TEST(PushSocket, PushesClosuresAnswersBadMessagesAndStaysOpen)
{
    TempDir dir;
    NixDaemon daemon(dir.path());
    auto cache = dir.path() + "/cache";
    EvoliveServer server(dir.path() + "/state", {"--cache", cache, "--daemon-socket", daemon.socket()});
    auto salt = freshSalt();
    auto curl = instantiateExample("curl", salt);
    auto zlib = instantiateExample("zlib", salt);

    PushClient client(server.url());
    auto first = client.push(zlib, 1);
    ASSERT_FALSE(first.contains("error")) << first;
    EXPECT_EQ(first["id"], 1);
    EXPECT_EQ(first["drv"], zlib);
    EXPECT_GE(first["uploaded"].get<int>(), 1);
    EXPECT_GT(first["fileBytes"].get<int>(), 0);

    // Bad messages get an error answer; the socket stays open.
    EXPECT_NE(client.ask("not json")["error"].get<std::string>().find("parse error"), std::string::npos);
    EXPECT_NE(client.ask("[1]")["error"].get<std::string>().find("JSON object"), std::string::npos);
    EXPECT_NE(client.ask("{\"drv\": 5}")["error"].get<std::string>().find("drv"), std::string::npos);
    EXPECT_NE(client.ask("{\"drv\": \"/x\", \"also\": 1}")["error"].get<std::string>().find("unknown field"), std::string::npos);
    EXPECT_NE(client.push("/etc/passwd")["error"].get<std::string>().find("not in the Nix store"), std::string::npos);
    EXPECT_NE(client.push("/nix/store/../etc/passwd")["error"].get<std::string>().find("not a store path"),
              std::string::npos);
    EXPECT_NE(client.push(curl.substr(0, curl.size() - 4))["error"].get<std::string>().find(".drv"),
              std::string::npos);
    auto missing = "/nix/store/" + std::string(32, 'a') + "-missing.drv";
    EXPECT_NE(client.push(missing)["error"].get<std::string>().find("not in the store"), std::string::npos);

    // The dependent: its dependencies already there are not uploaded again.
    auto second = client.push(curl, 2);
    ASSERT_FALSE(second.contains("error")) << second;
    EXPECT_GE(second["uploaded"].get<int>(), 1);
    EXPECT_GE(second["present"].get<int>(), 1);
    // Asked again on this socket: not pushed again.
    auto again = client.push(curl, 3);
    EXPECT_EQ(again["repeated"], true);
    EXPECT_EQ(again["uploaded"], 0);

    // Another socket shares the presence: nothing to upload.
    PushClient other(server.url());
    auto shared = other.push(curl);
    EXPECT_EQ(shared["uploaded"], 0) << shared;
    EXPECT_GE(shared["present"].get<int>(), 1);

    // An unmodified nix reads the whole closure from the cache.
    auto info = runNix({"path-info", "--derivation", "--recursive", "--store", "file://" + cache, curl});
    ASSERT_EQ(info.exitCode, 0) << info.err;
    EXPECT_NE(info.out.find(zlib), std::string::npos);
    auto metrics = readMetrics(server.url());
    EXPECT_EQ(metrics["evolive_push_requests_total"], 12);
    EXPECT_EQ(metrics["evolive_push_errors_total"], 8);
    // Of the closure pushes, one failed (the missing .drv; the others were
    // refused before); the paths and bytes are the answers' sums.
    EXPECT_EQ(metrics["evolive_push_failures_total"], 1);
    EXPECT_EQ(metrics["evolive_pushed_paths_total{outcome=\"uploaded\"}"],
              first["uploaded"].get<int>() + second["uploaded"].get<int>());
    EXPECT_EQ(metrics["evolive_pushed_paths_total{outcome=\"present\"}"],
              first["present"].get<int>() + second["present"].get<int>() + shared["present"].get<int>());
    EXPECT_EQ(metrics["evolive_pushed_bytes_total"], first["fileBytes"].get<double>() + second["fileBytes"].get<double>());
    EXPECT_EQ(metrics["evolive_pushes_running"], 0);
    EXPECT_EQ(metrics["evolive_push_uploads"], 0);
}

TEST(PushSocket, NeedsATokenWhenTheServerHasTokens)
{
    TempDir dir;
    std::string token = "push-socket-token-" + freshSalt();
    EvoliveServer server(dir.path() + "/state", {"--token", token});
    EXPECT_THROW(PushClient{server.url()}, beast::system_error);
    PushClient client(server.url(), token);
    EXPECT_NE(client.push("/etc/passwd")["error"].get<std::string>().find("not in the Nix store"), std::string::npos);
}

namespace {

// An evaluation with push on `evolive serve` (`storeRoot`: evaluating into
// that chroot store, served by the daemon); returns curl's .drv path after
// checking that `nix` reads its closure from the cache.
std::string pushEachJob(TempDir & dir, const std::string & storeRoot)
{
    NixDaemon daemon(dir.path(), storeRoot);
    auto cache = dir.path() + "/cache";
    std::vector<std::string> args{"--cache", cache, "--daemon-socket", daemon.socket(), "--allow-path", EXAMPLES_DIR};
    if (!storeRoot.empty()) args.insert(args.end(), {"--store-root", storeRoot});
    EvoliveServer server(dir.path() + "/state", args);
    auto jobset = fileJobset(EXAMPLES_DIR, "release.nix", {{"salt", freshSalt()}, {"system", "x86_64-linux"}});
    jobset["options"] = {{"push", true}};
    auto lines = streamLines(server.url() + "/v1/evaluations", jobset.dump());
    EXPECT_EQ(lines.back()["type"], "finished") << lines.back();
    EXPECT_GE(lines.back()["push"]["uploaded"].get<int>(), 5);
    EXPECT_EQ(lines.back()["push"]["errors"], 0);
    std::string curl;
    for (auto & line : lines) {
        if (line.value("type", "") != "job" || !line.contains("drvPath")) continue;
        EXPECT_TRUE(line.contains("push") && !line["push"].contains("error")) << line;
        if (line["attr"] == "curl") curl = line["drvPath"];
    }
    auto info = runNix({"path-info", "--derivation", "--recursive", "--store", "file://" + cache, curl});
    EXPECT_EQ(info.exitCode, 0) << info.err;
    EXPECT_NE(info.out.find("-zlib-1.3.drv"), std::string::npos);
    return curl;
}

} // namespace

TEST(PushSocket, AnEvaluationWithPushPushesEachJobAsItIsFound)
{
    TempDir dir;
    pushEachJob(dir, "");
}

// --store-root: the .drv files are written into the chroot store only, and
// pushed from there.
TEST(PushSocket, AnEvaluationIntoAChrootStorePushesFromIt)
{
    TempDir dir;
    auto root = dir.path() + "/root";
    fs::create_directories(root);
    auto curl = pushEachJob(dir, root);
    ASSERT_FALSE(curl.empty());
    EXPECT_TRUE(fs::exists(root + curl)) << curl;
    EXPECT_FALSE(fs::exists(curl)) << curl << " was written into /nix/store";
}
