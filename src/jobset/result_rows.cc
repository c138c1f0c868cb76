#include "result_rows.hh"

#include "json_line.hh"
#include "json_parse.hh"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace evolive {

using nlohmann::json;

const std::vector<std::string> resultColumns{"attr", "attrPath", "name", "system", "drvPath",
                                             "outputs", "meta", "error", "constituents", "extra"};

namespace {

const std::set<std::string> jsonColumns{"attrPath", "outputs", "meta", "constituents", "extra"};

bool isStringList(const json & v)
{
    return v.is_array() && std::all_of(v.begin(), v.end(), [](auto & e) { return e.is_string(); });
}

// The value of a JSON column, checked for the shape resultRow gives it.
json cellValue(const std::string & column, const std::string & text)
{
    auto value = parseJson(text, column);
    bool ok = column == "attrPath"       ? isStringList(value)
              : column == "constituents" ? isStringList(value)
              : column == "outputs"      ? value.is_object() && std::all_of(value.begin(), value.end(), [](auto & o) {
                                          return o.is_string() || o.is_null();
                                      })
              : column == "extra"        ? value.is_object()
                                         : true; // meta: whatever the derivation's meta was
    if (!ok) throw std::runtime_error(column + ": not what evolive stores there");
    if (column == "extra")
        for (auto & [key, _] : value.items())
            if (key == "type" || std::find(resultColumns.begin(), resultColumns.end(), key) != resultColumns.end())
                throw std::runtime_error("extra: holds '" + key + "', which is not an extra field");
    return value;
}

} // namespace

std::vector<results::Cell> resultRow(const json & job)
{
    std::vector<results::Cell> row;
    json extra = json::object();
    for (auto & [key, value] : job.items())
        if (std::find(resultColumns.begin(), resultColumns.end(), key) == resultColumns.end()) extra[key] = value;
    for (auto & column : resultColumns) {
        if (column == "extra") row.emplace_back(extra.empty() ? results::Cell() : results::Cell(extra.dump()));
        else if (!job.contains(column)) row.emplace_back();
        else if (jsonColumns.count(column)) row.emplace_back(job[column].dump());
        else row.emplace_back(job[column].get<std::string>());
    }
    return row;
}

json jobFromRow(const std::vector<std::string> & columns, const std::vector<results::Cell> & row)
{
    json job = json::object();
    for (size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        auto & column = columns[i];
        if (std::find(resultColumns.begin(), resultColumns.end(), column) == resultColumns.end())
            throw std::runtime_error("unknown column '" + column + "'");
        if (column == "extra") job.update(cellValue(column, *row[i]));
        else job[column] = jsonColumns.count(column) ? cellValue(column, *row[i]) : json(*row[i]);
    }
    if (!job.contains("attr") || !job.contains("attrPath")) throw std::runtime_error("no attr or attrPath");
    return job;
}

std::string jobLineFromRow(const std::vector<std::string> & columns, const std::vector<results::Cell> & row)
{
    auto job = jobFromRow(columns, row);
    job["type"] = "job";
    return jsonLine(job);
}

json metadataValue(const std::map<std::string, std::string> & metadata, const std::string & key)
{
    auto it = metadata.find(key);
    if (it == metadata.end()) return nullptr;
    try {
        return parseJson(it->second, key);
    } catch (JsonParseError &) {
        return it->second;
    }
}

} // namespace evolive
