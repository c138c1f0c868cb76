// What hydra-eval-jobset is configured by: Hydra's environment variables
// and the hydra.conf keys it honours, as Hydra's script reads them, plus
// evolive's own keys (all named `evolive_*`, documented in docs/hydra.md).
#pragma once

#include "config_file.hh"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace evolive::hydra {

// A setting that cannot be used: a missing HYDRA_DATA, a malformed value.
struct SettingsError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct HydraSettings
{
    std::string databaseUrl; // a libpq connection string or postgres:// URL
    std::string dataDir;     // HYDRA_DATA
    std::string configPath;  // the hydra.conf read, "" when there is none
    ConfigSection config;

    // Hydra's keys.
    size_t workers = 1;                  // evaluator_workers
    size_t maxMemoryMiB = 4096;          // evaluator_max_memory_size
    bool allowImportFromDerivation = false; // allow_import_from_derivation
    std::string gcRootsDir;              // gc_roots_dir, else Nix's per-user hydra-roots
    std::optional<std::string> evalSubstituter; // eval_substituter
    long pathInputCacheValidity = 30;    // path_input_cache_validity_seconds

    // evolive's keys.
    std::string evaluator;               // evolive_evaluator: the program Hydra's flags are given to
    std::string server;                  // evolive_server: evaluate on this `evolive serve`
    std::string token;                   // evolive_token, or the contents of evolive_token_file
    std::string cache;                   // evolive_cache: the server's binary cache, as this machine reads it
    bool legacyBuildLimits = false;      // evolive_legacy_build_limits: 7200/36000 instead of NULL
    std::chrono::seconds serverTimeout{3600}; // evolive_server_timeout: a silent server is given up after this

    std::string stateDir() const { return dataDir + "/evolive"; }

    // The git timeout for one input: `timeout` of <git-input>, overridden
    // by its <PROJECT:JOBSET:INPUT> block; 600 s by default, as Hydra's.
    std::chrono::seconds gitTimeout(const std::string & project, const std::string & jobset,
                                    const std::string & input) const;
};

// The database to connect to: $HYDRA_DATABASE_URL (a postgres:// URL), else
// the older $HYDRA_DBI (`dbi:Pg:dbname=hydra;host=...`), else dbname=hydra.
std::string databaseUrlFromEnvironment();

// Turns a DBI DSN (`dbi:Pg:dbname=hydra;host=db`) into a libpq connection
// string (`dbname=hydra host=db`). Throws SettingsError for other drivers.
std::string dsnToConninfo(const std::string & dsn);

// Reads the environment and $HYDRA_CONFIG or $HYDRA_DATA/hydra.conf.
// Throws SettingsError (HYDRA_DATA missing, a bad value) or ConfigError.
HydraSettings loadSettings();

// A whole positive number for `key`, or throws SettingsError naming it.
size_t positiveSetting(const ConfigSection & config, const std::string & key, size_t fallback);

} // namespace evolive::hydra
