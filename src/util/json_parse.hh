// Parsing JSON that comes from outside (requests, push messages, stored
// result metadata) with a bound on nesting. nlohmann's parser itself is
// iterative, but destroying, copying and dumping a value recurse once per
// level, so a document nested 100,000 deep overflows the stack later.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace evolive {

// Deeper than this is refused. Jobsets, push messages and metadata are a
// few levels deep; `json` input values are whatever a user writes.
constexpr size_t defaultMaxJsonDepth = 64;

// The deepest job line evolive-eval-jobs prints (a `meta` or `extraValue`
// value nested deeper is an error line instead), and the deepest a fleet's
// coordinator takes from Redis. Far below what freeing a value costs in
// stack on an 8 MiB thread (lines ~60,000 deep overflowed the evaluator's
// own coordinator), far above what a package set's meta needs.
constexpr size_t maxJobLineDepth = 10000;

// The JSON could not be parsed or is nested too deeply; what() says which,
// prefixed by the `what` given to parseJson.
struct JsonParseError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

// The deepest nesting of arrays and objects in `text` (0 for a scalar),
// counted without parsing (brackets inside strings do not count).
size_t jsonDepth(std::string_view text);

// Parses `text`, refusing documents nested deeper than `maxDepth`.
// Throws JsonParseError ("`what`: nested deeper than 64 levels", or
// "`what`: <the parser's message>").
nlohmann::json parseJson(std::string_view text, const std::string & what, size_t maxDepth = defaultMaxJsonDepth);

} // namespace evolive
