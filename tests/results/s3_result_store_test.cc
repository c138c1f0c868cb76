// Results kept in an S3 bucket: the store on an S3-compatible server that
// checks SigV4 signatures (@20minutes/s3rver), then `evolive serve
// --results s3://...` end to end: a second server with a fresh state
// directory replays what the first one stored.
#include "parquet_reader.hh"
#include "parquet_writer.hh"
#include "s3_result_store.hh"
#include "../server/service_client.hh"
#include "subprocess.hh"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <gtest/gtest.h>
#include <random>
#include <thread>

using namespace evolive::test;
using evolive::results::Cell;
using evolive::results::ParquetWriter;
using evolive::results::S3ResultStore;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> goodCredentials{{"AWS_ACCESS_KEY_ID", "S3RVER"},
                                                         {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};

std::string fingerprintFor(const std::string & seed)
{
    // Not a real fingerprint's hash, but shaped like one: 64 hex digits.
    std::mt19937_64 random(std::hash<std::string>{}(seed));
    char out[65];
    snprintf(out, sizeof out, "%016llx%016llx%016llx%016llx", (unsigned long long) random(),
             (unsigned long long) random(), (unsigned long long) random(), (unsigned long long) random());
    return out;
}

const std::vector<std::string> columns{"attr", "drvPath", "error"};

std::vector<std::vector<Cell>> sampleRows(const std::string & tag)
{
    return {{"hello", Cell("/nix/store/" + std::string(32, 'a') + "-hello-" + tag + ".drv"), Cell()},
            {"broken", Cell(), Cell("error: " + tag)},
            {"pkgs.zlib", Cell("/nix/store/" + std::string(32, 'b') + "-zlib.drv"), Cell()}};
}

void writeResult(const std::string & path, const std::string & fingerprint, const std::vector<std::vector<Cell>> & rows)
{
    ParquetWriter writer(path, columns);
    writer.setMetadata("fingerprint", fingerprint);
    for (auto & row : rows) writer.addRow(row);
    writer.finish();
}

std::vector<std::vector<Cell>> readRows(const std::string & path, std::map<std::string, std::string> * metadata = nullptr)
{
    std::vector<std::vector<Cell>> rows;
    auto contents = evolive::results::readParquet(path, [&](auto &, auto & row) { rows.push_back(row); });
    if (metadata) *metadata = contents.metadata;
    return rows;
}

class S3Results : public ::testing::Test
{
protected:
    TempDir dir;
    std::unique_ptr<S3Server> s3;

    void SetUp() override
    {
        for (auto & [k, v] : goodCredentials) setenv(k.c_str(), v.c_str(), 1);
        unsetenv("AWS_SESSION_TOKEN");
        s3 = std::make_unique<S3Server>(dir.path() + "/s3", "results");
    }

    std::string url(const std::string & extra = "&prefix=results/")
    {
        return "s3://results?endpoint=" + s3->endpoint() + extra;
    }

    // What the bucket holds under `key`, read without signing (s3rver serves
    // objects to anyone, as a bucket Nix reads over HTTP does).
    HttpResponse object(const std::string & key) { return httpRequest("GET", s3->endpoint() + "/results/" + key); }
};

} // namespace

TEST_F(S3Results, StoresFindsDownloadsAndLists)
{
    S3ResultStore store(url(), dir.path() + "/cache-a");
    EXPECT_EQ(store.describe(), url());
    EXPECT_EQ(store.prefix(), "results/");
    auto fp = fingerprintFor("one");
    EXPECT_FALSE(store.find(fp)) << "nothing stored yet";
    EXPECT_FALSE(store.find("../../etc/passwd"));
    EXPECT_FALSE(store.find(std::string(64, 'G')));
    EXPECT_TRUE(store.recent(10).empty());

    // The evaluation writes locally, then the store uploads.
    auto path = store.pathFor(fp);
    EXPECT_EQ(path, dir.path() + "/cache-a/" + fp + ".parquet");
    writeResult(path, fp, sampleRows("one"));
    store.stored(fp);
    auto uploaded = object("results/" + fp + ".parquet");
    EXPECT_EQ(uploaded.status, 200);
    EXPECT_EQ(uploaded.body, readFile(path));
    EXPECT_EQ(store.find(fp), path); // the local copy

    // A store with an empty local directory downloads it.
    S3ResultStore other(url(), dir.path() + "/cache-b");
    auto found = other.find(fp);
    ASSERT_TRUE(found);
    EXPECT_EQ(*found, dir.path() + "/cache-b/" + fp + ".parquet");
    std::map<std::string, std::string> metadata;
    EXPECT_EQ(readRows(*found, &metadata), sampleRows("one"));
    EXPECT_EQ(metadata["fingerprint"], fp);
    for (auto & e : fs::directory_iterator(dir.path() + "/cache-b"))
        EXPECT_EQ(e.path().filename(), fp + ".parquet") << "no temporary file is left";

    // Listed newest first, with sizes; a second result a second later.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto fp2 = fingerprintFor("two");
    writeResult(other.pathFor(fp2), fp2, sampleRows("two"));
    other.stored(fp2);
    auto recent = store.recent(10);
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].fingerprint, fp2);
    EXPECT_EQ(recent[1].fingerprint, fp);
    EXPECT_EQ(recent[1].bytes, fs::file_size(path));
    EXPECT_GE(recent[0].modified, recent[1].modified + 1);
    EXPECT_LE(std::abs(recent[0].modified - (int64_t) time(nullptr)), 60);
    EXPECT_EQ(store.recent(1).size(), 1u);
    EXPECT_EQ(store.find(fp2), store.pathFor(fp2)); // downloaded by the first store too

    // Objects outside the prefix, and keys that are not results, are not listed.
    S3ResultStore elsewhere(url("&prefix=elsewhere/"), dir.path() + "/cache-c");
    EXPECT_TRUE(elsewhere.recent(10).empty());
    EXPECT_FALSE(elsewhere.find(fp));
    auto fp3 = fingerprintFor("three");
    writeResult(elsewhere.pathFor(fp3), fp3, sampleRows("three"));
    elsewhere.stored(fp3);
    EXPECT_EQ(store.recent(10).size(), 2u);
    ASSERT_EQ(elsewhere.recent(10).size(), 1u);
    EXPECT_EQ(elsewhere.recent(10)[0].fingerprint, fp3);

    // Without a prefix: the bucket's top level, which lists every result key
    // there and skips the others.
    S3ResultStore top(url(""), dir.path() + "/cache-d");
    EXPECT_TRUE(top.recent(10).empty());
    EXPECT_FALSE(top.find(fp));
}

TEST_F(S3Results, ListsEveryPageAndUploadsLargeResultsInParts)
{
    // 1005 objects: ListObjectsV2 answers at most 1000 per page.
    S3ResultStore store(url("&prefix=many/&multipart-threshold=1000&part-size=512"), dir.path() + "/cache");
    std::vector<std::vector<Cell>> big;
    for (int i = 0; i < 200; ++i) big.push_back({"job" + std::to_string(i), Cell(fingerprintFor(std::to_string(i))), Cell()});
    auto bigFp = fingerprintFor("big");
    writeResult(store.pathFor(bigFp), bigFp, big);
    ASSERT_GT(fs::file_size(store.pathFor(bigFp)), 1000u);
    store.stored(bigFp);
    EXPECT_EQ(object("many/" + bigFp + ".parquet").body, readFile(store.pathFor(bigFp)));
    S3ResultStore reader(url("&prefix=many/"), dir.path() + "/cache-reader");
    ASSERT_TRUE(reader.find(bigFp));
    EXPECT_EQ(readRows(*reader.find(bigFp)), big);

    // Small results go up with single PUTs; the same file under many names.
    auto small = dir.path() + "/small.parquet";
    writeResult(small, "x", sampleRows("small"));
    for (int i = 0; i < 1004; ++i) {
        auto fp = fingerprintFor("page" + std::to_string(i));
        fs::copy_file(small, store.pathFor(fp));
        store.stored(fp);
    }
    EXPECT_EQ(reader.recent(2000).size(), 1005u);
    EXPECT_EQ(reader.recent(5).size(), 5u);
}

TEST_F(S3Results, KeepsLocalCopiesWithinTheCacheLimit)
{
    auto cache = dir.path() + "/cache";
    auto store = [&](const std::string & name, S3ResultStore & in) {
        auto fp = fingerprintFor(name);
        writeResult(in.pathFor(fp), fp, sampleRows("same size"));
        in.stored(fp);
        return fp;
    };
    auto aged = [&](const std::string & fp, int hours) {
        fs::last_write_time(cache + "/" + fp + ".parquet", fs::file_time_type::clock::now() - std::chrono::hours(hours));
    };
    auto local = [&](const std::string & fp) { return fs::exists(cache + "/" + fp + ".parquet"); };

    S3ResultStore unlimited(url(), cache);
    auto a = store("a", unlimited);
    auto size = fs::file_size(cache + "/" + a + ".parquet");
    // Room for two copies, not three.
    S3ResultStore limited(url("&prefix=results/&cache-limit=" + std::to_string(size * 5 / 2)), cache);
    auto b = store("b", limited);
    EXPECT_TRUE(local(a) && local(b));
    aged(a, 3);
    aged(b, 2);
    auto c = store("c", limited);
    EXPECT_FALSE(local(a)) << "the least recently used copy stays beyond the limit";
    EXPECT_TRUE(local(b) && local(c));

    // A pruned result is still in the bucket: found, it is downloaded again,
    // and the now least recently used copy goes.
    auto found = limited.find(a);
    ASSERT_TRUE(found);
    EXPECT_EQ(readRows(*found), sampleRows("same size"));
    EXPECT_FALSE(local(b));
    EXPECT_TRUE(local(c));

    // Finding a local copy makes it the most recently used.
    aged(c, 4);
    EXPECT_TRUE(limited.find(c));
    EXPECT_GT(fs::last_write_time(cache + "/" + c + ".parquet"),
              fs::file_time_type::clock::now() - std::chrono::minutes(1));

    // Copies used in the last ten minutes stay even beyond the limit: one
    // may be about to be replayed.
    auto d = store("d", limited);
    EXPECT_TRUE(local(a) && local(c) && local(d));

    for (auto bad : {"abc", "-1", "5T", "", "1M2"})
        EXPECT_THROW(S3ResultStore(url(std::string("&cache-limit=") + bad), cache), std::invalid_argument) << bad;
    EXPECT_NO_THROW(S3ResultStore(url("&cache-limit=512M"), cache));
}

TEST_F(S3Results, DownloadsThroughServerErrors)
{
    S3ResultStore store(url(), dir.path() + "/cache");
    auto fp = fingerprintFor("retried");
    writeResult(store.pathFor(fp), fp, sampleRows("retried"));
    store.stored(fp);

    // The first three answers are 500s with an error document: retried,
    // and none of it ends up in the file.
    Subprocess proxy({"node", FLAKY_PROXY_SCRIPT, std::to_string(s3->port()), "3"});
    auto proxyPort = listeningPort(proxy, "flaky proxy");
    S3ResultStore throughProxy("s3://results?endpoint=http://127.0.0.1:" + std::to_string(proxyPort) + "&prefix=results/",
                               dir.path() + "/cache-proxy");
    auto found = throughProxy.find(fp);
    ASSERT_TRUE(found);
    EXPECT_EQ(readFile(*found), readFile(store.pathFor(fp)));
    EXPECT_EQ(readRows(*found), sampleRows("retried"));
}

TEST_F(S3Results, AWrongSecretFailsClearlyAndKeepsNothing)
{
    auto credentials = dir.write("credentials", "[bad]\naws_access_key_id = S3RVER\naws_secret_access_key = wrong\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", credentials.c_str(), 1);
    S3ResultStore bad(url("&prefix=results/&profile=bad&retries=0"), dir.path() + "/cache");
    auto fp = fingerprintFor("refused");
    writeResult(bad.pathFor(fp), fp, sampleRows("refused"));
    try {
        bad.stored(fp);
        FAIL() << "stored() did not throw";
    } catch (std::exception & e) {
        std::string message = e.what();
        EXPECT_NE(message.find("storing the result in s3://results?"), std::string::npos) << message;
        EXPECT_NE(message.find("HTTP 403"), std::string::npos) << message;
    }
    // The local file is gone with the upload: nothing claims to be stored.
    EXPECT_FALSE(fs::exists(bad.pathFor(fp)));
    EXPECT_EQ(object("results/" + fp + ".parquet").status, 404);
    EXPECT_THROW(bad.find(fingerprintFor("any")), std::runtime_error);
    EXPECT_THROW(bad.recent(10), std::runtime_error);

    S3ResultStore good(url(), dir.path() + "/cache-good");
    EXPECT_FALSE(good.find(fp));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

TEST_F(S3Results, RefusesMalformedUrlsAndAMissingBucket)
{
    auto cache = dir.path() + "/cache";
    EXPECT_THROW(S3ResultStore(url("&prefix=/abs/"), cache), std::invalid_argument);
    EXPECT_THROW(S3ResultStore(url("&prefix=a b"), cache), std::invalid_argument);
    EXPECT_THROW(S3ResultStore(url("&prefix=a/&prefix=b/"), cache), std::invalid_argument);
    EXPECT_THROW(S3ResultStore(url("&nonsense=1"), cache), std::invalid_argument);
    EXPECT_THROW(S3ResultStore("http://results", cache), std::invalid_argument);
    S3ResultStore encoded(url("&prefix=a%2Fb%2F"), cache);
    EXPECT_EQ(encoded.prefix(), "a/b/");

    S3ResultStore missing("s3://no-such-bucket?endpoint=" + s3->endpoint(), cache);
    try {
        missing.find(fingerprintFor("x"));
        FAIL() << "find() in a missing bucket did not throw";
    } catch (std::runtime_error & e) {
        EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos) << e.what();
    }

    // The setting: "" is STATE/results, s3:// the bucket, else a directory.
    EXPECT_EQ(evolive::results::openResultStore("", dir.path())->describe(), dir.path() + "/results");
    EXPECT_EQ(evolive::results::openResultStore(url(), dir.path())->pathFor(fingerprintFor("y")),
              dir.path() + "/results-cache/" + fingerprintFor("y") + ".parquet");
    EXPECT_EQ(evolive::results::openResultStore(dir.path() + "/elsewhere", dir.path())->describe(),
              dir.path() + "/elsewhere");
    EXPECT_THROW(evolive::results::openResultStore("gs://bucket", dir.path()), std::invalid_argument);
}

TEST_F(S3Results, ASecondServerReplaysWhatTheFirstStored)
{
    const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";
    auto results = url();
    auto jobset = fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "3"}, {"spin", "1"}});
    jobset["options"] = {{"workers", 1}};

    std::string fingerprint;
    std::vector<json> firstJobs;
    {
        EvoliveServer server(dir.path() + "/state-1", {"--allow-path", serviceData, "--results", results},
                             goodCredentials);
        auto lines = streamLines(server.url() + "/v1/evaluations", jobset.dump());
        ASSERT_GE(lines.size(), 3u) << server.log();
        ASSERT_EQ(lines.back()["type"], "finished") << lines.back().dump() << "\n" << server.log();
        EXPECT_EQ(lines.back()["cached"], false);
        EXPECT_EQ(lines.back()["jobs"], 3);
        fingerprint = lines.back()["fingerprint"];
        for (auto & l : lines)
            if (l["type"] == "job") firstJobs.push_back(l);
        EXPECT_EQ(lines.back()["result"], dir.path() + "/state-1/results-cache/" + fingerprint + ".parquet");
        EXPECT_FALSE(fs::exists(dir.path() + "/state-1/results"));
        EXPECT_NE(server.log().find("results in " + results), std::string::npos) << server.log();
    }
    auto stored = object("results/" + fingerprint + ".parquet");
    ASSERT_EQ(stored.status, 200);
    EXPECT_EQ(stored.body, readFile(dir.path() + "/state-1/results-cache/" + fingerprint + ".parquet"));

    // A new server, nothing on its disk: the result comes from the bucket.
    EvoliveServer server(dir.path() + "/state-2", {"--allow-path", serviceData, "--results", results}, goodCredentials);
    auto listed = httpRequest("GET", server.url() + "/v1/evaluations").json()["evaluations"];
    ASSERT_EQ(listed.size(), 1u) << listed.dump();
    EXPECT_EQ(listed[0]["fingerprint"], fingerprint);
    EXPECT_EQ(listed[0]["stored"], true);
    EXPECT_EQ(listed[0]["bytes"], stored.body.size());

    auto lines = streamLines(server.url() + "/v1/evaluations", jobset.dump());
    ASSERT_GE(lines.size(), 3u) << server.log();
    EXPECT_EQ(lines[1]["type"], "started");
    EXPECT_EQ(lines[1]["cached"], true);
    EXPECT_EQ(lines[1]["fingerprint"], fingerprint);
    EXPECT_EQ(lines.back()["type"], "finished");
    EXPECT_EQ(lines.back()["cached"], true);
    std::vector<json> jobs;
    for (auto & l : lines)
        if (l["type"] == "job") jobs.push_back(l);
    EXPECT_EQ(jobs, firstJobs);
    EXPECT_EQ(readFile(dir.path() + "/state-2/results-cache/" + fingerprint + ".parquet"), stored.body);

    auto status = httpRequest("GET", server.url() + "/v1/evaluations/" + fingerprint).json();
    EXPECT_EQ(status["stored"], true);
    EXPECT_EQ(status["rows"], 3);

    // A server whose credentials the bucket refuses does not start, and
    // says why.
    auto refused = runCommand({EVOLIVE_BINARY, "serve", "--listen", "127.0.0.1:0", "--state-dir",
                               dir.path() + "/state-3", "--results", results},
                              {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "wrong"}});
    EXPECT_EQ(refused.exitCode, 1);
    EXPECT_NE(refused.err.find("results: cannot list " + results), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("HTTP 403"), std::string::npos) << refused.err;
    // Nor does one whose bucket does not exist.
    auto missing = runCommand({EVOLIVE_BINARY, "serve", "--listen", "127.0.0.1:0", "--state-dir",
                               dir.path() + "/state-4", "--results", "s3://no-such-bucket?endpoint=" + s3->endpoint()},
                              goodCredentials);
    EXPECT_EQ(missing.exitCode, 1);
    EXPECT_NE(missing.err.find("NoSuchBucket"), std::string::npos) << missing.err;
}
