#include "config.hh"

#include "evaluation.hh"
#include "evaluator_environment.hh"

#include <filesystem>
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

} // namespace

void loadConfigFile(const std::string & path, ServerConfig & c)
{
    toml::table root;
    try {
        root = toml::parse_file(path);
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
    r.seconds("read-timeout", c.readTimeout);
    r.seconds("write-timeout", c.writeTimeout);
    r.seconds("git-timeout", c.gitTimeout);
    r.strings("allowed-paths", c.allowedPaths);
    r.count("keep-evaluations", c.keepEvaluations);
    r.string("results", c.results);
    r.boolean("restrict-eval", c.restrictions.restrictEval);
    r.strings("allowed-uris", c.restrictions.allowedUris);
    r.boolean("allow-import-from-derivation", c.restrictions.importFromDerivation);
    r.strings("evaluator-env", c.restrictions.evaluatorEnv);
    if (auto * node = r.get("push")) {
        auto * table = node->as_table();
        if (!table) r.wrong("push", *node, "a table");
        TableReader p{path, *table, "push."};
        p.string("cache", c.push.cache);
        p.string("key", c.push.keyFile);
        p.string("compression", c.push.compression);
        p.string("redis", c.push.redis);
        p.string("daemon-socket", c.push.daemonSocket);
        p.count("uploads", c.push.uploads, true);
        p.count("closures", c.push.closures);
        p.count("checks", c.push.checks);
        p.refuseUnknown();
    }
    r.refuseUnknown();
}

void finishConfig(ServerConfig & c)
{
    if (c.stateDir.empty()) c.stateDir = defaultStateDir();
    c.stateDir = std::filesystem::absolute(c.stateDir);
    if (c.maxWorkers == 0) c.maxWorkers = std::max(1u, std::thread::hardware_concurrency());
    if (c.push.cache.empty()) c.push.cache = c.stateDir + "/binary-cache";
    for (auto & token : c.tokens)
        if (token.size() < 16) throw ConfigError("tokens: a token must have at least 16 characters");
    for (auto & dir : c.allowedPaths) {
        std::error_code ec;
        auto canonical = std::filesystem::canonical(dir, ec);
        if (ec) throw ConfigError("allowed-paths: '" + dir + "': " + ec.message());
        dir = canonical;
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
}

} // namespace evolive::server
