#include "request_checks.hh"

#include <algorithm>
#include <cctype>
#include <vector>

namespace evolive::server {

namespace http = boost::beast::http;

namespace {

using boost::beast::string_view;

std::string lower(string_view s)
{
    std::string out(s.data(), s.size());
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return out;
}

std::string trim(string_view s)
{
    auto start = s.find_first_not_of(" \t");
    if (start == string_view::npos) return "";
    auto kept = s.substr(start, s.find_last_not_of(" \t") - start + 1);
    return std::string(kept.data(), kept.size());
}

// The name in HOST, HOST:PORT, [V6] or [V6]:PORT; "" when it is none of them.
std::string hostName(const std::string & host)
{
    auto digits = [](const std::string & s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch); });
    };
    if (!host.empty() && host[0] == '[') {
        auto close = host.find(']');
        if (close == std::string::npos) return "";
        auto rest = host.substr(close + 1);
        if (!rest.empty() && (rest[0] != ':' || !digits(rest.substr(1)))) return "";
        return host.substr(1, close - 1);
    }
    auto colon = host.find(':');
    if (colon == std::string::npos) return host;
    if (host.find(':', colon + 1) != std::string::npos || !digits(host.substr(colon + 1))) return "";
    return host.substr(0, colon);
}

} // namespace

std::optional<Refusal> framingProblem(const http::request_header<> & header)
{
    auto hosts = header.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && header.version() >= 11))
        return Refusal{http::status::bad_request, "an HTTP/1.1 request needs exactly one Host header"};
    std::vector<std::string> codings;
    for (auto [it, end] = header.equal_range(http::field::transfer_encoding); it != end; ++it) {
        string_view value = it->value();
        for (size_t start = 0; start <= value.size();) {
            auto comma = std::min(value.find(',', start), value.size());
            if (auto coding = lower(trim(value.substr(start, comma - start))); !coding.empty()) codings.push_back(coding);
            start = comma + 1;
        }
    }
    if (codings.empty() && header.count(http::field::transfer_encoding) == 0) return std::nullopt;
    if (header.version() < 11)
        return Refusal{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request is refused: its framing "
                                                  "cannot be trusted"};
    if (header.count(http::field::content_length))
        return Refusal{http::status::bad_request, "a request must not have both Transfer-Encoding and Content-Length"};
    if (codings.empty() || codings.back() != "chunked")
        return Refusal{http::status::bad_request, "Transfer-Encoding: chunked must be the last coding, or the body's "
                                                  "length cannot be known (only \"Transfer-Encoding: chunked\" is accepted)"};
    if (std::count(codings.begin(), codings.end(), "chunked") > 1)
        return Refusal{http::status::bad_request, "Transfer-Encoding: chunked may be applied only once"};
    if (codings.size() > 1)
        return Refusal{http::status::not_implemented,
                       "Transfer-Encoding '" + codings.front() + "' is not implemented: send the body chunked only"};
    return std::nullopt;
}

HostPolicy::HostPolicy(const ServerConfig & config)
    : checked_(config.tokens.empty() || !config.allowedHosts.empty()),
      names_{"localhost", "127.0.0.1", "::1"},
      origins_(config.allowedOrigins.begin(), config.allowedOrigins.end())
{
    // The address it listens on, as clients write it.
    names_.insert(hostName(lower(config.listen)));
    for (auto & host : config.allowedHosts) {
        // With a port, only that port; without, any.
        if (hostName(host) == host) names_.insert(host);
        else hostPorts_.insert(host);
    }
}

std::optional<Refusal> HostPolicy::checkHost(const http::request_header<> & header) const
{
    if (!checked_) return std::nullopt;
    auto host = lower(trim(header[http::field::host]));
    if (host.empty() && header.version() < 11) return std::nullopt; // HTTP/1.0: not a browser
    auto name = hostName(host);
    if ((!name.empty() && names_.count(name)) || hostPorts_.count(host)) return std::nullopt;
    return Refusal{http::status::forbidden,
                   "Host '" + host.substr(0, 256) +
                       "' is not a name of this server: a server without tokens answers only to localhost, 127.0.0.1, "
                       "[::1] and the names in allowed-hosts, so that pages of other sites cannot reach it through DNS "
                       "rebinding"};
}

HostPolicy::Origin HostPolicy::origin(const http::request_header<> & header) const
{
    if (header.count(http::field::origin) == 0) return Origin::None;
    auto origin = lower(trim(header[http::field::origin]));
    if (origins_.count(origin)) return Origin::Allowed;
    // The same origin: a page this server served names it as its Host.
    auto scheme = origin.find("://");
    if (scheme != std::string::npos && origin.substr(scheme + 3) == lower(trim(header[http::field::host])) &&
        origin.find('/', scheme + 3) == std::string::npos)
        return Origin::Same;
    return Origin::Foreign;
}

} // namespace evolive::server
