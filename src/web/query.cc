#include "query.hh"

#include <algorithm>
#include <stdexcept>

namespace evolive::web {

namespace {

int hexDigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string decode(const std::string & s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') out += ' ';
        else if (s[i] == '%' && i + 2 < s.size() && hexDigit(s[i + 1]) >= 0 && hexDigit(s[i + 2]) >= 0) {
            out += (char) (hexDigit(s[i + 1]) * 16 + hexDigit(s[i + 2]));
            i += 2;
        } else out += s[i];
    }
    return out;
}

} // namespace

std::optional<std::string> queryValue(const std::string & query, const std::string & key)
{
    size_t start = 0;
    while (start <= query.size()) {
        auto end = std::min(query.find('&', start), query.size());
        auto pair = query.substr(start, end - start);
        auto eq = pair.find('=');
        if (decode(pair.substr(0, eq)) == key) return eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
        start = end + 1;
    }
    return std::nullopt;
}

size_t queryNumber(const std::string & query, const std::string & key, size_t fallback, size_t max)
{
    auto value = queryValue(query, key);
    if (!value) return fallback;
    if (value->empty() || value->size() > 12 || !std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw std::invalid_argument(key + ": '" + *value + "' is not a number");
    return std::min<size_t>(std::stoull(*value), max);
}

} // namespace evolive::web
