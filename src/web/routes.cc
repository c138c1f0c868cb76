#include "routes.hh"

#include "diff_format.hh"
#include "job_search.hh"
#include "query.hh"
#include "result_diff.hh"
#include "static_files.hh"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace evolive::web {

using json = nlohmann::json;

namespace {

Answer error(unsigned status, const std::string & message)
{
    return {status, "application/json", json{{"error", message}}.dump() + "\n", {}};
}

Answer jobPage(const JobPage & page)
{
    return {200,
            "application/x-ndjson",
            page.lines,
            {{"X-Total-Count", std::to_string(page.matching)}, {"X-Jobs-Total", std::to_string(page.total)}}};
}

} // namespace

std::optional<Answer> pageFile(const std::string & path)
{
    StaticFile file;
    if (!staticFileFor(path, file)) return std::nullopt;
    return Answer{200, std::string(file.contentType), std::string(file.bytes), staticFileHeaders()};
}

Answer diffAnswer(const std::string & oldPath, const std::string & newPath, const std::string & query)
{
    size_t limit;
    try {
        limit = queryNumber(query, "limit", 1000, SIZE_MAX / 2);
    } catch (std::invalid_argument & e) {
        return error(400, e.what());
    }
    auto format = queryValue(query, "format").value_or("json");
    if (format != "json" && format != "text" && format != "markdown")
        return error(400, "format: '" + format + "' is not json, text or markdown");
    auto diff = compareResults(oldPath, newPath);
    if (format == "text") return {200, "text/plain; charset=utf-8", diffText(diff, limit), {}};
    if (format == "markdown") return {200, "text/markdown; charset=utf-8", diffMarkdown(diff, limit), {}};
    return {200, "application/json", diffJson(diff, limit).dump(-1, ' ', false, json::error_handler_t::replace) + "\n", {}};
}

Answer previousAnswer(ResultCatalog & catalog, const std::string & fingerprint)
{
    auto previous = catalog.previous(fingerprint);
    if (!previous) return error(404, "no earlier stored evaluation of the same jobset as " + fingerprint);
    return {200, "application/json", json{{"fingerprint", *previous}}.dump() + "\n", {}};
}

bool isJobPageQuery(const std::string & query) { return asksForJobPage(query); }

Answer jobPageAnswer(const std::string & storedPath, const std::string & query)
{
    try {
        return jobPage(searchResult(storedPath, parseJobQuery(query)));
    } catch (std::invalid_argument & e) {
        return error(400, e.what());
    }
}

Answer jobPageFromLines(const std::string & lines, const std::string & query)
{
    try {
        return jobPage(searchLines(lines, parseJobQuery(query)));
    } catch (std::invalid_argument & e) {
        return error(400, e.what());
    }
}

} // namespace evolive::web
