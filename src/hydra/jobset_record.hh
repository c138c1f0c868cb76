// A jobset as Hydra's database holds it: the `jobsets` row, its project's
// declarative-spec file, and its inputs with their alternatives.
#pragma once

#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <vector>

namespace evolive::hydra {

struct JobsetInputRecord
{
    std::string name, type;
    int emailResponsible = 0;
    std::vector<std::optional<std::string>> values; // jobsetinputalts.value, by altnr
};

struct JobsetRecord
{
    int id = 0;
    std::string project, name;
    std::optional<std::string> nixExprInput, nixExprPath, flake;
    bool forceEval = false;
    int enabled = 1;                 // 2: one-shot, disabled after its evaluation
    std::optional<std::string> errorMsg;
    std::optional<std::string> declFile; // the project's
    std::vector<JobsetInputRecord> inputs; // by name
};

// The jobset PROJECT:NAME, or nothing when there is no such jobset.
std::optional<JobsetRecord> readJobset(pqxx::connection & conn, const std::string & project, const std::string & name);

} // namespace evolive::hydra
