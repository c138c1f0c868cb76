// Store URLs as Nix writes them: `file:///DIR?compression=xz&secret-key=FILE`
// and `s3://BUCKET?endpoint=HOST:PORT&scheme=http&region=R&profile=P` work
// unchanged with `evolive push --to`, `--cache`, `--results` and the
// configuration file; an unknown parameter is refused by name before
// anything is written. An unmodified `nix` reads what was written.
#include "subprocess.hh"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

class StoreUrl : public ::testing::Test
{
protected:
    TempDir dir;
    std::string salt = freshSalt();
    std::unique_ptr<NixDaemon> daemon;
    std::string secretKey, publicKey, otherPublicKey;

    void SetUp() override
    {
        daemon = std::make_unique<NixDaemon>(dir.path());
        secretKey = dir.path() + "/sk";
        auto r = runCommand({"nix-store", "--generate-binary-cache-key", "store-url-test-1", secretKey, dir.path() + "/pk"});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        publicKey = readFile(dir.path() + "/pk");
        runCommand({"nix-store", "--generate-binary-cache-key", "other-1", dir.path() + "/sk2", dir.path() + "/pk2"});
        otherPublicKey = readFile(dir.path() + "/pk2");
    }

    Completed push(const std::string & to, const std::vector<std::string> & paths,
                   const std::map<std::string, std::string> & env = {})
    {
        std::vector<std::string> argv{EVOLIVE_BINARY, "push", "--json", "--to", to, "--daemon-socket", daemon->socket()};
        argv.insert(argv.end(), paths.begin(), paths.end());
        return runCommand(argv, env);
    }

    // A built output: not content-addressed, so Nix checks its signature.
    std::string builtOutput()
    {
        auto file = dir.write("built.nix", "{ salt }: derivation { name = \"store-url\"; inherit salt; system = "
                                           "\"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo hi > $out\" ]; }");
        auto built = runCommand({"nix-build", file, "--argstr", "salt", salt, "--no-out-link", "--option", "sandbox", "false"});
        EXPECT_EQ(built.exitCode, 0) << built.err;
        return firstLine(built.out);
    }

    std::vector<std::string> narinfos(const std::string & cache)
    {
        std::vector<std::string> out;
        for (auto & e : fs::directory_iterator(cache))
            if (e.path().extension() == ".narinfo") out.push_back(readFile(e.path()));
        return out;
    }
};

std::string onlyEntry(const std::string & dir)
{
    std::vector<std::string> names;
    for (auto & e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
    return names.size() == 1 ? names[0] : "<" + std::to_string(names.size()) + " entries>";
}

} // namespace

TEST_F(StoreUrl, NixFileUrlParametersAreHonoured)
{
    auto out = builtOutput();
    auto parent = dir.path() + "/caches";
    fs::create_directories(parent);
    auto cache = parent + "/signed";
    auto pushed = push("file://" + cache + "?compression=xz&secret-key=" + secretKey +
                           "&want-mass-query=false&priority=17&parallel-compression=true&compression-level=9",
                       {out});
    ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
    // Into the directory, not one named after the whole URL.
    EXPECT_EQ(onlyEntry(parent), "signed");
    for (auto & narinfo : narinfos(cache)) {
        EXPECT_NE(narinfo.find("Compression: xz\n"), std::string::npos) << narinfo;
        EXPECT_NE(narinfo.find(".nar.xz\n"), std::string::npos) << narinfo;
        EXPECT_NE(narinfo.find("Sig: store-url-test-1:"), std::string::npos) << narinfo;
    }
    EXPECT_FALSE(narinfos(cache).empty());
    auto info = readFile(cache + "/nix-cache-info");
    EXPECT_NE(info.find("WantMassQuery: 0\n"), std::string::npos) << info;
    EXPECT_NE(info.find("Priority: 17\n"), std::string::npos) << info;

    auto good = runNix({"store", "verify", "--store", "file://" + cache, "--trusted-public-keys", publicKey, out});
    EXPECT_EQ(good.exitCode, 0) << good.err;
    auto bad = runNix({"store", "verify", "--store", "file://" + cache, "--trusted-public-keys", otherPublicKey, out});
    EXPECT_NE(bad.exitCode, 0) << "a cache signed with another key was accepted";

    // The directory as Nix (2.8, which reads it here) takes it: not
    // percent-decoded; parameter values are.
    auto spaced = push("file://" + parent + "/with%20percent?compression=none&secret-key=" +
                           std::string(secretKey).replace(secretKey.rfind('/'), 1, "%2F"),
                       {out});
    ASSERT_EQ(spaced.exitCode, 0) << spaced.err;
    EXPECT_TRUE(fs::exists(parent + "/with%20percent/nix-cache-info"));
    auto read = runNix({"store", "verify", "--store", "file://" + parent + "/with%20percent", "--trusted-public-keys",
                        publicKey, out});
    EXPECT_EQ(read.exitCode, 0) << read.err;
}

TEST_F(StoreUrl, CompressionLevelAndParallelCompressionOfALargePath)
{
    auto large = addLargeFile(dir.path(), salt);
    auto cache = dir.path() + "/large";
    auto pushed = push("file://" + cache + "?compression=zstd&compression-level=19&parallel-compression=1", {large});
    ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
    // nix checks the NAR's hash as it imports it.
    auto root = dir.path() + "/store";
    auto copy = runNix({"copy", "--from", "file://" + cache, "--to", "local?root=" + root, large});
    ASSERT_EQ(copy.exitCode, 0) << copy.err;
    EXPECT_TRUE(readFile(root + large) == readFile(large));
}

TEST_F(StoreUrl, UnknownOrUnsupportedParametersAreRefusedByNameWritingNothing)
{
    auto drv = instantiateExample("zlib", salt);
    struct Case
    {
        std::string query, named;
    };
    for (auto & c : std::vector<Case>{{"colour=blue", "'colour'"},
                                      {"compression=gzip", "compression=gzip' in"},
                                      {"compression-level=high", "compression-level"},
                                      {"priority=x", "priority"},
                                      {"index-debug-info=true", "index-debug-info"},
                                      {"narinfo-compression=xz", "narinfo-compression"},
                                      {"compression=xz&compression=zstd", "compression"}}) {
        SCOPED_TRACE(c.query);
        auto cache = dir.path() + "/refused";
        auto r = push("file://" + cache + "?" + c.query, {drv});
        EXPECT_EQ(r.exitCode, 1);
        EXPECT_NE(r.err.find(c.named), std::string::npos) << c.query << ": " << r.err;
        EXPECT_FALSE(fs::exists(cache));
    }
    // The same parser for the results and the service's settings.
    auto results = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", dir.path() + "/state", "--results",
                               "file://" + dir.path() + "/results?colour=blue", "--expr", "{ }"});
    EXPECT_EQ(results.exitCode, 1);
    EXPECT_NE(results.out.find("'colour'"), std::string::npos) << results.out;
    EXPECT_FALSE(fs::exists(dir.path() + "/results"));
    // (`timeout`: a server that took the URL would serve until stopped.)
    auto served = runCommand({"timeout", "30", EVOLIVE_BINARY, "serve", "--state-dir", dir.path() + "/serve", "--cache",
                              "file://" + dir.path() + "/cache?colour=blue"});
    EXPECT_EQ(served.exitCode, 2);
    EXPECT_NE(served.err.find("'colour'"), std::string::npos) << served.err;
    auto config = dir.write("evolive.toml", "[push]\ncache = \"s3://cache?endpoint=127.0.0.1:1&scheme=http&shape=round\"\n");
    auto configured = runCommand({"timeout", "30", EVOLIVE_BINARY, "serve", "--state-dir", dir.path() + "/serve", "--config", config});
    EXPECT_EQ(configured.exitCode, 2);
    EXPECT_NE(configured.err.find("'shape'"), std::string::npos) << configured.err;
}

TEST_F(StoreUrl, NixS3UrlsWithSchemeAndProfile)
{
    S3Server s3(dir.path() + "/s3", "cache");
    auto credentials = dir.write("credentials", "[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
                                                "[ci]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n");
    std::map<std::string, std::string> env{{"AWS_SHARED_CREDENTIALS_FILE", credentials}};
    auto hostPort = "127.0.0.1:" + std::to_string(s3.port());
    auto out = builtOutput();
    auto nixUrl = "s3://cache?endpoint=" + hostPort + "&scheme=http&region=eu-west-1&profile=ci";
    auto pushed = push(nixUrl + "&compression=xz&secret-key=" + secretKey, {out}, env);
    ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
    EXPECT_EQ(json::parse(pushed.out)["uploaded"], 1);

    auto http = "http://" + hostPort + "/cache";
    auto good = runNix({"store", "verify", "--store", http, "--trusted-public-keys", publicKey, out});
    EXPECT_EQ(good.exitCode, 0) << good.err;
    auto narinfo = runCommand({"curl", "-sf", http + "/" + fs::path(out).filename().string().substr(0, 32) + ".narinfo"});
    EXPECT_NE(narinfo.out.find("Compression: xz"), std::string::npos) << narinfo.out;

    // An unknown parameter writes nothing to the bucket, not even nix-cache-info.
    auto refused = push("s3://cache?endpoint=" + hostPort + "&scheme=http&profile=ci&colour=blue",
                        {instantiateExample("zlib", salt)}, env);
    EXPECT_EQ(refused.exitCode, 1);
    EXPECT_NE(refused.err.find("'colour'"), std::string::npos) << refused.err;
    // A scheme that contradicts the endpoint's is an error too.
    auto contradicts = push("s3://cache?endpoint=https://" + hostPort + "&scheme=http&profile=ci", {out}, env);
    EXPECT_EQ(contradicts.exitCode, 1);
    EXPECT_NE(contradicts.err.find("scheme"), std::string::npos) << contradicts.err;

    // Results in the same bucket, under a prefix, with the same URL form.
    auto state = dir.path() + "/state";
    auto evaluated = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", state, "--results", nixUrl + "&prefix=results/",
                                 "--expr", "{ }"},
                                env);
    ASSERT_EQ(evaluated.exitCode, 0) << evaluated.out << evaluated.err;
    auto fingerprint = json::parse(firstLine(evaluated.out))["fingerprint"].get<std::string>();
    auto object = runCommand({"curl", "-sf", "-o", "/dev/null", "-w", "%{http_code}",
                              http + "/results/" + fingerprint + ".parquet"});
    EXPECT_EQ(object.out, "200");
}
