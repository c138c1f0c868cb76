#include "jobset_record.hh"

#include <map>

namespace evolive::hydra {

namespace {

std::optional<std::string> optionalText(const pqxx::field & f)
{
    if (f.is_null()) return std::nullopt;
    return f.as<std::string>();
}

} // namespace

std::optional<JobsetRecord> readJobset(pqxx::connection & conn, const std::string & project, const std::string & name)
{
    pqxx::read_transaction tx(conn);
    auto rows = tx.exec_params(
        "select j.id, j.nixexprinput, j.nixexprpath, j.flake, coalesce(j.forceeval, false), j.enabled, j.errormsg, "
        "p.declfile from jobsets j join projects p on p.name = j.project where j.project = $1 and j.name = $2",
        project, name);
    if (rows.empty()) return std::nullopt;
    auto r = rows[0];
    JobsetRecord jobset;
    jobset.id = r[0].as<int>();
    jobset.project = project;
    jobset.name = name;
    jobset.nixExprInput = optionalText(r[1]);
    jobset.nixExprPath = optionalText(r[2]);
    jobset.flake = optionalText(r[3]);
    jobset.forceEval = r[4].as<bool>();
    jobset.enabled = r[5].as<int>();
    jobset.errorMsg = optionalText(r[6]);
    jobset.declFile = optionalText(r[7]);

    std::map<std::string, JobsetInputRecord> inputs;
    for (auto i : tx.exec_params("select name, type, emailresponsible from jobsetinputs "
                                 "where project = $1 and jobset = $2 order by name",
                                 project, name))
        inputs[i[0].as<std::string>()] = {i[0].as<std::string>(), i[1].as<std::string>(), i[2].as<int>(), {}};
    for (auto a : tx.exec_params("select input, value from jobsetinputalts "
                                 "where project = $1 and jobset = $2 order by input, altnr",
                                 project, name))
        if (auto i = inputs.find(a[0].as<std::string>()); i != inputs.end()) i->second.values.push_back(optionalText(a[1]));
    for (auto & [_, input] : inputs) jobset.inputs.push_back(std::move(input));
    return jobset;
}

} // namespace evolive::hydra
