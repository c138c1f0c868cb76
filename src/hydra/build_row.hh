// One job of the evaluator's output as the builds row Hydra's script makes
// of it (its checkBuild): meta mapped as Hydra maps it.
//
//   description, homepage   the meta value, NULL when empty or false
//   license                 meta.license flattened: each set's `shortName`,
//                           each string, joined by ", "
//   maintainers             the same with `email`
//   priority                meta.schedulingPriority, 100 when unset (or 0)
//   ischannel               meta.isChannel, 0 when unset
//   maxsilent, timeout      meta.maxSilent and meta.timeout, NULL when unset
//                           (7200 and 36000 with evolive_legacy_build_limits)
//
// Values are turned into text as Perl does (true is "1"; numbers as Perl
// prints them); "" and "0" count as unset, as Perl's `||` does.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace evolive::hydra {

// A job Hydra's script cannot make a build of (no outputs, no drvPath):
// fatal for the evaluation, as in Hydra.
struct JobError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct BuildRow
{
    std::string job, nixName, system, drvPath;
    std::string outputs;                    // the outputs object, as JSON
    std::string firstOutputName;            // the first by name
    std::optional<std::string> firstOutputPath;
    std::optional<std::string> description, license, homepage, maintainers;
    std::optional<long> maxSilent, timeout;
    long priority = 100;
    long isChannel = 0;
    std::optional<std::string> constituents; // an aggregate's constituent .drv paths, as a JSON list
};

// Throws JobError.
BuildRow buildRowFor(const nlohmann::json & job, bool legacyBuildLimits);

// A JSON scalar as Perl would print it after decoding; nothing for null,
// lists and sets.
std::optional<std::string> perlText(const nlohmann::json & value);

} // namespace evolive::hydra
