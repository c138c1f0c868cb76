// The fleet's wire format on Redis (docs/fleet.md describes it for
// operators): the keys, version 1, and the messages of the chunk and result
// streams. Both sides, the coordinator (FleetJobSource) and `evolive
// worker`, encode and decode through this file only.
#pragma once

#include "fingerprint.hh"
#include "jobset.hh"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive::fleet {

constexpr int protocolVersion = 1;

// The keys, all under evolive:fleet:v1: (a new version gets new keys, so
// that old and new workers never read each other's messages).
struct Keys
{
    static std::string prefix() { return "evolive:fleet:v1:"; }
    static std::string evaluations() { return prefix() + "evaluations"; } // SET of active fingerprints
    static std::string evaluation(const std::string & fp) { return prefix() + "evaluation:" + fp; } // HASH of settings
    static std::string chunks(const std::string & fp) { return prefix() + "chunks:" + fp; }   // STREAM, group `workers`
    static std::string results(const std::string & fp) { return prefix() + "results:" + fp; } // STREAM
    static std::string machines(const std::string & fp) { return prefix() + "machines:" + fp; } // ZSET: worker -> last seen
    static std::string cancel(const std::string & fp) { return prefix() + "cancel:" + fp; }   // STRING, set when cancelled
    static constexpr const char * group = "workers";
};

// The coordinator's settings for the evaluations it splits (`[fleet]` in
// the server's configuration); the per-evaluation ones travel in the
// evaluation's hash, so workers need no configuration of their own.
struct FleetSettings
{
    std::string redis;                               // redis://HOST:PORT or unix:///PATH; "": no fleet
    size_t chunkSize = 200;                          // attribute paths per chunk
    size_t maxMachines = 0;                          // workers serving one evaluation at once; 0: any number
    std::chrono::milliseconds claimTimeout{60000};   // a chunk idle this long is taken over
    size_t maxAttempts = 3;                          // deliveries of a chunk before it is given up
    std::chrono::seconds chunkTimeout{0};            // one worker's time on a chunk before it stops it; 0: no limit
    std::chrono::seconds expiry{86400};              // keys of an evaluation whose coordinator vanished expire
};

// What a worker needs to evaluate one chunk exactly as the coordinator
// would: the jobset with every input pinned, what the evaluator may see,
// and the attribute paths.
struct ChunkSpec
{
    std::string fingerprint;
    size_t index = 0;
    Jobset jobset;                                  // inputs as given (git: URL and ref)
    std::map<std::string, ResolvedInput> inputs;    // git: `git->rev` set; path: `contentHash` set; paths not fetched
    EvalRestrictions restrictions;
    std::vector<nlohmann::json> paths;              // attribute paths, each a JSON array of names
};

// The `spec` field of a chunk message, and back; decoding throws
// std::runtime_error naming what is wrong.
nlohmann::json encodeChunk(const ChunkSpec & chunk);
ChunkSpec decodeChunk(const nlohmann::json & spec);

// Flat field/value pairs of a stream entry, as XADD takes and XREAD gives them.
using Fields = std::map<std::string, std::string>;

// An XRANGE/XREAD entry: its id and fields.
struct StreamEntry
{
    std::string id;
    Fields fields;
};

} // namespace evolive::fleet
