#include "json_parse.hh"

namespace evolive {

size_t jsonDepth(std::string_view text)
{
    size_t depth = 0, deepest = 0;
    bool inString = false, escaped = false;
    for (char c : text) {
        if (inString) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') inString = false;
            continue;
        }
        switch (c) {
        case '"': inString = true; break;
        case '[':
        case '{':
            if (++depth > deepest) deepest = depth;
            break;
        case ']':
        case '}':
            if (depth > 0) --depth;
            break;
        default: break;
        }
    }
    return deepest;
}

nlohmann::json parseJson(std::string_view text, const std::string & what, size_t maxDepth)
{
    // Counted before parsing, so that no deep value is ever built.
    if (jsonDepth(text) > maxDepth)
        throw JsonParseError(what + ": nested deeper than " + std::to_string(maxDepth) + " levels");
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception & e) {
        throw JsonParseError(what + ": " + e.what());
    }
}

} // namespace evolive
