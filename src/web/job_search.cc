#include "job_search.hh"

#include "result_rows.hh"
#include "parquet_reader.hh"
#include "query.hh"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace evolive::web {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool contains(const std::string & haystack, const std::string & needle)
{
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                       [](char a, char b) { return lower(a) == lower(b); }) != haystack.end();
}

// Counts every job and keeps the lines of the page's matches.
struct Pager
{
    const JobQuery & query;
    JobPage page;

    // `line` is only called for a match that falls on the page.
    template<class Line> void job(const std::string & attr, bool failed, Line && line)
    {
        page.total++;
        if ((query.errorsOnly && !failed) || !contains(attr, query.search)) return;
        if (page.matching++ < query.offset || page.matching > query.offset + query.limit) return;
        page.lines += line();
        page.lines += '\n';
    }
};

} // namespace

JobQuery parseJobQuery(const std::string & query)
{
    JobQuery q;
    q.search = queryValue(query, "search").value_or("");
    auto errors = queryValue(query, "errors").value_or("0");
    if (errors != "0" && errors != "1" && errors != "true" && errors != "false")
        throw std::invalid_argument("errors: must be 1 or 0");
    q.errorsOnly = errors == "1" || errors == "true";
    q.offset = queryNumber(query, "offset", 0, SIZE_MAX / 2);
    q.limit = queryNumber(query, "limit", 100, 1000);
    return q;
}

bool asksForJobPage(const std::string & query)
{
    for (auto * key : {"search", "errors", "offset", "limit"})
        if (queryValue(query, key)) return true;
    return false;
}

JobPage searchResult(const std::string & path, const JobQuery & query)
{
    Pager pager{query};
    long attr = -1, error = -1;
    results::readParquet(path, [&](const std::vector<std::string> & columns, const std::vector<results::Cell> & row) {
        if (attr < 0) {
            attr = std::find(columns.begin(), columns.end(), "attr") - columns.begin();
            error = std::find(columns.begin(), columns.end(), "error") - columns.begin();
        }
        if ((size_t) attr >= row.size() || !row[attr]) return;
        pager.job(*row[attr], (size_t) error < row.size() && row[error], [&] { return jobLineFromRow(columns, row); });
    });
    return pager.page;
}

JobPage searchLines(const std::string & lines, const JobQuery & query)
{
    Pager pager{query};
    size_t start = 0;
    while (start < lines.size()) {
        auto end = std::min(lines.find('\n', start), lines.size());
        std::string line = lines.substr(start, end - start);
        start = end + 1;
        auto job = nlohmann::json::parse(line, nullptr, false);
        if (!job.is_object() || !job.contains("attr") || !job["attr"].is_string()) continue;
        pager.job(job["attr"].get<std::string>(), job.contains("error"), [&] { return line; });
    }
    return pager.page;
}

} // namespace evolive::web
