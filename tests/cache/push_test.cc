// Pushing to a binary cache, read back by an unmodified `nix`; the NAR
// writer and hash encodings against Nix's own tools.
#include "daemon_client.hh"
#include "hash.hh"
#include "nar_writer.hh"
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <thread>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A loopback TCP port free now, for a server that cannot pick its own and
// say which (redis-server).
int freeLoopbackPort()
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (sockaddr *) &addr, sizeof addr) != 0 || getsockname(fd, (sockaddr *) &addr, &len) != 0)
        throw std::runtime_error("no free loopback port");
    close(fd);
    return ntohs(addr.sin_port);
}

class Push : public ::testing::Test
{
protected:
    TempDir dir;
    std::string salt = freshSalt();
    std::unique_ptr<NixDaemon> daemon;
    std::string cache, secretKey, publicKey;

    void SetUp() override
    {
        daemon = std::make_unique<NixDaemon>(dir.path());
        cache = dir.path() + "/cache";
        auto keys = runCommand({"nix-store", "--generate-binary-cache-key", "evolive-test-1", dir.path() + "/sk",
                                dir.path() + "/pk"});
        ASSERT_EQ(keys.exitCode, 0) << keys.err;
        secretKey = dir.path() + "/sk";
        publicKey = readFile(dir.path() + "/pk");
    }

    Completed push(std::vector<std::string> paths, std::vector<std::string> extra = {})
    {
        std::vector<std::string> argv{EVOLIVE_BINARY, "push", "--json", "--to", cache, "--key", secretKey,
                                      "--daemon-socket", daemon->socket()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.insert(argv.end(), paths.begin(), paths.end());
        return runCommand(argv);
    }

    std::string instantiate(const std::string & attr) { return instantiateExample(attr, salt); }
};

} // namespace

TEST(NarWriter, MatchesNixStoreDump)
{
    TempDir dir;
    auto root = dir.path() + "/tree";
    dir.write("tree/regular", "contents\n");
    dir.write("tree/empty", "");
    dir.write("tree/exec", "#!/bin/sh\n");
    chmod((root + "/exec").c_str(), 0755);
    dir.write("tree/B-upper", "sorts before lower case by byte");
    dir.write("tree/a-lower", "a");
    dir.write("tree/ü-unicode", "after ASCII by byte");
    dir.write("tree/nested/deeper/file", std::string(100000, 'x'));
    fs::create_directories(root + "/empty-dir");
    fs::create_symlink("regular", root + "/link");
    fs::create_symlink("/nonexistent/target", root + "/dangling");

    for (auto path : {root, root + "/regular", root + "/link", root + "/empty"}) {
        SCOPED_TRACE(path);
        std::string ours;
        evolive::nix::writeNar(path, [&](std::string_view d) { ours.append(d); });
        auto theirs = runCommand({"nix-store", "--dump", path});
        ASSERT_EQ(theirs.exitCode, 0) << theirs.err;
        EXPECT_EQ(ours.size(), theirs.out.size());
        EXPECT_TRUE(ours == theirs.out);
    }
}

TEST(Hashes, NixBase32MatchesNixHash)
{
    for (std::string data : std::vector<std::string>{"", "abc", std::string(1000, 'z')}) {
        evolive::nix::Sha256Sink h;
        h(data);
        auto hash = h.finish();
        auto hex = evolive::nix::toBase16(hash);
        auto theirs = runCommand({"nix-hash", "--type", "sha256", "--to-base32", hex});
        ASSERT_EQ(theirs.exitCode, 0) << theirs.err;
        EXPECT_EQ(evolive::nix::toNixBase32(hash), firstLine(theirs.out));
        EXPECT_EQ(evolive::nix::fromBase16(hex), hash);
    }
}

TEST_F(Push, DaemonClientQueriesValidityAndPathInfo)
{
    evolive::nix::DaemonConnection daemonClient(daemon->socket());
    // The version both speak is the older one: Nix 2.8's daemon speaks 1.34,
    // Nix 2.26's 1.38 (with the feature exchange), as the client does.
    auto version = runCommand({"nix-daemon", "--version"});
    ASSERT_EQ(version.exitCode, 0) << version.err;
    auto daemonVersion = firstLine(version.out).substr(firstLine(version.out).rfind(' ') + 1);
    EXPECT_EQ(daemonClient.daemonNixVersion(), daemonVersion);
    EXPECT_EQ(daemonClient.protocolMinor(), daemonVersion.rfind("2.8.", 0) == 0 ? 34u : 38u) << daemonVersion;
    auto drv = instantiate("openssl");
    std::string missing = "/nix/store/00000000000000000000000000000000-missing.drv";
    EXPECT_EQ(daemonClient.queryValidPaths({drv, missing}), std::set<std::string>{drv});

    auto info = daemonClient.queryPathInfo(drv);
    ASSERT_TRUE(info);
    auto theirs = runCommand({"nix-store", "--query", "--hash", drv});
    EXPECT_EQ("sha256:" + evolive::nix::toNixBase32(evolive::nix::fromBase16(info->narHash)), firstLine(theirs.out));
    auto refs = runCommand({"nix-store", "--query", "--references", drv});
    EXPECT_EQ(info->references, lineSet(refs.out));
    EXPECT_EQ(info->ca.rfind("text:sha256:", 0), 0u) << info->ca;
    EXPECT_FALSE(daemonClient.queryPathInfo(missing));
}

TEST_F(Push, ClosureIsReadableByNixAndNotUploadedTwice)
{
    auto drv = instantiate("curl");
    auto first = push({drv});
    ASSERT_EQ(first.exitCode, 0) << first.err;
    auto summary = json::parse(first.out);
    EXPECT_EQ(summary["uploaded"], 3); // zlib, openssl, curl
    EXPECT_EQ(summary["present"], 0);

    auto listed = runNix({"path-info", "--derivation", "--recursive", "--store", "file://" + cache, drv});
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    auto local = runCommand({"nix-store", "--query", "--requisites", drv});
    EXPECT_EQ(lineSet(listed.out), lineSet(local.out));

    auto root = dir.path() + "/other-store";
    auto copy = runNix({"copy", "--derivation", "--from", "file://" + cache, "--to", "local?root=" + root, drv});
    ASSERT_EQ(copy.exitCode, 0) << copy.err;
    EXPECT_TRUE(fs::exists(root + drv));
    EXPECT_EQ(readFile(root + drv), readFile(drv));

    // Everything present: nothing is uploaded again. A path found present
    // is not looked into: its references are in the cache before it is.
    auto second = push({drv, instantiate("openssl")});
    ASSERT_EQ(second.exitCode, 0) << second.err;
    EXPECT_EQ(json::parse(second.out)["uploaded"], 0);
    EXPECT_EQ(json::parse(second.out)["present"], 2);
}

TEST_F(Push, ShowsProgressOnATerminalOrWhenAsked)
{
    // Not a terminal (runCommand reads a pipe): no progress unless asked.
    auto quiet = push({instantiate("zlib")});
    ASSERT_EQ(quiet.exitCode, 0) << quiet.err;
    EXPECT_EQ(quiet.err, "");

    auto shown = push({instantiate("curl")}, {"--progress"});
    ASSERT_EQ(shown.exitCode, 0) << shown.err;
    // zlib is present now: openssl and curl are left, and the line is
    // cleared at the end.
    EXPECT_NE(shown.err.find("uploading: 2 of 2 paths"), std::string::npos) << shown.err;
    EXPECT_TRUE(shown.err.ends_with("\r\033[K")) << shown.err;
}

TEST_F(Push, LargePathsStreamThroughATemporaryFile)
{
    TempDir spool;
    auto large = addLargeFile(dir.path(), salt);
    // Peak memory (KiB) of a push, and its result.
    auto measured = [&](const std::string & path, const std::string & compression) {
        auto rss = dir.path() + "/rss";
        auto r = runCommand({"/usr/bin/time", "-f", "%M", "-o", rss, EVOLIVE_BINARY, "push", "--json", "--to", cache,
                             "--compression", compression, "--daemon-socket", daemon->socket(), path},
                            {{"TMPDIR", spool.path()}});
        return std::pair{std::stol(readFile(rss)), r};
    };
    cache = dir.path() + "/cache-small";
    auto [small, smallRun] = measured(instantiate("zlib"), "zstd");
    ASSERT_EQ(smallRun.exitCode, 0) << smallRun.err;
    for (auto compression : {"zstd", "xz", "none"}) {
        SCOPED_TRACE(compression);
        cache = dir.path() + "/cache-" + compression;
        auto [rss, pushed] = measured(large, compression);
        ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
        EXPECT_EQ(std::to_string(json::parse(pushed.out)["narBytes"].get<uint64_t>()),
                  firstLine(runCommand({"nix-store", "--query", "--size", large}).out));
        // Held in memory, the 24 MiB NAR alone would add more than this. xz's
        // encoder (preset 6) needs 94 MiB of its own for any large input.
        long allowed = 12 * 1024 + (compression == std::string("xz") ? 94 * 1024 : 0);
        EXPECT_LT(rss - small, allowed) << compression << " peak " << rss << " KiB against " << small << " KiB for a small push";
        EXPECT_TRUE(fs::is_empty(spool.path())) << "a temporary file was left behind";
        // nix checks the NAR's hash as it imports it.
        auto root = dir.path() + "/store-" + compression;
        auto copy = runNix({"copy", "--from", "file://" + cache, "--to", "local?root=" + root, large});
        ASSERT_EQ(copy.exitCode, 0) << copy.err;
        EXPECT_TRUE(readFile(root + large) == readFile(large));
    }
}

TEST_F(Push, SignaturesVerifyWithTheRightKeyOnly)
{
    // A built output is not content-addressed, so Nix checks its signature.
    TempDir work;
    auto file = work.write("built.nix", "{ salt }: derivation { name = \"signed\"; inherit salt; system = "
                                        "\"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo hi > $out\" ]; }");
    auto built = runCommand({"nix-build", file, "--argstr", "salt", salt, "--no-out-link", "--option", "sandbox", "false"});
    ASSERT_EQ(built.exitCode, 0) << built.err;
    auto out = firstLine(built.out);
    for (auto compression : {"zstd", "xz", "none"}) {
        SCOPED_TRACE(compression);
        cache = dir.path() + "/cache-" + compression;
        auto pushed = push({out}, {"--compression", compression});
        ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
        auto good = runNix({"store", "verify", "--store", "file://" + cache, "--trusted-public-keys", publicKey, out});
        EXPECT_EQ(good.exitCode, 0) << good.err;
        auto other = runCommand({"nix-store", "--generate-binary-cache-key", "other-1", dir.path() + "/sk2",
                                 dir.path() + "/pk2"});
        auto bad = runNix({"store", "verify", "--store", "file://" + cache, "--trusted-public-keys",
                           readFile(dir.path() + "/pk2"), out});
        EXPECT_NE(bad.exitCode, 0) << "a cache signed with another key was accepted";
        EXPECT_NE(bad.err.find("untrusted"), std::string::npos) << bad.err;
    }
}

TEST_F(Push, BadPathsGetClearErrors)
{
    auto missing = push({"/nix/store/00000000000000000000000000000000-missing.drv"});
    EXPECT_EQ(missing.exitCode, 1);
    EXPECT_NE(missing.err.find("is not in the store"), std::string::npos) << missing.err;
    auto outside = push({"/etc/passwd"});
    EXPECT_EQ(outside.exitCode, 1);
    EXPECT_NE(outside.err.find("is not a store path"), std::string::npos) << outside.err;
    auto noDaemon = runCommand({EVOLIVE_BINARY, "push", "--to", cache, "--daemon-socket", dir.path() + "/nothing",
                                instantiate("zlib")});
    EXPECT_EQ(noDaemon.exitCode, 1);
    EXPECT_NE(noDaemon.err.find("cannot connect to the Nix daemon"), std::string::npos) << noDaemon.err;
    // Nothing half-written: no narinfo without its NAR.
    if (fs::exists(cache)) {
        for (auto & e : fs::directory_iterator(cache)) EXPECT_NE(e.path().extension(), ".narinfo");
    }
}

TEST_F(Push, EvaluationPushesEachJobAsItIsFound)
{
    TempDir state;
    json jobset{{"inputs", {{"src", {{"type", "path"}, {"path", EXAMPLES_DIR}}}, {"salt", {{"type", "string"}, {"value", salt}}}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}},
                {"options", {{"push", true}, {"constituents", true}}}};
    auto file = dir.write("push-jobset.json", jobset.dump());
    auto run = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", state.path(), "--cache", cache, "--key", secretKey,
                           "--daemon-socket", daemon->socket(), file});
    ASSERT_EQ(run.exitCode, 0) << run.out << run.err;
    json finished;
    std::vector<std::string> drvs;
    std::istringstream lines(run.out);
    for (std::string l; std::getline(lines, l);) {
        auto m = json::parse(l);
        if (m["type"] == "finished") finished = m;
        if (m["type"] == "job" && m.contains("drvPath")) {
            drvs.push_back(m["drvPath"]);
            EXPECT_TRUE(m["push"].contains("uploaded")) << m;
        }
    }
    EXPECT_EQ(drvs.size(), 5u);
    // zlib, openssl, curl, requests, and the rewritten aggregate: each uploaded once.
    EXPECT_EQ(finished["push"]["uploaded"], 5) << finished;
    EXPECT_EQ(finished["push"]["errors"], 0);
    for (auto & drv : drvs) {
        auto info = runNix({"path-info", "--derivation", "--store", "file://" + cache, drv});
        EXPECT_EQ(info.exitCode, 0) << drv << info.err;
    }
}

// Presence shared through a real redis-server (on a Unix socket of the
// test's own): a second process trusts what the first one recorded.
TEST_F(Push, PresenceIsSharedThroughRedis)
{
    auto socket = dir.path() + "/redis.sock";
    Subprocess redis({"redis-server", "--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no"});
    for (int i = 0; i < 200 && !fs::exists(socket); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::exists(socket)) << "redis-server did not start";
    auto drv = instantiate("curl");

    auto first = push({drv}, {"--redis", "unix://" + socket});
    ASSERT_EQ(first.exitCode, 0) << first.err;
    EXPECT_EQ(json::parse(first.out)["uploaded"], 3);

    // Remove the narinfos behind evolive's back: only Redis still says present.
    for (auto & e : fs::directory_iterator(cache))
        if (e.path().extension() == ".narinfo") fs::remove(e.path());
    auto shared = push({drv}, {"--redis", "unix://" + socket});
    ASSERT_EQ(shared.exitCode, 0) << shared.err;
    EXPECT_EQ(json::parse(shared.out)["uploaded"], 0);
    EXPECT_EQ(json::parse(shared.out)["present"], 1);

    auto alone = push({drv});
    ASSERT_EQ(alone.exitCode, 0) << alone.err;
    EXPECT_EQ(json::parse(alone.out)["uploaded"], 3);

    // Redis unreachable: the push goes on without it.
    auto unreachable = push({instantiate("openssl")}, {"--redis", "unix://" + dir.path() + "/no-redis.sock"});
    EXPECT_EQ(unreachable.exitCode, 0) << unreachable.err;
    EXPECT_NE(unreachable.err.find("Redis"), std::string::npos);
}

// evolive eval --push --redis: an evaluation records what it pushed in
// Redis, and a later one trusts Redis where the cache itself says nothing.
TEST_F(Push, EvaluationSharesPresenceThroughRedis)
{
    auto port = std::to_string(freeLoopbackPort());
    Subprocess redis({"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--logfile", "/dev/stderr"});
    ASSERT_TRUE(redis.waitForStderr("Ready to accept connections", std::chrono::seconds(30))) << redis.stderrSoFar();

    TempDir state;
    json jobset{{"inputs", {{"src", {{"type", "path"}, {"path", EXAMPLES_DIR}}}, {"salt", {{"type", "string"}, {"value", salt}}}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}},
                {"options", {{"constituents", true}}}};
    auto file = dir.write("redis-jobset.json", jobset.dump());
    std::vector<std::string> drvs;
    auto evaluate = [&](bool withRedis) {
        std::vector<std::string> argv{EVOLIVE_BINARY, "eval", "--push", "--force", "--state-dir", state.path(),
                                      "--cache", cache, "--daemon-socket", daemon->socket(), file};
        if (withRedis) argv.insert(argv.end(), {"--redis", "redis://127.0.0.1:" + port});
        auto run = runCommand(argv);
        EXPECT_EQ(run.exitCode, 0) << run.out << run.err;
        json finished;
        drvs.clear();
        std::istringstream lines(run.out);
        for (std::string l; std::getline(lines, l);) {
            auto m = json::parse(l);
            if (m["type"] == "finished") finished = m["push"];
            if (m["type"] == "job" && m.contains("drvPath")) drvs.push_back(m["drvPath"]);
        }
        EXPECT_EQ(finished["errors"], 0) << run.out;
        return finished;
    };

    auto first = evaluate(true);
    ASSERT_EQ(drvs.size(), 5u);
    std::vector<std::string> argv{"nix-store", "--query", "--requisites"};
    argv.insert(argv.end(), drvs.begin(), drvs.end());
    auto closure = lineSet(runCommand(argv).out);
    EXPECT_EQ(first["uploaded"], closure.size());

    // Redis holds every pushed path, under the cache's key.
    auto members = runCommand({"redis-cli", "-h", "127.0.0.1", "-p", port, "--raw", "SMEMBERS",
                               "evolive:present:file://" + fs::absolute(cache).lexically_normal().string()});
    ASSERT_EQ(members.exitCode, 0) << members.err;
    EXPECT_EQ(lineSet(members.out), closure);

    // Without the narinfos, only Redis says the jobs are present.
    for (auto & e : fs::directory_iterator(cache))
        if (e.path().extension() == ".narinfo") fs::remove(e.path());
    auto shared = evaluate(true);
    EXPECT_EQ(shared["uploaded"], 0) << shared;
    EXPECT_EQ(shared["present"], drvs.size()) << shared;

    // Without Redis, the same evaluation uploads everything again.
    auto alone = evaluate(false);
    EXPECT_EQ(alone["uploaded"], closure.size()) << alone;
}

// Killed in the middle of a push, then pushed again: the cache is complete,
// and at no point is there a narinfo without its NAR.
TEST_F(Push, AKilledPushLeavesAConsistentCacheAndTheNextOneCompletesIt)
{
    TempDir work;
    auto file = work.write("chain.nix", "{ salt }: builtins.foldl' (prev: i: derivation { name = \"link-${toString i}\"; "
                                        "inherit salt prev; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }) \"\" "
                                        "(builtins.genList (i: i) 1500)");
    auto inst = runCommand({"nix-instantiate", file, "--argstr", "salt", salt});
    ASSERT_EQ(inst.exitCode, 0) << inst.err;
    auto drv = inst.out.substr(0, inst.out.find('\n'));

    auto checkConsistent = [&]() -> size_t {
        size_t narinfos = 0;
        for (auto & e : fs::directory_iterator(cache)) {
            if (e.path().extension() != ".narinfo") continue;
            ++narinfos;
            std::istringstream lines(readFile(e.path()));
            for (std::string l; std::getline(lines, l);) {
                if (l.rfind("URL: ", 0) == 0) { EXPECT_TRUE(fs::exists(cache + "/" + l.substr(5))) << e.path(); }
            }
        }
        return narinfos;
    };

    {
        Subprocess pushing({EVOLIVE_BINARY, "push", "--to", cache, "--daemon-socket", daemon->socket(), drv});
        // Wait until it is under way, then kill it.
        for (int i = 0; i < 400 && (!fs::exists(cache) || checkConsistent() < 20); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        kill(pushing.pid(), SIGKILL);
        pushing.wait();
    }
    auto partial = checkConsistent();
    EXPECT_GT(partial, 0u);
    EXPECT_LT(partial, 1500u) << "the push finished before it could be killed";

    auto again = push({drv});
    ASSERT_EQ(again.exitCode, 0) << again.err;
    auto summary = json::parse(again.out);
    EXPECT_EQ(partial + summary["uploaded"].get<size_t>(), 1500u);
    EXPECT_EQ(checkConsistent(), 1500u);
    auto verify = runNix({"path-info", "--derivation", "--recursive", "--store", "file://" + cache, drv});
    ASSERT_EQ(verify.exitCode, 0) << verify.err;
    EXPECT_EQ(std::count(verify.out.begin(), verify.out.end(), '\n'), 1500);
}
