#include "settings.hh"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <sstream>
#include <unistd.h>

namespace evolive::hydra {

namespace fs = std::filesystem;

namespace {

std::string env(const char * name, const std::string & fallback = "")
{
    const char * v = getenv(name);
    return v && *v ? v : fallback;
}

long integerSetting(const std::string & key, const std::string & value)
{
    size_t used = 0;
    long n = 0;
    try {
        n = std::stol(value, &used);
    } catch (std::exception &) {
        used = 0;
    }
    if (used == 0 || used != value.size()) throw SettingsError("hydra.conf: " + key + " = '" + value + "' is not a whole number");
    return n;
}

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// Nix's per-user roots, as Hydra's getGCRootsDir names them.
std::string defaultGcRootsDir()
{
    std::string user = env("LOGNAME");
    if (user.empty())
        if (auto * pw = getpwuid(geteuid())) user = pw->pw_name;
    if (user.empty()) throw SettingsError("gc_roots_dir is not set and neither is LOGNAME");
    return env("NIX_STATE_DIR", "/nix/var/nix") + "/gcroots/per-user/" + user + "/hydra-roots";
}

} // namespace

size_t positiveSetting(const ConfigSection & config, const std::string & key, size_t fallback)
{
    auto value = config.get(key);
    if (!value) return fallback;
    long n = integerSetting(key, *value);
    if (n <= 0) throw SettingsError("hydra.conf: " + key + " must be positive, not " + *value);
    return (size_t) n;
}

std::string dsnToConninfo(const std::string & dsn)
{
    // dbi:Pg:key=value;key=value (the driver name is case-insensitive in DBI).
    auto first = dsn.find(':');
    auto second = first == std::string::npos ? first : dsn.find(':', first + 1);
    if (second == std::string::npos) throw SettingsError("HYDRA_DBI '" + dsn + "' is not a DBI DSN (dbi:Pg:dbname=...)");
    auto driver = dsn.substr(first + 1, second - first - 1);
    if (dsn.substr(0, first) != "dbi" || (driver != "Pg" && driver != "pg"))
        throw SettingsError("HYDRA_DBI '" + dsn + "' does not denote a PostgreSQL database");
    std::string out;
    std::istringstream parts(dsn.substr(second + 1));
    for (std::string part; std::getline(parts, part, ';');) {
        if (part.empty()) continue;
        auto eq = part.find('=');
        if (eq == std::string::npos) throw SettingsError("HYDRA_DBI: '" + part + "' is not key=value");
        auto key = part.substr(0, eq), value = part.substr(eq + 1);
        if (key == "database" || key == "db") key = "dbname";
        // libpq quoting: single quotes, with ' and \ escaped.
        std::string quoted = "'";
        for (char c : value) {
            if (c == '\'' || c == '\\') quoted += '\\';
            quoted += c;
        }
        out += (out.empty() ? "" : " ") + key + "=" + quoted + "'";
    }
    return out.empty() ? "dbname=hydra" : out;
}

std::string databaseUrlFromEnvironment()
{
    auto url = env("HYDRA_DATABASE_URL");
    if (!url.empty()) {
        if (url.rfind("postgres://", 0) != 0 && url.rfind("postgresql://", 0) != 0)
            throw SettingsError("$HYDRA_DATABASE_URL does not denote a PostgreSQL database (expected postgres://...)");
        return url;
    }
    auto dsn = env("HYDRA_DBI");
    if (!dsn.empty()) return dsnToConninfo(dsn);
    return "dbname=hydra";
}

std::chrono::seconds HydraSettings::gitTimeout(const std::string & project, const std::string & jobset,
                                               const std::string & input) const
{
    long timeout = 600;
    if (auto * git = config.section("git-input")) {
        if (auto t = git->get("timeout")) timeout = integerSetting("git-input timeout", *t);
        if (auto * block = git->section(project + ":" + jobset + ":" + input))
            if (auto t = block->get("timeout")) timeout = integerSetting("git-input timeout", *t);
    }
    if (timeout <= 0) throw SettingsError("hydra.conf: the git-input timeout must be positive");
    return std::chrono::seconds(timeout);
}

HydraSettings loadSettings()
{
    HydraSettings s;
    s.databaseUrl = databaseUrlFromEnvironment();
    s.dataDir = env("HYDRA_DATA", "/var/lib/hydra");
    if (!fs::is_directory(s.dataDir))
        throw SettingsError("The HYDRA_DATA directory (" + s.dataDir + ") does not exist!");

    auto configPath = env("HYDRA_CONFIG", s.dataDir + "/hydra.conf");
    if (fs::is_regular_file(configPath)) {
        s.configPath = configPath;
        s.config = parseConfigFile(configPath);
    }
    auto & c = s.config;
    s.workers = positiveSetting(c, "evaluator_workers", 1);
    s.maxMemoryMiB = positiveSetting(c, "evaluator_max_memory_size", 4096);
    // Hydra honours exactly "true".
    s.allowImportFromDerivation = c.get("allow_import_from_derivation", "false") == "true";
    s.gcRootsDir = c.get("gc_roots_dir").value_or("");
    if (s.gcRootsDir.empty()) s.gcRootsDir = defaultGcRootsDir();
    s.evalSubstituter = c.get("eval_substituter");
    if (auto v = c.get("path_input_cache_validity_seconds"))
        s.pathInputCacheValidity = integerSetting("path_input_cache_validity_seconds", *v);

    s.evaluator = c.get("evolive_evaluator", "");
    s.server = c.get("evolive_server", "");
    s.token = c.get("evolive_token", "");
    if (auto file = c.get("evolive_token_file")) {
        std::ifstream in(*file);
        if (!in) throw SettingsError("hydra.conf: evolive_token_file " + *file + " cannot be read");
        std::ostringstream t;
        t << in.rdbuf();
        s.token = trimmed(t.str());
    }
    s.cache = c.get("evolive_cache", "");
    if (!s.server.empty() && s.cache.empty())
        throw SettingsError("hydra.conf: evolive_server is set but evolive_cache (the server's binary cache, "
                            "as this machine reads it) is not");
    auto legacy = c.get("evolive_legacy_build_limits", "false");
    if (legacy != "true" && legacy != "false" && legacy != "1" && legacy != "0")
        throw SettingsError("hydra.conf: evolive_legacy_build_limits must be true or false, not '" + legacy + "'");
    s.legacyBuildLimits = legacy == "true" || legacy == "1";
    s.serverTimeout = std::chrono::seconds(positiveSetting(c, "evolive_server_timeout", 3600));
    return s;
}

} // namespace evolive::hydra
