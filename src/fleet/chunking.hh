// Cutting an evaluation into chunks of attribute paths, from what
// `evolive-eval-jobs --list-paths` printed. Pure: no Redis, no processes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive::fleet {

// One line of `--list-paths`: an attribute a full run prints a line for.
struct ListedPath
{
    std::string attr;                           // the job's name, as in its job line
    nlohmann::json attrPath;                    // the names, as a JSON array
    bool aggregate = false;                     // with --constituents: it names constituents
    std::vector<std::string> namedConstituents; // names, or glob patterns when `globConstituents`
    bool globConstituents = false;
};

// Parses one line; throws std::runtime_error when it is not one.
ListedPath parseListedPath(const nlohmann::json & line);

// Chunks of at most `chunkSize` paths, in listing order, except one: every
// aggregate goes into a single chunk together with all the jobs its named
// constituents name (glob patterns matched against the listed names, as the
// evaluator matches them), so that each aggregate resolves in that chunk's
// run exactly as in a full run, cycles between aggregates included. That
// chunk may be larger than `chunkSize`.
std::vector<std::vector<ListedPath>> cutIntoChunks(const std::vector<ListedPath> & paths, size_t chunkSize);

} // namespace evolive::fleet
