// One page of an evaluation's jobs for the status page: those whose
// attribute name contains a text (ignoring ASCII case), optionally only the
// errors, from an offset, at most a limit; so that a 20,000-job evaluation
// is browsed without sending it whole.
#pragma once

#include <string>

namespace evolive::web {

struct JobQuery
{
    std::string search;   // "" matches every job
    bool errorsOnly = false;
    size_t offset = 0;
    size_t limit = 100;
};

// Throws std::invalid_argument for a malformed value. limit is at most 1000.
JobQuery parseJobQuery(const std::string & query);
// Whether the query asks for a page (search, errors, offset or limit) at all.
bool asksForJobPage(const std::string & query);

struct JobPage
{
    std::string lines; // the matching jobs of the page, as JSON lines
    size_t matching = 0, total = 0;
};

// From a stored result (read with results::readParquet).
JobPage searchResult(const std::string & path, const JobQuery & query);
// From job lines (a running evaluation's jobs so far).
JobPage searchLines(const std::string & lines, const JobQuery & query);

} // namespace evolive::web
