// The attribute paths given to `evolive-eval-jobs --paths FILE`: a JSON
// array of attribute paths, each an array of names, as job lines'
// `attrPath` and --list-paths' lines have them. No Nix headers: shared with
// tests.
#pragma once

#include "attr_path.hh"

#include <string_view>
#include <vector>

namespace evolive {

// Parses `text`; a path given twice is kept once (the first time). Throws
// std::invalid_argument (or JsonParseError for text that is not JSON)
// saying what is wrong and where, e.g. "element 2 is not an array of
// strings".
std::vector<AttrPath> parseAttrPathList(std::string_view text);

} // namespace evolive
