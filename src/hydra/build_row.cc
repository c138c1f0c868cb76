#include "build_row.hh"

#include <climits>
#include <cstdio>
#include <regex>
#include <vector>

namespace evolive::hydra {

using nlohmann::json;

std::optional<std::string> perlText(const json & v)
{
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
    if (v.is_number_integer()) return v.is_number_unsigned() ? std::to_string(v.get<uint64_t>()) : std::to_string(v.get<int64_t>());
    if (v.is_number_float()) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.15g", v.get<double>());
        return std::string(buf);
    }
    return std::nullopt;
}

namespace {

// Hydra's getMeta: the value, unless Perl counts it false ("" or "0").
std::optional<std::string> metaText(const json & meta, const char * key)
{
    if (!meta.is_object() || !meta.contains(key)) return std::nullopt;
    auto text = perlText(meta[key]);
    if (!text || *text == "" || *text == "0") return std::nullopt;
    return text;
}

// An integer column: what PostgreSQL would take from Perl's text; a value
// it would refuse (and so fail Hydra's whole evaluation) is left unset.
std::optional<long> metaInteger(const json & meta, const char * key)
{
    auto text = metaText(meta, key);
    static const std::regex integer("^\\s*[+-]?[0-9]{1,10}\\s*$");
    if (!text || !std::regex_match(*text, integer)) return std::nullopt;
    long n = std::stol(*text);
    if (n < INT_MIN || n > INT_MAX) return std::nullopt;
    return n;
}

// Hydra's getMetaStrings: sets give their `key`, lists are flattened,
// other values are taken as they are.
void metaStrings(const json & v, const char * key, std::vector<std::string> & out)
{
    if (v.is_object()) {
        if (v.contains(key)) out.push_back(perlText(v[key]).value_or(""));
    } else if (v.is_array()) {
        for (auto & e : v) metaStrings(e, key, out);
    } else if (!v.is_null()) {
        out.push_back(perlText(v).value_or(""));
    }
}

std::optional<std::string> metaJoined(const json & meta, const char * field, const char * key)
{
    if (!meta.is_object() || !meta.contains(field)) return std::nullopt;
    std::vector<std::string> strings;
    metaStrings(meta[field], key, strings);
    std::string joined;
    for (size_t i = 0; i < strings.size(); ++i) joined += (i ? ", " : "") + strings[i];
    if (joined.empty() || joined == "0") return std::nullopt;
    return joined;
}

std::string requireText(const json & job, const char * key, const std::string & what)
{
    if (!job.contains(key) || !job[key].is_string() || job[key].get<std::string>().empty())
        throw JobError(what);
    return job[key].get<std::string>();
}

} // namespace

BuildRow buildRowFor(const json & job, bool legacyBuildLimits)
{
    BuildRow row;
    row.job = requireText(job, "attr", "the evaluator reported a job without a name");
    if (row.job == "0") throw JobError("the evaluator reported a job named `0'");
    row.drvPath = requireText(job, "drvPath", "job ‘" + row.job + "’ has no derivation path");
    if (!job.contains("outputs") || !job["outputs"].is_object() || job["outputs"].empty())
        throw JobError("job ‘" + row.job + "’ has no outputs");
    auto & outputs = job["outputs"];
    for (auto & [name, path] : outputs.items())
        if (!path.is_null() && !path.is_string()) throw JobError("job ‘" + row.job + "’ has a malformed output " + name);
    row.outputs = outputs.dump();
    row.firstOutputName = outputs.begin().key(); // nlohmann keeps keys sorted, as Perl's `sort keys`
    if (outputs.begin()->is_string()) row.firstOutputPath = outputs.begin()->get<std::string>();
    row.nixName = job.value("name", "");
    row.system = job.value("system", "");

    static const json none = json::object();
    const json & meta = job.contains("meta") && job["meta"].is_object() ? job["meta"] : none;
    row.description = metaText(meta, "description");
    row.license = metaJoined(meta, "license", "shortName");
    row.homepage = metaText(meta, "homepage");
    row.maintainers = metaJoined(meta, "maintainers", "email");
    row.maxSilent = metaInteger(meta, "maxSilent");
    row.timeout = metaInteger(meta, "timeout");
    if (legacyBuildLimits) {
        if (!row.maxSilent) row.maxSilent = 7200;
        if (!row.timeout) row.timeout = 36000;
    }
    row.priority = metaInteger(meta, "schedulingPriority").value_or(100);
    row.isChannel = metaInteger(meta, "isChannel").value_or(0);
    if (job.contains("constituents") && job["constituents"].is_array()) row.constituents = job["constituents"].dump();
    return row;
}

} // namespace evolive::hydra
