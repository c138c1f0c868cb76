// Bounded resources: what the status and list endpoints return, the log
// (streamed from disk, with a tail or a range), connection slots (a header
// timeout, a cap per client address, WebSockets with timeouts and a cap of
// their own, the open-file limit, running out of descriptors), and a
// cancelled evaluation's log agreeing with its status.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <memory>
#include <thread>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string serviceData = EVOLIVE_TEST_DATA_DIR "/service";

// The server's peak resident memory so far, in KiB.
long peakMemoryKiB(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

std::string get(const std::string & url, const std::string & target, const std::string & headers = "")
{
    return "GET " + target + " HTTP/1.1\r\nHost: " + hostPort(url) + "\r\nConnection: close\r\n" + headers + "\r\n";
}

// The value of a response header (case-sensitive name as the server writes it).
std::string header(const std::string & response, const std::string & name)
{
    auto end = response.find("\r\n\r\n");
    auto at = response.find("\r\n" + name + ": ");
    if (at == std::string::npos || at > end) return "";
    at += name.size() + 4;
    return response.substr(at, response.find("\r\n", at) - at);
}

std::string body(const std::string & response)
{
    auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? "" : response.substr(end + 4);
}

// A stand-in for nix-eval-jobs that writes `lines` lines of `bytes`
// bytes to stderr and fails: its failure message is the log's tail.
std::string noisyEvaluator(const TempDir & dir, int lines, int bytes)
{
    fs::create_directories(dir.path() + "/bin");
    auto fake = dir.write("bin/nix-eval-jobs", "#!/bin/sh\nfor i in $(seq " + std::to_string(lines) + "); do head -c " +
                                                   std::to_string(bytes) + " /dev/zero | tr '\\0' x >&2; echo >&2; done\n"
                                                   "echo 'the last line' >&2\nexit 1\n");
    fs::permissions(fake, fs::perms::owner_all);
    return dir.path() + "/bin:" + std::string(getenv("PATH"));
}

} // namespace

TEST(Resources, StatusAndListAnswersAreBounded)
{
    TempDir dir;
    // 20 lines of 1 MiB each: the failure message held 20 MiB.
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData}, {{"PATH", noisyEvaluator(dir, 20, 1 << 20)}});
    auto url = server.url() + "/v1/evaluations";
    auto jobset = fileJobset(serviceData, "slow.nix", {{"salt", freshSalt()}, {"n", "1"}, {"spin", "1"}});
    jobset["options"] = {{"evaluator", "nix-eval-jobs"}};
    auto lines = streamLines(url, jobset.dump());
    ASSERT_FALSE(lines.empty());
    ASSERT_EQ(lines.back()["type"], "failed");
    auto fingerprint = lines.back()["fingerprint"].get<std::string>();

    auto status = httpRequest("GET", url + "/" + fingerprint);
    EXPECT_EQ(status.status, 200);
    EXPECT_LT(status.body.size(), 64u << 10);
    auto message = status.json()["message"].get<std::string>();
    // The end of the message is kept: it says what happened last.
    EXPECT_NE(message.find("the last line"), std::string::npos) << message.substr(0, 200);
    // Cut where it is made (the log's tail, "[...]") or, for a message stored
    // by an older server, where it is answered ("[N bytes left out]").
    EXPECT_LE(message.size(), 16u << 10);
    EXPECT_TRUE(message.find("[...]") != std::string::npos || message.find("bytes left out") != std::string::npos)
        << message.substr(0, 200);
    auto list = httpRequest("GET", url);
    EXPECT_EQ(list.status, 200);
    EXPECT_LT(list.body.size(), 64u << 10);
    EXPECT_EQ(list.json()["evaluations"][0]["fingerprint"], fingerprint);
    // The log still has all of it.
    EXPECT_GT(fs::file_size(dir.path() + "/state/logs/" + fingerprint + ".log"), 20u << 20);
}

TEST(Resources, TheLogIsStreamedFromDiskWithATailOrARange)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto fingerprint = std::string(64, 'c');
    auto target = "/v1/evaluations/" + fingerprint + "/log";
    fs::create_directories(dir.path() + "/state/logs");
    auto logFile = dir.path() + "/state/logs/" + fingerprint + ".log";
    const size_t size = 64u << 20;
    {
        std::ofstream out(logFile, std::ios::binary);
        std::string line = std::string(99, 'l') + "\n";
        for (size_t written = 0; written < size; written += line.size()) out << line;
    }
    fs::resize_file(logFile, size);
    {
        std::fstream out(logFile, std::ios::in | std::ios::out | std::ios::binary);
        out.seekp(size - 10);
        out << "0123456789";
    }
    ASSERT_EQ(fs::file_size(logFile), size);

    auto before = peakMemoryKiB(server.pid());
    auto whole = rawRequest(server.url(), get(server.url(), target), std::chrono::seconds(30));
    EXPECT_EQ(whole.status(), 200);
    EXPECT_EQ(header(whole.response, "Content-Length"), std::to_string(size));
    EXPECT_EQ(header(whole.response, "Accept-Ranges"), "bytes");
    EXPECT_EQ(body(whole.response).size(), size);
    // Streamed from the file, not read into memory first.
    EXPECT_LT(peakMemoryKiB(server.pid()) - before, 16 << 10) << "the server's peak memory grew by more than 16 MiB";

    auto tail = rawRequest(server.url(), get(server.url(), target + "?tail=10"));
    EXPECT_EQ(tail.status(), 200);
    EXPECT_EQ(body(tail.response), "0123456789");
    auto range = rawRequest(server.url(), get(server.url(), target, "Range: bytes=100-109\r\n"));
    EXPECT_EQ(range.status(), 206);
    EXPECT_EQ(header(range.response, "Content-Range"), "bytes 100-109/" + std::to_string(size));
    EXPECT_EQ(body(range.response), std::string(9, 'l') + "l");
    auto suffix = rawRequest(server.url(), get(server.url(), target, "Range: bytes=-4\r\n"));
    EXPECT_EQ(suffix.status(), 206);
    EXPECT_EQ(body(suffix.response), "6789");
    auto open = rawRequest(server.url(), get(server.url(), target, "Range: bytes=" + std::to_string(size - 3) + "-\r\n"));
    EXPECT_EQ(open.status(), 206);
    EXPECT_EQ(body(open.response), "789");
    auto beyond = rawRequest(server.url(), get(server.url(), target, "Range: bytes=" + std::to_string(size) + "-\r\n"));
    EXPECT_EQ(beyond.status(), 416);
    EXPECT_EQ(header(beyond.response, "Content-Range"), "bytes */" + std::to_string(size));
    auto bad = rawRequest(server.url(), get(server.url(), target + "?tail=lots"));
    EXPECT_EQ(bad.status(), 400) << bad.response;
}

TEST(Resources, IdleConnectionsFromOneAddressDoNotLockOthersOut)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    // More idle sockets than max-connections (256), all from 127.0.0.1.
    std::vector<int> idle;
    for (int i = 0; i < 300; ++i) idle.push_back(connectTo(server.url()));
    // Another address is served at once.
    int other = connectTo(server.url(), 0, "127.0.0.2");
    sendAll(other, get(server.url(), "/healthz"));
    auto answer = readAll(other, std::chrono::seconds(10));
    close(other);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
    // The address over its cap is told why (at once: it need not send).
    int over = connectTo(server.url());
    auto refused = readAll(over, std::chrono::seconds(10));
    close(over);
    EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
    EXPECT_NE(refused.find("max-connections-per-client"), std::string::npos) << refused;
    for (int fd : idle) close(fd);
    EXPECT_TRUE(eventually([&] { return rawRequest(server.url(), get(server.url(), "/healthz")).status() == 200; },
                           std::chrono::seconds(20)));
}

TEST(Resources, ConnectionsThatSendNoRequestAreDroppedAfterTheHeaderTimeout)
{
    TempDir dir;
    auto config = dir.write("evolive.toml", "header-timeout = 1\nread-timeout = 30\n");
    EvoliveServer server(dir.path() + "/state", {"--config", config});
    auto started = std::chrono::steady_clock::now();
    int silent = connectTo(server.url());
    int partial = connectTo(server.url());
    sendAll(partial, "GET /healthz HTTP/1.1\r\n");
    int kept = connectTo(server.url());
    sendAll(kept, "GET /healthz HTTP/1.1\r\nHost: " + hostPort(server.url()) + "\r\n\r\n");
    for (int fd : {silent, partial, kept}) {
        bool closed = false;
        auto text = readAll(fd, std::chrono::seconds(20), &closed);
        EXPECT_TRUE(closed);
        if (fd == kept) {
            EXPECT_EQ(text.rfind("HTTP/1.1 200", 0), 0u) << text; // answered, then idle
        }
        close(fd);
    }
    // Well before read-timeout.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

TEST(Resources, WebSocketsHaveACapAndTimeoutsOfTheirOwn)
{
    TempDir dir;
    {
        auto config = dir.write("cap.toml", "max-websockets = 2\nwebsocket-ping-timeout = 2\nwebsocket-idle-timeout = 600\n");
        EvoliveServer server(dir.path() + "/cap", {"--config", config});
        auto first = std::make_unique<PushClient>(server.url());
        auto second = std::make_unique<PushClient>(server.url());
        try {
            PushClient third(server.url());
            ADD_FAILURE() << "a third WebSocket was accepted over max-websockets = 2";
        } catch (boost::system::system_error & e) {
        }
        // Plain requests are still served, and closed sockets free their places.
        EXPECT_EQ(httpRequest("GET", server.url() + "/healthz").status, 200);
        first.reset();
        second.reset();
        EXPECT_TRUE(eventually([&] {
            try {
                PushClient again(server.url());
                return true;
            } catch (boost::system::system_error &) {
                return false;
            }
        }));

        // A peer that never answers pings is dropped after the ping timeout,
        // while one that answers them (reading all the while) stays.
        PushClient answering(server.url());
        int mute = connectTo(server.url());
        sendAll(mute, "GET /v1/push HTTP/1.1\r\nHost: " + hostPort(server.url()) +
                          "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        EXPECT_TRUE(answering.staysOpenFor(std::chrono::seconds(5))) << "a WebSocket that answers pings was closed";
        bool closed = false;
        readAll(mute, std::chrono::seconds(20), &closed);
        close(mute);
        EXPECT_TRUE(closed) << "a WebSocket that answers no ping stayed open";
    }
    {
        auto config = dir.write("idle.toml", "websocket-idle-timeout = 2\n");
        EvoliveServer server(dir.path() + "/idle", {"--config", config});
        PushClient client(server.url());
        EXPECT_NE(client.push("/etc/passwd")["error"].get<std::string>().find("not in the Nix store"), std::string::npos);
        // It answers pings, but sends no message: closed after the idle timeout.
        auto started = std::chrono::steady_clock::now();
        EXPECT_TRUE(client.closedByServer());
        EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
    }
}

TEST(Resources, TheOpenFileLimitIsRaisedAtStart)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {}, {}, {"prlimit", "--nofile=256:8192", "--"});
    auto limits = readFile("/proc/" + std::to_string(server.pid()) + "/limits");
    auto line = limits.substr(limits.find("Max open files"));
    line = line.substr(0, line.find('\n'));
    EXPECT_NE(line.find("8192                 8192"), std::string::npos) << line;
}

TEST(Resources, RunningOutOfFileDescriptorsGetsAnAnswerNotAHang)
{
    TempDir dir;
    auto config = dir.write("evolive.toml", "header-timeout = 3\nmax-connections = 10000\nmax-connections-per-client = 10000\n");
    EvoliveServer server(dir.path() + "/state", {"--config", config}, {}, {"prlimit", "--nofile=64:64", "--"});
    std::vector<int> idle;
    for (int i = 0; i < 100; ++i) idle.push_back(connectTo(server.url()));
    // Descriptors are exhausted now: a request gets an answer (503), not
    // silence, and the server lives.
    auto exchange = rawRequest(server.url(), get(server.url(), "/healthz"), std::chrono::seconds(2));
    EXPECT_TRUE(exchange.status() == 503 || exchange.status() == 200) << "no answer: " << exchange.response;
    // Once the idle ones are gone, everything is served again.
    for (int fd : idle) close(fd);
    EXPECT_TRUE(eventually([&] { return rawRequest(server.url(), get(server.url(), "/healthz")).status() == 200; },
                           std::chrono::seconds(30)))
        << server.log().substr(0, 3000);
}

TEST(Resources, ACancelledEvaluationsLogAndStatusAgree)
{
    TempDir dir;
    EvoliveServer server(dir.path() + "/state", {"--allow-path", serviceData});
    auto url = server.url() + "/v1/evaluations";
    auto slow = [&](const std::string & salt) {
        auto j = fileJobset(serviceData, "slow.nix", {{"salt", salt}, {"n", "1000"}, {"spin", "1000000"}});
        j["options"] = {{"workers", 1}};
        return j;
    };
    // A runs; B waits behind it. Both are cancelled.
    std::string running, waiting;
    std::thread a([&] {
        streamLines(url, slow(freshSalt()).dump(), [&](const json & line) {
            if (line["type"] == "started") running = line["fingerprint"];
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] { return !running.empty(); }));
    std::thread b([&] {
        streamLines(url, slow(freshSalt()).dump(), [&](const json & line) {
            if (line["type"] == "queued") waiting = line["fingerprint"];
            return true;
        });
    });
    ASSERT_TRUE(eventually([&] { return !waiting.empty(); }));
    EXPECT_EQ(httpRequest("DELETE", url + "/" + waiting).status, 202);
    EXPECT_EQ(httpRequest("DELETE", url + "/" + running).status, 202);
    a.join();
    b.join();
    for (auto & fingerprint : {running, waiting}) {
        SCOPED_TRACE(fingerprint);
        EXPECT_EQ(httpRequest("GET", url + "/" + fingerprint).json()["status"], "cancelled");
        auto log = httpRequest("GET", url + "/" + fingerprint + "/log");
        ASSERT_EQ(log.status, 200) << log.body;
        auto last = log.body.substr(log.body.rfind('\n', log.body.size() - 2) + 1);
        EXPECT_EQ(last.rfind("evolive: cancelled", 0), 0u) << last;
    }
}
