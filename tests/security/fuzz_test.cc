// A bounded fuzz test: a few thousand mutations of valid requests (raw
// HTTP, WebSocket upgrades with frames after them) and of valid push
// messages, against a real `evolive serve`. After every batch the server
// must still answer /healthz, and every connection must be closed by the
// server once the client has sent all it will send. Deterministic: the
// seed is fixed (EVOLIVE_FUZZ_SEED overrides it) and printed on failure
// with the case that failed.
#include "push_client.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <deque>
#include <gtest/gtest.h>
#include <memory>
#include <optional>
#include <random>
#include <sys/socket.h>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

class Mutator
{
public:
    explicit Mutator(uint32_t seed) : random_(seed) {}

    size_t below(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(random_); }

    std::string mutate(std::string s)
    {
        static const std::vector<std::string> tokens{
            "\r\n", "\r\n\r\n", "{", "}", "[", "]", "\"", "\\", "\\u0000", ":", ",", "%00", "..", "/", "0",
            "-1", "99999999999999999999", "\xff", "\xc3\x28", "Transfer-Encoding: chunked\r\n",
            "Content-Length: 99999999\r\n", "Content-Length: 5\r\n", "Expect: 100-continue\r\n",
            "Connection: keep-alive\r\n", "Connection: close\r\n", "Upgrade: websocket\r\n",
            "Content-Type: application/json\r\n", "Host: evil.example\r\n", "Origin: http://evil.example\r\n",
            " HTTP/1.0", "\t", " ", "\"type\":\"git\"", "\"type\":\"json\"", "\"value\":", "null", "true", "1e999"};
        size_t edits = 1 + below(4);
        for (size_t e = 0; e < edits; ++e) {
            size_t at = below(s.size() + 1);
            switch (below(9)) {
            case 0: // flip a bit
                if (!s.empty()) s[below(s.size())] ^= char(1 << below(8));
                break;
            case 1: // a random byte
                s.insert(s.begin() + at, char(below(256)));
                break;
            case 2: // delete a range
                if (at < s.size()) s.erase(at, 1 + below(std::min<size_t>(s.size() - at, 64)));
                break;
            case 3: { // repeat a range
                if (at >= s.size()) break;
                auto piece = s.substr(at, 1 + below(32));
                for (size_t n = 1 + below(64); n > 0; --n) s.insert(at, piece);
                break;
            }
            case 4: s.insert(at, tokens[below(tokens.size())]); break;
            case 5: s.resize(at); break; // cut short
            case 7: { // a range repeated into something large (a header, a trailer, a body)
                if (at >= s.size()) break;
                auto piece = s.substr(at, 1 + below(16));
                std::string grown;
                for (size_t n = 1 + below(100000 / piece.size()); n > 0; --n) grown += piece;
                s.insert(at, grown);
                break;
            }
            case 8: { // brackets nested deep around a part
                size_t depth = 1 + below(100000), end = at + below(s.size() - at + 1);
                bool object = below(2);
                s.insert(end, object ? std::string(depth, '}') : std::string(depth, ']'));
                std::string open;
                for (size_t n = 0; n < depth; ++n) open += object ? "{\"a\":" : "[";
                s.insert(at, open);
                break;
            }
            case 6: // a digit becomes a large number
                for (size_t i = at; i < s.size(); ++i)
                    if (isdigit((unsigned char) s[i])) {
                        s.replace(i, 1, std::to_string(random_()) + std::to_string(random_()));
                        break;
                    }
                break;
            }
        }
        return s;
    }

private:
    std::mt19937 random_;
};

// A valid request taken apart, so that its JSON body and its header
// fields can be mutated as such before the bytes are.
struct Seed
{
    std::string method, target, headers; // headers: "Name: value\r\n" each
    std::optional<json> body;
    bool chunked = false;
    std::string after; // sent after the request (frames, a second request)
};

// Some node of `value`, chosen at random (the root too).
json & someNode(json & value, Mutator & m)
{
    json * node = &value;
    while (node->is_structured() && !node->empty() && m.below(3) != 0) {
        auto it = node->begin();
        std::advance(it, m.below(node->size()));
        node = &*it;
    }
    return *node;
}

// Structural mutations of a JSON document: a value replaced by something
// hostile (deep nesting, long strings, odd types).
void mutateJson(json & document, Mutator & m)
{
    auto & node = someNode(document, m);
    switch (m.below(6)) {
    case 0: { // deep nesting, as text (never built as a value here)
        auto depth = 1 + m.below(100000);
        node = "\x01NESTED" + std::to_string(depth) + (m.below(2) ? "[" : "{");
        break;
    }
    case 1: node = std::string(1 + m.below(2 << 20), "a/\\\"\x01"[m.below(5)]); break;
    case 2: node = m.below(2) ? json(1e308) : json(-1); break;
    case 3: node = nullptr; break;
    case 4: node = json::array({node, node}); break;
    case 5: node = json::object({{"type", "json"}, {"value", node}}); break;
    }
}

// The document as text, with deep nesting spliced in where mutateJson
// marked it.
std::string render(const json & document)
{
    auto text = document.dump(-1, ' ', false, json::error_handler_t::replace);
    for (size_t at; (at = text.find("\"\\u0001NESTED")) != std::string::npos;) {
        auto end = text.find('"', at + 1);
        auto marker = text.substr(at + 13, end - at - 13);
        size_t depth = std::stoul(marker);
        bool array = marker.back() == '[';
        std::string deep;
        for (size_t i = 0; i < depth; ++i) deep += array ? "[" : "{\"a\":";
        deep += array ? "" : "1";
        for (size_t i = 0; i < depth; ++i) deep += array ? "]" : "}";
        text.replace(at, end - at + 1, deep);
    }
    return text;
}

std::string build(const std::string & url, Seed seed, Mutator & m, bool structural)
{
    if (structural) {
        if (seed.body && m.below(2)) mutateJson(*seed.body, m);
        else if (m.below(2)) seed.headers += "X-Big: " + std::string(m.below(100000), 'h') + "\r\n";
    }
    std::string body = seed.body ? render(*seed.body) : "";
    std::string r = seed.method + " " + seed.target + " HTTP/1.1\r\nHost: " + hostPort(url) + "\r\n" + seed.headers;
    if (seed.body) r += "Content-Type: application/json\r\n";
    if (seed.chunked) {
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", body.size());
        std::string trailer = "X-Trailer: " + std::string(structural && m.below(2) ? m.below(100000) : 1, 't');
        r += "Transfer-Encoding: chunked\r\n\r\n" + std::string(body.empty() ? "" : size + body + "\r\n") + "0\r\n" +
             trailer + "\r\n\r\n";
    } else {
        if (seed.body) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        r += "\r\n" + body;
    }
    return r + seed.after;
}

// A masked WebSocket text frame, as a client sends it.
std::string frame(const std::string & payload)
{
    std::string f;
    f += char(0x81);
    if (payload.size() < 126) f += char(0x80 | payload.size());
    else {
        f += char(0x80 | 126);
        f += char(payload.size() >> 8);
        f += char(payload.size() & 0xff);
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    f.append(mask, 4);
    for (size_t i = 0; i < payload.size(); ++i) f += char(payload[i] ^ mask[i % 4]);
    return f;
}

// Sends `data`, says it is all, and reads until the server closes. False
// when the server keeps the connection open for `timeout` after that.
bool exchange(const std::string & url, const std::string & data, std::chrono::milliseconds timeout)
{
    int fd = connectTo(url);
    try {
        sendAll(fd, data);
    } catch (std::exception &) {
        // Closed by the server before it took everything: fine.
    }
    ::shutdown(fd, SHUT_WR);
    bool closed = false;
    readAll(fd, timeout, &closed);
    ::close(fd);
    return closed;
}

} // namespace

TEST(Fuzz, MutatedRequestsAndPushMessagesNeverStopTheService)
{
    uint32_t seed = getenv("EVOLIVE_FUZZ_SEED") ? std::stoul(getenv("EVOLIVE_FUZZ_SEED")) : 20261202;
    SCOPED_TRACE("EVOLIVE_FUZZ_SEED=" + std::to_string(seed));
    Mutator mutator(seed);
    TempDir dir;
    EvoliveServer server(dir.path() + "/state");
    auto url = server.url();
    auto fingerprint = std::string(64, 'a');

    // Valid requests of every kind. The jobsets' inputs cannot be fetched
    // (a repository that does not exist, a path outside allowed-paths), so
    // whatever the mutations make of them, nothing is evaluated.
    json jobset{{"inputs",
                 {{"src", {{"type", "git"}, {"url", "git+file:///nonexistent/repo?ref=main"}}},
                  {"local", {{"type", "path"}, {"path", "/nonexistent"}}},
                  {"value", {{"type", "json"}, {"value", {{"a", {1, 2, {{"b", nullptr}}}}}}}},
                  {"text", {{"type", "string"}, {"value", "x"}}},
                  {"flag", {{"type", "boolean"}, {"value", true}}},
                  {"expr", {{"type", "nix"}, {"value", "{ a = 1; }"}}}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}},
                {"options", {{"workers", 1}, {"meta", true}}},
                {"force", true}};
    std::string upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    std::vector<Seed> seeds{
        {"GET", "/healthz"},
        {"GET", "/healthz", "", std::nullopt, true},
        {"GET", "/metrics"},
        {"GET", "/v1/evaluations?limit=5"},
        {"GET", "/v1/evaluations/" + fingerprint},
        {"GET", "/v1/evaluations/" + fingerprint + "/jobs"},
        {"GET", "/v1/evaluations/" + fingerprint + "/log?tail=100", "Range: bytes=0-10\r\n"},
        {"DELETE", "/v1/evaluations/" + fingerprint},
        {"POST", "/v1/evaluations", "", jobset},
        {"POST", "/v1/evaluations", "", jobset, true},
        {"GET", "/healthz", "", std::nullopt, false, "GET /metrics HTTP/1.1\r\nHost: " + hostPort(url) + "\r\n\r\n"},
        {"GET", "/v1/push", upgrade, std::nullopt, false, frame("{\"drv\":\"/nix/store/x.drv\",\"id\":1}")},
    };
    std::vector<json> messages{
        {{"drv", "/nix/store/" + std::string(32, '0') + "-x.drv"}, {"id", 1}},
        {{"drv", "/nix/store/" + std::string(32, '1') + "-y.drv"}, {"id", "text"}},
        {{"drv", "/nix/store/" + std::string(32, '2') + "-z.drv"}},
    };

    const int batches = 10, requestsPerBatch = 300, messagesPerBatch = 100;
    std::deque<std::string> previous;
    for (int batch = 0; batch < batches; ++batch) {
        for (int i = 0; i < requestsPerBatch; ++i) {
            // Half of the cases get a structural mutation, most get bytes
            // changed too.
            auto text = build(url, seeds[mutator.below(seeds.size())], mutator, mutator.below(2));
            auto mutated = mutator.below(5) ? mutator.mutate(text) : text;
            bool closed = false;
            try {
                closed = exchange(url, mutated, std::chrono::seconds(10));
            } catch (std::exception & e) {
                // The process may take a moment to die: the culprit is one
                // of the last few.
                std::string last;
                for (auto & r : previous) last += r.substr(0, 1000) + "\n----\n";
                FAIL() << e.what() << ", after these requests:\n" << last << server.log().substr(0, 4000);
            }
            ASSERT_TRUE(closed) << "the server kept the connection open after this request:\n" << mutated.substr(0, 2000);
            previous.push_back(std::move(mutated));
            if (previous.size() > 3) previous.pop_front();
        }
        auto client = std::make_unique<PushClient>(url);
        for (int i = 0; i < messagesPerBatch; ++i) {
            auto message = messages[mutator.below(messages.size())];
            if (mutator.below(2)) mutateJson(message, mutator);
            auto text = render(message);
            auto mutated = mutator.below(2) ? mutator.mutate(text) : text;
            try {
                client->socket().binary(mutator.below(10) == 0);
                client->socket().write(boost::asio::buffer(mutated));
                boost::beast::flat_buffer buffer;
                client->socket().read(buffer);
                auto answer = json::parse(boost::beast::buffers_to_string(buffer.data()), nullptr, false);
                ASSERT_TRUE(answer.is_object()) << "not a JSON answer to: " << mutated;
                ASSERT_TRUE(answer.contains("error") || answer.contains("uploaded")) << answer << " for " << mutated;
            } catch (boost::system::system_error & e) {
                // The server may close a socket for a frame it must refuse
                // (invalid UTF-8 in a text frame): open another.
                client = std::make_unique<PushClient>(url);
            }
        }
        auto health = httpRequest("GET", url + "/healthz");
        ASSERT_EQ(health.status, 200) << "after batch " << batch << ":\n" << server.log().substr(0, 4000);
    }
    EXPECT_EQ(server.log().find("terminate called"), std::string::npos);
}
