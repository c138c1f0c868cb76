#include "config.hh"

#include "redis_connection.hh"

#include "evaluation.hh"
#include "evaluator_environment.hh"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <toml++/toml.h>

namespace evolive::server {

namespace {

std::string where(const std::string & path, const toml::node & node)
{
    return path + ":" + std::to_string(node.source().begin.line);
}

// Reads the table's keys through `read`, refusing any key it does not know.
struct TableReader
{
    const std::string & file;
    const toml::table & table;
    std::string prefix;
    std::set<std::string> known;

    const toml::node * get(const std::string & key)
    {
        known.insert(key);
        return table.get(key);
    }

    [[noreturn]] void wrong(const std::string & key, const toml::node & node, const std::string & want)
    {
        throw ConfigError(where(file, node) + ": " + prefix + key + " must be " + want);
    }

    void string(const std::string & key, std::string & out)
    {
        if (auto * n = get(key)) {
            if (!n->is_string()) wrong(key, *n, "a string");
            out = **n->as_string();
        }
    }

    void boolean(const std::string & key, bool & out)
    {
        if (auto * n = get(key)) {
            if (!n->is_boolean()) wrong(key, *n, "true or false");
            out = **n->as_boolean();
        }
    }

    void count(const std::string & key, size_t & out, bool zeroAllowed = false)
    {
        if (auto * n = get(key)) {
            if (!n->is_integer() || **n->as_integer() < (zeroAllowed ? 0 : 1))
                wrong(key, *n, zeroAllowed ? "a whole number >= 0" : "a whole number >= 1");
            out = **n->as_integer();
        }
    }

    void seconds(const std::string & key, std::chrono::seconds & out)
    {
        size_t n = out.count();
        count(key, n);
        out = std::chrono::seconds(n);
    }

    void strings(const std::string & key, std::vector<std::string> & out)
    {
        if (auto * n = get(key)) {
            auto * array = n->as_array();
            if (!array) wrong(key, *n, "an array of strings");
            out.clear();
            for (auto & item : *array) {
                if (!item.is_string()) wrong(key, item, "an array of strings");
                out.push_back(**item.as_string());
            }
        }
    }

    void refuseUnknown()
    {
        for (auto & [key, node] : table)
            if (!known.count(std::string(key.str())))
                throw ConfigError(where(file, node) + ": unknown setting '" + prefix + std::string(key.str()) + "'");
    }
};

// toml++ limits how deep arrays and inline tables nest, but not dotted
// keys: `a.a.a...` 300,000 parts deep overflows its stack. Every part
// after the first is a dot outside strings and comments, so a line with
// more dots than any configuration needs is refused before parsing.
// (Floats would have dots too, but no setting is a float.)
void refuseDeepKeys(const std::string & path, const std::string & text)
{
    constexpr size_t maxDots = 32;
    size_t line = 1, dots = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (ch == '\n') {
            ++line;
            dots = 0;
        } else if (ch == '#') {
            while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
        } else if (ch == '"' || ch == '\'') {
            // A string (basic or literal, on one line or multi-line): skip it.
            bool multi = text.compare(i, 3, std::string(3, ch)) == 0;
            std::string close = multi ? std::string(3, ch) : std::string(1, ch);
            size_t j = i + close.size();
            while (j < text.size() && text.compare(j, close.size(), close) != 0) {
                if (ch == '"' && text[j] == '\\') ++j; // an escape, in basic strings only
                if (j < text.size() && text[j] == '\n') ++line;
                ++j;
            }
            i = std::min(j + close.size(), text.size()) - 1;
        } else if (ch == '.' && ++dots > maxDots) {
            throw ConfigError(path + ":" + std::to_string(line) + ": a key of more than " + std::to_string(maxDots + 1) +
                              " parts (or more than " + std::to_string(maxDots) + " dots on one line) is refused");
        }
    }
}

} // namespace

void loadConfigFile(const std::string & path, ServerConfig & c)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path + ": cannot be read");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    refuseDeepKeys(path, text);
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error & e) {
        throw ConfigError(path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
    }
    TableReader r{path, root};
    r.string("listen", c.listen);
    r.string("state-dir", c.stateDir);
    r.strings("tokens", c.tokens);
    r.count("concurrency", c.concurrency);
    r.count("max-workers", c.maxWorkers, true);
    r.count("max-request-bytes", c.maxRequestBytes);
    r.count("max-connections", c.maxConnections);
    r.count("max-connections-per-client", c.maxConnectionsPerClient);
    r.count("max-websockets", c.maxWebSockets);
    r.seconds("header-timeout", c.headerTimeout);
    r.seconds("read-timeout", c.readTimeout);
    r.seconds("write-timeout", c.writeTimeout);
    r.seconds("websocket-ping-timeout", c.webSocketPingTimeout);
    r.seconds("websocket-idle-timeout", c.webSocketIdleTimeout);
    r.seconds("git-timeout", c.gitTimeout);
    r.strings("allowed-paths", c.allowedPaths);
    r.strings("allowed-hosts", c.allowedHosts);
    r.strings("allowed-origins", c.allowedOrigins);
    r.count("keep-evaluations", c.keepEvaluations);
    r.string("results", c.results);
    r.boolean("restrict-eval", c.restrictions.restrictEval);
    r.strings("allowed-uris", c.restrictions.allowedUris);
    r.boolean("allow-import-from-derivation", c.restrictions.importFromDerivation);
    r.strings("evaluator-env", c.restrictions.evaluatorEnv);
    r.string("evaluator-dir", c.evaluatorDir);
    if (auto * node = r.get("push")) {
        auto * table = node->as_table();
        if (!table) r.wrong("push", *node, "a table");
        TableReader p{path, *table, "push."};
        p.string("cache", c.push.cache);
        p.string("key", c.push.keyFile);
        p.string("compression", c.push.compression);
        p.string("redis", c.push.redis);
        p.string("daemon-socket", c.push.daemonSocket);
        p.string("store-root", c.push.storeRoot);
        p.count("uploads", c.push.uploads, true);
        p.count("closures", c.push.closures);
        p.count("checks", c.push.checks);
        p.refuseUnknown();
    }
    if (auto * node = r.get("fleet")) {
        auto * table = node->as_table();
        if (!table) r.wrong("fleet", *node, "a table");
        TableReader f{path, *table, "fleet."};
        f.string("redis", c.fleet.redis);
        f.count("chunk-size", c.fleet.chunkSize);
        f.count("max-machines", c.fleet.maxMachines, true);
        auto claimTimeout = std::chrono::duration_cast<std::chrono::seconds>(c.fleet.claimTimeout);
        f.seconds("claim-timeout", claimTimeout);
        c.fleet.claimTimeout = claimTimeout;
        f.count("max-attempts", c.fleet.maxAttempts);
        size_t chunkTimeout = c.fleet.chunkTimeout.count();
        f.count("chunk-timeout", chunkTimeout, true);
        c.fleet.chunkTimeout = std::chrono::seconds(chunkTimeout);
        f.refuseUnknown();
    }
    r.refuseUnknown();
}

void finishConfig(ServerConfig & c)
{
    if (c.stateDir.empty()) c.stateDir = defaultStateDir();
    c.stateDir = std::filesystem::absolute(c.stateDir);
    if (c.maxWorkers == 0) c.maxWorkers = std::max(1u, std::thread::hardware_concurrency());
    if (c.push.cache.empty()) c.push.cache = c.stateDir + "/binary-cache";
    if (!c.fleet.redis.empty()) {
        try {
            fleet::checkRedisUrl(c.fleet.redis);
        } catch (std::invalid_argument & e) {
            throw ConfigError(std::string("fleet.redis: ") + e.what());
        }
        if (c.fleet.claimTimeout.count() <= 0) throw ConfigError("fleet.claim-timeout must be at least 1 (seconds)");
        // In milliseconds on Redis: a bound keeps it from wrapping there.
        if (c.fleet.chunkTimeout.count() < 0 || c.fleet.chunkTimeout > std::chrono::days(30))
            throw ConfigError("fleet.chunk-timeout must be between 0 (no limit) and 2592000 seconds (30 days)");
    }
    for (auto & token : c.tokens)
        if (token.size() < 16) throw ConfigError("tokens: a token must have at least 16 characters");
    for (auto & dir : c.allowedPaths) {
        std::error_code ec;
        auto canonical = std::filesystem::canonical(dir, ec);
        if (ec) throw ConfigError("allowed-paths: '" + dir + "': " + ec.message());
        dir = canonical;
    }
    try {
        c.evaluatorDir = evaluatorDirFor(c.evaluatorDir);
    } catch (JobsetError & e) {
        throw ConfigError(std::string("evaluator-dir: ") + e.what());
    }
    try {
        checkRestrictions(c.restrictions);
    } catch (JobsetError & e) {
        throw ConfigError(e.what());
    }
    if (c.push.compression != "zstd" && c.push.compression != "xz" && c.push.compression != "none")
        throw ConfigError("push.compression must be zstd, xz or none");
    try {
        cache::BinaryCacheUrl::parse(c.push.cache); // refused parameters stop the server at once
    } catch (std::invalid_argument & e) {
        throw ConfigError(std::string("push.cache: ") + e.what());
    }
    // Host names and origins compare without case, as browsers send them.
    auto lower = [](std::string & s) { std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); }); };
    for (auto & host : c.allowedHosts) {
        lower(host);
        if (host.empty() || host.find_first_of("/@ \t,") != std::string::npos)
            throw ConfigError("allowed-hosts: '" + host + "' is not a host name (HOST or HOST:PORT)");
    }
    for (auto & origin : c.allowedOrigins) {
        lower(origin);
        auto scheme = origin.find("://");
        if ((origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) || origin.size() == scheme + 3 ||
            origin.find_first_of("/?#@ ", scheme + 3) != std::string::npos)
            throw ConfigError("allowed-origins: '" + origin + "' is not an origin (http://HOST[:PORT] or https://HOST[:PORT])");
    }
}

} // namespace evolive::server
