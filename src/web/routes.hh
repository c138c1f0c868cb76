// The answers of the routes the status page adds to `evolive serve`
// (docs/service.md), made without the HTTP layer: src/server/api.cc finds
// the files and evaluations, calls these and sends what they return.
//   GET /, /ui/NAME                      the page's files
//   GET /v1/evaluations/OLD/diff/NEW     the comparison (docs/diff.md)
//   GET /v1/evaluations/FP/previous      the previous evaluation of the same jobset
//   GET /v1/evaluations/FP/jobs?search=  a page of jobs
#pragma once

#include "result_catalog.hh"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evolive::web {

struct Answer
{
    unsigned status = 200;
    std::string contentType = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// The page's file for a request path, or nullopt.
std::optional<Answer> pageFile(const std::string & path);

// The comparison of two stored results; `query` may bound the lists
// (`limit`, default 1000, 0 for all) and pick a format (`format=json`,
// `text` or `markdown`).
Answer diffAnswer(const std::string & oldPath, const std::string & newPath, const std::string & query);

// {"fingerprint": F} of the previous evaluation of the same jobset, or 404.
Answer previousAnswer(ResultCatalog & catalog, const std::string & fingerprint);

// A page of jobs (job_search.hh) from a stored result, or from a running
// evaluation's job lines, as JSON lines; X-Total-Count says how many match
// and X-Jobs-Total how many jobs there are in all.
Answer jobPageAnswer(const std::string & storedPath, const std::string & query);
Answer jobPageFromLines(const std::string & lines, const std::string & query);

// Whether a jobs request asks for a page rather than every job.
bool isJobPageQuery(const std::string & query);

} // namespace evolive::web
