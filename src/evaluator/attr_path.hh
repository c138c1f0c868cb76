// Attribute paths of jobs: the exact names (`attrPath`) and one string that
// names them unambiguously (`attr`). No Nix headers: shared with tests.
#pragma once

#include <string>
#include <vector>

namespace evolive {

using AttrPath = std::vector<std::string>;

// True when `name` can stand unquoted in a Nix attribute path: a Nix
// identifier (letters, digits, `_`, `'`, `-`, not starting with a digit, `'`
// or `-`) that is not a keyword.
bool isPlainAttrName(const std::string & name);

// Joins names with `.`, quoting each name that is not plain as a Nix string
// (`"a.b"`, with `\"`, `\\` and `\$` escaped), so that the result is what
// one would write in a Nix expression to select the job.
std::string showAttrPath(const AttrPath & path);

} // namespace evolive
