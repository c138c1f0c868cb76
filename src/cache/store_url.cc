#include "store_url.hh"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace evolive::cache {

namespace {

std::string percentDecode(const std::string & s, const std::string & url)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || !isxdigit((unsigned char) s[i + 1]) || !isxdigit((unsigned char) s[i + 2]))
            throw std::invalid_argument("malformed percent-encoding in '" + url + "'");
        out += (char) std::stoi(s.substr(i + 1, 2), nullptr, 16);
        i += 2;
    }
    if (out.find('\0') != std::string::npos) throw std::invalid_argument("a NUL byte in '" + url + "'");
    return out;
}

} // namespace

StoreUrl StoreUrl::parse(const std::string & url)
{
    StoreUrl u;
    u.text_ = url;
    std::string rest;
    if (url.rfind("s3://", 0) == 0) {
        u.kind_ = Kind::S3;
        rest = url.substr(5);
    } else if (url.rfind("file://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.find("://") != std::string::npos) {
        throw std::invalid_argument("'" + url + "' is not a store URL evolive writes to (a directory, file://DIR or "
                                    "s3://BUCKET)");
    } else {
        u.location_ = url; // evolive's own form: the directory as it is
        if (url.empty()) throw std::invalid_argument("an empty store URL");
        return u;
    }
    // The location as it is, as Nix 2.8 takes it (`file:///srv/a%20b` is
    // the directory `a%20b`); parameter values are percent-decoded.
    auto q = rest.find('?');
    u.location_ = rest.substr(0, q);
    if (u.kind_ == Kind::S3 && (u.location_.empty() || u.location_.find('/') != std::string::npos))
        throw std::invalid_argument("an S3 URL needs a bucket name (s3://BUCKET?...): " + url);
    if (u.kind_ == Kind::Directory && u.location_.empty())
        throw std::invalid_argument("a file:// URL needs a directory (file:///DIR): " + url);
    if (q == std::string::npos) return u;
    auto query = rest.substr(q + 1);
    for (size_t start = 0; start <= query.size();) {
        auto end = std::min(query.find('&', start), query.size());
        auto pair = query.substr(start, end - start);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            auto name = percentDecode(pair.substr(0, eq), url);
            auto value = eq == std::string::npos ? "" : percentDecode(pair.substr(eq + 1), url);
            if (!u.params_.emplace(name, value).second)
                throw std::invalid_argument("parameter '" + name + "' is given twice in '" + url + "'");
        }
        start = end + 1;
    }
    return u;
}

std::optional<std::string> StoreUrl::take(const std::string & name, const std::vector<std::string> & aliases)
{
    std::optional<std::string> found;
    std::vector<std::string> names{name};
    names.insert(names.end(), aliases.begin(), aliases.end());
    for (auto & n : names) {
        asked_.push_back(n);
        auto it = params_.find(n);
        if (it == params_.end()) continue;
        if (found) throw std::invalid_argument("'" + name + "' is given twice (as '" + n + "' too) in '" + text_ + "'");
        found = it->second;
        params_.erase(it);
    }
    return found;
}

std::optional<bool> StoreUrl::takeBool(const std::string & name)
{
    auto v = take(name);
    if (!v) return std::nullopt;
    if (*v == "true" || *v == "1") return true;
    if (*v == "false" || *v == "0") return false;
    throw std::invalid_argument("parameter '" + name + "' must be true or false, not '" + *v + "', in '" + text_ + "'");
}

std::optional<int64_t> StoreUrl::takeInteger(const std::string & name)
{
    auto v = take(name);
    if (!v) return std::nullopt;
    size_t end = 0;
    int64_t n = 0;
    try {
        n = std::stoll(*v, &end);
    } catch (std::exception &) {
        end = 0;
    }
    if (v->empty() || end != v->size())
        throw std::invalid_argument("parameter '" + name + "' must be a whole number, not '" + *v + "', in '" + text_ + "'");
    return n;
}

std::optional<uint64_t> StoreUrl::takeCount(const std::string & name, const std::vector<std::string> & aliases)
{
    auto v = take(name, aliases);
    if (!v) return std::nullopt;
    size_t end = 0;
    uint64_t n = 0;
    try {
        n = std::stoull(*v, &end);
    } catch (std::exception &) {
        end = 0;
    }
    if (v->empty() || (*v)[0] == '-' || end != v->size())
        throw std::invalid_argument("parameter '" + name + "' must be a number of bytes, not '" + *v + "', in '" +
                                    text_ + "'");
    return n;
}

void StoreUrl::refuseRest(const std::string & what) const
{
    if (params_.empty()) return;
    auto names = asked_;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::string list;
    for (auto & n : names) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown parameter '" + params_.begin()->first + "' in '" + text_ + "' (" + what +
                                (list.empty() ? " takes none" : " takes: " + list) + ")");
}

void StoreUrl::refuse(const std::string & name, const std::string & value, const std::string & why) const
{
    throw std::invalid_argument("parameter '" + name + "=" + value + "' in '" + text_ + "' is not supported: " + why);
}

} // namespace evolive::cache
