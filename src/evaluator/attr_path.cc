#include "attr_path.hh"

#include <array>
#include <string_view>

namespace evolive {

namespace {

bool isIdentStart(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool isIdentChar(char c)
{
    return isIdentStart(c) || (c >= '0' && c <= '9') || c == '\'' || c == '-';
}

constexpr std::array<std::string_view, 10> keywords = {
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"};

} // namespace

bool isPlainAttrName(const std::string & name)
{
    if (name.empty() || !isIdentStart(name[0])) return false;
    for (char c : name)
        if (!isIdentChar(c)) return false;
    for (auto k : keywords)
        if (name == k) return false;
    return true;
}

std::string showAttrPath(const AttrPath & path)
{
    std::string out;
    for (size_t i = 0; i < path.size(); ++i) {
        if (i) out += '.';
        const auto & name = path[i];
        if (isPlainAttrName(name)) {
            out += name;
            continue;
        }
        out += '"';
        for (size_t j = 0; j < name.size(); ++j) {
            char c = name[j];
            if (c == '"' || c == '\\') out += '\\';
            // `${` would start an interpolation inside a Nix string.
            if (c == '$' && j + 1 < name.size() && name[j + 1] == '{') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out;
}

} // namespace evolive
