// Pushing to an S3-compatible server that checks SigV4 signatures
// (@20minutes/s3rver), read back by `nix` over HTTP.
#include "subprocess.hh"

#include <filesystem>
#include <map>
#include <sstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

class S3Push : public ::testing::Test
{
protected:
    TempDir dir;
    std::string salt = freshSalt();
    std::unique_ptr<NixDaemon> daemon;
    std::unique_ptr<S3Server> s3;

    void SetUp() override
    {
        daemon = std::make_unique<NixDaemon>(dir.path());
        s3 = std::make_unique<S3Server>(dir.path() + "/s3", "cache");
    }

    std::string url(const std::string & extra = "") { return "s3://cache?endpoint=" + s3->endpoint() + extra; }

    Completed push(const std::string & to, const std::vector<std::string> & paths,
                   std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "S3RVER"},
                                                             {"AWS_SECRET_ACCESS_KEY", "S3RVER"}})
    {
        std::vector<std::string> argv{EVOLIVE_BINARY, "push", "--json", "--to", to, "--daemon-socket", daemon->socket()};
        argv.insert(argv.end(), paths.begin(), paths.end());
        return Subprocess(argv, env).wait();
    }

    std::string instantiate(const std::string & attr) { return instantiateExample(attr, salt); }

    size_t narinfosStored()
    {
        size_t n = 0;
        if (fs::exists(dir.path() + "/s3/cache"))
            for (auto & e : fs::directory_iterator(dir.path() + "/s3/cache"))
                if (e.path().filename().string().find(".narinfo._S3rver_object") != std::string::npos &&
                    e.path().extension() != ".md5")
                    ++n;
        return n;
    }
};

} // namespace

TEST_F(S3Push, NixReadsTheBucketOverHttp)
{
    auto drv = instantiate("curl");
    auto first = push(url(), {drv});
    ASSERT_EQ(first.exitCode, 0) << first.err;
    EXPECT_EQ(json::parse(first.out)["uploaded"], 3);

    auto http = s3->endpoint() + "/cache";
    auto listed = runNix({"path-info", "--derivation", "--recursive", "--store", http, drv});
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), 3);

    auto root = dir.path() + "/other-store";
    auto copy = runNix({"copy", "--derivation", "--from", http, "--to", "local?root=" + root, drv});
    ASSERT_EQ(copy.exitCode, 0) << copy.err;
    EXPECT_EQ(readFile(root + drv), readFile(drv));

    auto second = push(url(), {drv});
    ASSERT_EQ(second.exitCode, 0) << second.err;
    EXPECT_EQ(json::parse(second.out)["uploaded"], 0);
    EXPECT_EQ(json::parse(second.out)["present"], 1); // curl: its references are not looked at
}

TEST_F(S3Push, AWrongSecretIsRefusedAndNothingIsWritten)
{
    auto bad = push(url(), {instantiate("zlib")}, {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "wrong"}});
    EXPECT_EQ(bad.exitCode, 1);
    EXPECT_NE(bad.err.find("HTTP 403"), std::string::npos) << bad.err;
    EXPECT_EQ(narinfosStored(), 0u);

    auto none = push(url(), {instantiate("zlib")}, {{"AWS_SHARED_CREDENTIALS_FILE", dir.path() + "/none"}});
    EXPECT_EQ(none.exitCode, 1);
    EXPECT_NE(none.err.find("no S3 credentials"), std::string::npos) << none.err;
}

TEST_F(S3Push, CredentialsFromAProfileAndMultipartUploads)
{
    auto credentials = dir.write("credentials", "[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
                                                "[ci]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n");
    // Every NAR above 100 bytes goes up in parts of 64 bytes.
    auto pushed = push(url("&profile=ci&multipart-threshold=100&part-size=64"), {instantiate("curl")},
                       {{"AWS_SHARED_CREDENTIALS_FILE", credentials}});
    ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
    EXPECT_EQ(json::parse(pushed.out)["uploaded"], 3);
    auto listed = runNix({"path-info", "--derivation", "--recursive", "--store", s3->endpoint() + "/cache", instantiate("curl")});
    EXPECT_EQ(listed.exitCode, 0) << listed.err;
    auto root = dir.path() + "/other-store";
    auto copy = runNix({"copy", "--derivation", "--from", s3->endpoint() + "/cache", "--to", "local?root=" + root,
                     instantiate("curl")});
    EXPECT_EQ(copy.exitCode, 0) << copy.err;
}

TEST_F(S3Push, LargePathsGoUpFromATemporaryFileWholeOrInParts)
{
    // Two paths too large to build in memory; compressed, about 8 MiB each:
    // one PUT for the first, parts of 1 MiB read from the file for the second.
    auto whole = addLargeFile(dir.path(), salt + "-whole");
    auto parts = addLargeFile(dir.path(), salt + "-parts");
    auto first = push(url(), {whole});
    ASSERT_EQ(first.exitCode, 0) << first.err;
    auto second = push(url("&multipart-threshold=1048576&part-size=1048576"), {parts});
    ASSERT_EQ(second.exitCode, 0) << second.err;
    for (auto & path : {whole, parts}) {
        SCOPED_TRACE(path);
        // nix checks the NAR's hash as it imports it.
        auto root = dir.path() + "/other-store";
        auto copy = runNix({"copy", "--from", s3->endpoint() + "/cache", "--to", "local?root=" + root, path});
        ASSERT_EQ(copy.exitCode, 0) << copy.err;
        EXPECT_TRUE(readFile(root + path) == readFile(path));
    }
}

// 500s from the server: retried with backoff; when they do not stop, a
// clear error and nothing in the bucket.
TEST_F(S3Push, ServerErrorsAreRetriedThenReported)
{
    auto proxy = [&](int failures) {
        auto p = std::make_unique<Subprocess>(std::vector<std::string>{"node", FLAKY_PROXY_SCRIPT,
                                                                       std::to_string(s3->port()), std::to_string(failures)});
        int port = listeningPort(*p, "the flaky proxy");
        return std::make_pair(std::move(p), port);
    };
    auto drv = instantiate("curl");

    auto [flaky, flakyPort] = proxy(3);
    auto recovered = push("s3://cache?endpoint=http://127.0.0.1:" + std::to_string(flakyPort) + "&retries=5", {drv});
    ASSERT_EQ(recovered.exitCode, 0) << recovered.err;
    EXPECT_EQ(json::parse(recovered.out)["uploaded"], 3);
    EXPECT_EQ(narinfosStored(), 3u);

    auto [broken, brokenPort] = proxy(1000000);
    auto other = instantiate("pythonPackages.requests"); // not pushed yet
    auto failed = push("s3://cache?endpoint=http://127.0.0.1:" + std::to_string(brokenPort) + "&retries=2", {other});
    EXPECT_EQ(failed.exitCode, 1);
    EXPECT_NE(failed.err.find("HTTP 500"), std::string::npos) << failed.err;
    EXPECT_NE(failed.err.find("gave up after 3 attempts"), std::string::npos) << failed.err;
    EXPECT_EQ(narinfosStored(), 3u) << "nothing new may be written through a failing server";

    // Once the server is well again, the push completes.
    auto again = push(url(), {other});
    ASSERT_EQ(again.exitCode, 0) << again.err;
    EXPECT_EQ(json::parse(again.out)["uploaded"], 1);
}

TEST_F(S3Push, AServerThatIsGoneIsRetriedThenReported)
{
    auto gone = "s3://cache?endpoint=http://127.0.0.1:1&retries=2";
    auto started = std::chrono::steady_clock::now();
    auto r = push(gone, {instantiate("zlib")});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("gave up after 3 attempts"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

// The walk learns presence from one signed listing of the bucket (s3rver
// checks its SigV4 signature), not from a HEAD per path: a proxy in front
// of the server logs every request.
TEST_F(S3Push, PresenceComesFromOneListingNotAHeadPerPath)
{
    auto log = dir.path() + "/requests.log";
    auto script = dir.write("logging_proxy.js", R"(const http = require('node:http')
const fs = require('node:fs')
const [targetPort, log] = process.argv.slice(2)
const server = http.createServer((req, res) => {
  fs.appendFileSync(log, `${req.method} ${req.url}\n`)
  const up = http.request({ host: '127.0.0.1', port: Number(targetPort), method: req.method, path: req.url,
                            headers: req.headers }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res) })
  up.on('error', () => { res.writeHead(502); res.end() })
  req.pipe(up)
})
server.listen(0, '127.0.0.1', () => console.error(`listening ${server.address().port}`))
)");
    Subprocess proxy({"node", script, std::to_string(s3->port()), log});
    auto to = "s3://cache?endpoint=http://127.0.0.1:" + std::to_string(listeningPort(proxy, "the logging proxy"));
    auto requests = [&] {
        std::map<std::string, int> counts; // "HEAD narinfo", "PUT narinfo", "GET list"
        std::istringstream lines(fs::exists(log) ? readFile(log) : "");
        for (std::string l; std::getline(lines, l);) {
            auto method = l.substr(0, l.find(' '));
            auto url = l.substr(l.find(' ') + 1);
            if (url.find(".narinfo") != std::string::npos) ++counts[method + " narinfo"];
            else if (url.find("list-type=2") != std::string::npos) ++counts[method + " list"];
        }
        fs::remove(log);
        return counts;
    };

    auto zlib = instantiate("zlib");
    auto first = push(to, {zlib});
    ASSERT_EQ(first.exitCode, 0) << first.err;
    EXPECT_EQ(first.err.find("cannot list"), std::string::npos) << first.err;
    auto uploaded = json::parse(first.out)["uploaded"].get<int>();
    EXPECT_GT(uploaded, 0);
    EXPECT_EQ(requests(), (std::map<std::string, int>{{"GET list", 1}, {"PUT narinfo", uploaded}}));

    // zlib is in the bucket now: the next push lists it and stops there.
    auto curl = instantiate("curl");
    auto second = push(to, {curl});
    ASSERT_EQ(second.exitCode, 0) << second.err;
    EXPECT_EQ(second.err.find("cannot list"), std::string::npos) << second.err;
    auto more = json::parse(second.out)["uploaded"].get<int>();
    EXPECT_EQ(requests(), (std::map<std::string, int>{{"GET list", 1}, {"PUT narinfo", more}}));
    auto listed = runNix({"path-info", "--derivation", "--recursive", "--store", s3->endpoint() + "/cache", curl});
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), uploaded + more);
}
