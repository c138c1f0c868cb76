// Checks on a request's header made before it is routed, so that no
// request gets past them by naming an endpoint that does not exist:
// framing that HTTP/1.1 forbids (RFC 9112 §6), Host names that are not
// this server's (DNS rebinding) and pages of other sites (Origin).
// docs/security.md says why each is there.
#pragma once

#include "config.hh"

#include <boost/beast/http.hpp>
#include <optional>
#include <set>
#include <string>

namespace evolive::server {

struct Refusal
{
    boost::beast::http::status status;
    std::string message;
};

// A request whose body's length cannot be known for sure: Transfer-Encoding
// other than exactly `chunked`, or with Content-Length, or in HTTP/1.0; or
// an HTTP/1.1 request without exactly one Host. The connection must close.
std::optional<Refusal> framingProblem(const boost::beast::http::request_header<> & header);

class HostPolicy
{
public:
    explicit HostPolicy(const ServerConfig & config);

    // Without tokens (or with allowed-hosts set), a Host that is not a
    // loopback name, the listening address or an allowed host is refused.
    std::optional<Refusal> checkHost(const boost::beast::http::request_header<> & header) const;

    enum class Origin
    {
        None,    // no Origin: not a browser's request from a page
        Same,    // a page this server served
        Allowed, // a configured origin: gets CORS headers
        Foreign, // another site's page: refused
    };
    Origin origin(const boost::beast::http::request_header<> & header) const;

private:
    bool checked_;
    std::set<std::string> names_;      // host names, any port
    std::set<std::string> hostPorts_;  // HOST:PORT as sent
    std::set<std::string> origins_;    // allowed-origins
};

} // namespace evolive::server
