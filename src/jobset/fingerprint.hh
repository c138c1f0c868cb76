// The fingerprint names an evaluation everywhere (log file, result file,
// every message): the SHA-256, in hex, of a canonical JSON encoding of what
// determines its result. The encoding is documented in docs/jobsets.md.
#pragma once

#include "git_fetcher.hh"
#include "jobset.hh"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

namespace evolive {

// An input after fetching: where it is on disk (git and path inputs) and
// what identifies its content.
struct ResolvedInput
{
    JobsetInput spec;
    std::optional<FetchedGit> git;
    std::string path;        // git checkout or path input directory; "" otherwise
    std::string contentHash; // path inputs: hash of the directory's files
};

// One resolved input as the fingerprint names it: type, URL and revision
// (with shallow and submodules), path and content hash, or value. The fleet
// sends inputs to its workers in this form too.
nlohmann::json pinnedInput(const ResolvedInput & input);

// The jobset options that change results, as the fingerprint names them;
// the fleet's chunk message carries them in this form too.
nlohmann::json resultOptions(const EvalOptions & options);

// What the fingerprint is computed from: every input's name, type, URL,
// resolved revision or content hash, and value; the expression; the
// options that change results (not workers or memory); and what the
// evaluation was allowed to see (`restrictions`: a result evaluated with
// more allowed is not one evaluated with less). Keys are sorted and there is
// no whitespace, so key order and spacing in the jobset do not matter.
nlohmann::json fingerprintDocument(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs,
                                   const EvalRestrictions & restrictions = {});

std::string fingerprintOf(const nlohmann::json & document);

// SHA-256 over a directory's files, symlinks and executable bits, in
// sorted path order (the directory's own path does not count).
std::string hashDirectory(const std::string & path);

} // namespace evolive
