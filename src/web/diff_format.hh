// The comparison of two evaluations as a person reads it: a summary for a
// terminal, or Markdown to post on a pull request (docs/diff.md). Names
// from the results (attributes, systems, input values) are escaped: they
// cannot move a terminal's cursor or add markup to the Markdown.
#pragma once

#include "result_diff.hh"

#include <string>

namespace evolive::web {

// Each list shows at most `limit` names (0: all), then how many more.
std::string diffText(const EvaluationDiff & diff, size_t limit);
std::string diffMarkdown(const EvaluationDiff & diff, size_t limit);

} // namespace evolive::web
