// Inputs that come from Hydra's own database: `build` (a build's main
// output), `sysbuild` (the latest build of a job for each system) and
// `eval` (every successful `out` of an evaluation).
#include "input_fetch.hh"

#include "nix_store.hh"

#include <iostream>
#include <regex>

namespace evolive::hydra {

namespace {

const std::string nameRE = "[A-Za-z_][A-Za-z0-9_-]*";
const std::string jobsetNameRE = "[A-Za-z_][A-Za-z0-9_.-]*";
const std::string jobRE = nameRE + "(?:\\." + nameRE + ")*";

bool isNumber(const std::string & s)
{
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

struct JobSpec
{
    std::string project, jobset, job;
    std::vector<std::pair<std::string, std::string>> attrs;
};

// `[PROJECT:][JOBSET:]JOB [NAME="VALUE" ...]`, the project and jobset
// defaulting to the evaluated jobset's.
JobSpec parseJobSpec(const std::string & s, const JobsetRecord & current)
{
    static const std::regex spec("^(?:(?:(" + nameRE + "):)?(" + jobsetNameRE + "):)?(" + jobRE +
                                 ")\\s*(?:\\[((?:\\s*\\w+\\s*=\\s*\"[\\w-]+\"\\s*)*)\\])?$");
    std::smatch m;
    if (!std::regex_match(s, m, spec)) throw FetchError("invalid job specifier `" + s + "'");
    JobSpec j{m[1].matched ? std::string(m[1]) : current.project, m[2].matched ? std::string(m[2]) : current.name, m[3], {}};
    static const std::regex attr("(\\w+)\\s*=\\s*\"([\\w-]+)\"");
    std::string attrs = m[4];
    for (std::sregex_iterator i(attrs.begin(), attrs.end(), attr), end; i != end; ++i)
        j.attrs.emplace_back((*i)[1], (*i)[2]);
    return j;
}

std::optional<int> jobsetId(pqxx::transaction_base & tx, const std::string & project, const std::string & jobset)
{
    auto r = tx.exec_params("select id from jobsets where project = $1 and name = $2", project, jobset);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<int>();
}

struct MainOutput
{
    std::string name, path;
};

// Hydra's getMainOutput: `out`, else the first output by name.
std::optional<MainOutput> mainOutput(pqxx::transaction_base & tx, int build)
{
    auto r = tx.exec_params("select name, path from buildoutputs where build = $1 and path is not null "
                            "order by (name = 'out') desc, name limit 1",
                            build);
    if (r.empty()) return std::nullopt;
    return MainOutput{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

// The version Hydra reads from a build's release name or Nix name.
std::optional<std::string> versionOf(const std::string & relName)
{
    static const std::regex name("^((?:[A-Za-z0-9]|(?:-[^0-9]))+)-([A-Za-z0-9.-]+)$");
    std::smatch m;
    if (std::regex_match(relName, m, name)) return std::string(m[2]);
    return std::nullopt;
}

FetchedInput buildInput(int build, const std::string & relName, const MainOutput & out)
{
    FetchedInput in;
    in.storePath = out.path;
    in.id = build;
    in.version = versionOf(relName);
    in.outputName = out.name;
    return in;
}

} // namespace

std::vector<FetchedInput> fetchBuildInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    pqxx::read_transaction tx(ctx.db);
    pqxx::result found;
    const std::string columns = "select b.id, coalesce(nullif(b.releasename, ''), b.nixname, ''), b.drvpath from builds b ";
    if (isNumber(value)) {
        found = tx.exec_params(columns + "where b.id = $1", std::stoi(value));
    } else {
        auto spec = parseJobSpec(value, ctx.jobset);
        auto id = jobsetId(tx, spec.project, spec.jobset);
        if (!id) throw FetchError("input `" + name + "': jobset `" + spec.project + ":" + spec.jobset + "' does not exist");
        std::string where = "where b.finished = 1 and b.jobset_id = $1 and b.job = $2 and b.buildstatus = 0";
        for (auto & [k, v] : spec.attrs)
            where += " and exists (select 1 from buildinputs i where i.build = b.id and i.name = " + tx.quote(k) +
                     " and i.value = " + tx.quote(v) + ")";
        found = tx.exec_params(columns + where + " order by b.id desc limit 1", *id, spec.job);
    }
    if (found.empty()) return {};
    int build = found[0][0].as<int>();
    auto out = mainOutput(tx, build);
    tx.commit();
    if (!out || !ensurePath(ctx.settings, out->path)) return {};
    auto in = buildInput(build, found[0][1].as<std::string>(), *out);
    auto drv = found[0][2].as<std::string>();
    if (isValidPath(drv)) in.drvPath = drv;
    return {in};
}

std::vector<FetchedInput> fetchSysbuildInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    auto spec = parseJobSpec(value, ctx.jobset);
    pqxx::read_transaction tx(ctx.db);
    auto id = jobsetId(tx, spec.project, spec.jobset);
    if (!id) throw FetchError("input `" + name + "': jobset `" + spec.project + ":" + spec.jobset + "' does not exist");
    // The latest successful build of the job for each system.
    auto latest = tx.exec_params("select distinct on (b.system) b.id, coalesce(nullif(b.releasename, ''), b.nixname, ''), "
                                 "b.system from builds b where b.finished = 1 and b.buildstatus = 0 "
                                 "and b.jobset_id = $1 and b.job = $2 order by b.system, b.id desc",
                                 *id, spec.job);
    std::vector<std::pair<pqxx::row, MainOutput>> builds;
    for (auto row : latest)
        if (auto out = mainOutput(tx, row[0].as<int>())) builds.emplace_back(row, *out);
    tx.commit();
    std::vector<FetchedInput> inputs;
    for (auto & [row, out] : builds) {
        if (!ensurePath(ctx.settings, out.path)) continue;
        auto in = buildInput(row[0].as<int>(), row[1].as<std::string>(), out);
        in.outputName.reset(); // as Hydra's sysbuild inputs
        in.system = row[2].as<std::string>();
        inputs.push_back(in);
    }
    if (inputs.empty()) std::cerr << "input `" << name << "': no previous build available\n";
    return inputs;
}

FetchedInput fetchEvalInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    pqxx::read_transaction tx(ctx.db);
    std::optional<int> eval;
    static const std::regex jobsetSpec("^(" + nameRE + "):(" + jobsetNameRE + ")$");
    static const std::regex jobSpec("^(" + nameRE + "):(" + jobsetNameRE + "):(" + jobRE + ")$");
    const std::string allFinished = "not exists (select 1 from jobsetevalmembers m join builds b on m.build = b.id "
                                    "where m.eval = e.id and b.finished = 0)";
    std::smatch m;
    if (isNumber(value)) {
        auto r = tx.exec_params("select id from jobsetevals where id = $1", std::stoi(value));
        if (r.empty()) throw FetchError("evaluation " + value + " does not exist");
        eval = r[0][0].as<int>();
    } else if (std::regex_match(value, m, jobsetSpec)) {
        auto id = jobsetId(tx, m[1], m[2]);
        if (!id) throw FetchError("jobset ‘" + value + "’ does not exist");
        auto r = tx.exec_params("select e.id from jobsetevals e where e.jobset_id = $1 and e.hasnewbuilds = 1 and " +
                                    allFinished + " order by e.id desc limit 1",
                                *id);
        if (r.empty()) throw FetchError("jobset ‘" + value + "’ does not have a finished evaluation");
        eval = r[0][0].as<int>();
    } else if (std::regex_match(value, m, jobSpec)) {
        auto id = jobsetId(tx, m[1], m[2]);
        if (!id) throw FetchError("jobset ‘" + std::string(m[1]) + ":" + std::string(m[2]) + "’ does not exist");
        auto r = tx.exec_params("select e.id from jobsetevals e where e.jobset_id = $1 and e.hasnewbuilds = 1 and " +
                                    allFinished +
                                    " and exists (select 1 from jobsetevalmembers m join builds b on m.build = b.id "
                                    "where m.eval = e.id and b.job = $2 and b.buildstatus = 0) order by e.id desc limit 1",
                                *id, std::string(m[3]));
        if (r.empty()) throw FetchError("there is no successful build of ‘" + value + "’ in a finished evaluation");
        eval = r[0][0].as<int>();
    } else {
        throw FetchError("input `" + name + "': `" + value + "' names no evaluation (expected ID, PROJECT:JOBSET or PROJECT:JOBSET:JOB)");
    }
    auto outs = tx.exec_params("select b.job, o.path from jobsetevalmembers m join builds b on b.id = m.build "
                               "join buildoutputs o on o.build = b.id and o.name = 'out' "
                               "where m.eval = $1 and b.finished = 1 and b.buildstatus = 0 and o.path is not null",
                               *eval);
    tx.commit();
    std::vector<std::string> paths;
    for (auto r : outs) paths.push_back(r[1].as<std::string>());
    auto invalid = invalidPaths(paths);
    FetchedInput in;
    in.jobs.emplace();
    for (auto r : outs)
        if (!invalid.count(r[1].as<std::string>())) (*in.jobs)[r[0].as<std::string>()] = r[1].as<std::string>();
    return in;
}

} // namespace evolive::hydra
