// The service's settings: embedded defaults, then a TOML file, then flags.
// Every setting and its default is documented in docs/service.md.
#pragma once

#include "jobset.hh"
#include "protocol.hh"
#include "push_session.hh"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::server {

struct ConfigError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct ServerConfig
{
    std::string listen = "127.0.0.1:8080";   // HOST:PORT; port 0 picks a free one
    std::string stateDir;                    // "": $EVOLIVE_STATE_DIR, else ~/.local/state/evolive
    std::vector<std::string> tokens;         // bearer tokens; none: loopback only
    size_t concurrency = 1;                  // evaluations at once; the rest wait in order
    size_t maxWorkers = 0;                   // cap on a jobset's options.workers; 0: the cores
    size_t maxRequestBytes = 1 << 20;        // larger request bodies get 413
    size_t maxConnections = 256;             // more get 503
    size_t maxConnectionsPerClient = 64;     // from one address; more get 503
    size_t maxWebSockets = 64;               // /v1/push sockets at once; more get 503
    std::chrono::seconds headerTimeout{10};  // for a request's header to arrive (idle connections)
    std::chrono::seconds readTimeout{30};    // for a request's body to arrive
    std::chrono::seconds writeTimeout{60};   // for a client to take what was sent
    std::chrono::seconds webSocketPingTimeout{60};  // a WebSocket peer silent this long (pings unanswered) is dropped
    std::chrono::seconds webSocketIdleTimeout{600}; // a WebSocket that sends no message this long is closed
    std::chrono::seconds gitTimeout{60};
    std::vector<std::string> allowedPaths;   // directories `path` inputs and local git URLs may name; none: refused
    std::vector<std::string> allowedHosts;   // Host names (HOST or HOST:PORT) besides loopback ones; see docs/security.md
    std::vector<std::string> allowedOrigins; // browser origins (scheme://host[:port]) that get CORS headers
    size_t keepEvaluations = 100;            // finished evaluations remembered in memory
    std::string results;                     // "": STATE/results; a directory, or s3://BUCKET?...&prefix=P
    cache::PushSettings push;                // push.cache "": STATE/binary-cache
    EvalRestrictions restrictions;           // what evaluations may see (docs/security.md)
    std::string evaluatorDir;                // whose evolive-eval-jobs evaluates; "": beside evolive
    fleet::FleetSettings fleet;              // fleet.redis "": evaluations run here (docs/fleet.md)
};

// Reads a TOML file into `config` (keys not in the file keep their value).
// Throws ConfigError naming the file, line and key for anything unknown or
// of the wrong type.
void loadConfigFile(const std::string & path, ServerConfig & config);

// Fills in what depends on the environment (state directory, workers) and
// checks the whole; throws ConfigError.
void finishConfig(ServerConfig & config);

} // namespace evolive::server
