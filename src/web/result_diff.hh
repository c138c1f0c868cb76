// What changed between two evaluations: the comparison of two stored
// results (docs/diff.md). Jobs are matched by attribute name (`attr`); the
// definitions follow nixpkgs' CI (ci/eval/diff.nix) and Hydra's comparison
// of evaluations:
//   added, removed   attr only in the new, only in the old evaluation
//   changed          in both, both evaluated, another drvPath
//   rebuilds         evaluated in the new one with an output path that is
//                    not among the old evaluation's outputs (of any job)
//   newlyFailing     evaluated in the old one, an error in the new one
//   fixed            an error in the old one, evaluated in the new one
// with the counts per system and the rebuild label each count falls in.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evolive::web {

// One side of the comparison: the result file's metadata and counts.
struct EvaluationSide
{
    std::string fingerprint;                     // from the metadata ("" when it has none)
    std::map<std::string, std::string> metadata; // the file's key-value metadata
    size_t jobs = 0, errors = 0;
};

// Counts of one system (or of all).
struct DiffCounts
{
    size_t added = 0, removed = 0, changed = 0, rebuilds = 0, newlyFailing = 0, fixed = 0;
    size_t rebuildDerivations = 0; // distinct drvPaths among the rebuilds (aliases count once)
};

struct EvaluationDiff
{
    EvaluationSide old, now;
    // Attribute names, sorted.
    std::vector<std::string> added, removed, changed, rebuilds, newlyFailing, fixed;
    DiffCounts total;
    std::map<std::string, DiffCounts> systems; // jobs without a known system: "unknown"
    // Rebuilds per kernel (`linux`, `darwin`: systems ending in -linux,
    // -darwin), counted as nixpkgs does: distinct attribute names.
    std::map<std::string, size_t> kernels;
};

// Compares the result files at `oldPath` and `newPath` (read with
// results::readParquet). Throws std::runtime_error naming the file that
// cannot be read or is not a result.
EvaluationDiff compareResults(const std::string & oldPath, const std::string & newPath);

// The rebuild label a count falls in: "0", "1-10", "11-100", "101-500",
// "501-1000", "1001-2500", "2501-5000" or "5001+".
std::string rebuildLabel(size_t rebuilds);

// nixpkgs' labels for rebuild counts per kernel (ci/eval/compare/utils.nix,
// getLabels): "10.rebuild-linux: 11-100" and the others whose range holds
// the count (their ranges overlap: "1" and "1-10", "501+" and "501-1000").
std::vector<std::string> nixpkgsLabels(const std::map<std::string, size_t> & kernels);

// The comparison as JSON (docs/diff.md); each list holds at most `limit`
// names (0: all), with `truncated` set when one was cut.
nlohmann::json diffJson(const EvaluationDiff & diff, size_t limit = 0);

} // namespace evolive::web
