// The HTTP API (docs/service.md): routes, authentication and request
// checks, on top of the EvaluationService and the PushService.
#pragma once

#include "config.hh"
#include "connection.hh"
#include "evaluation_service.hh"
#include "metrics.hh"
#include "push_service.hh"
#include "request_checks.hh"
#include "result_catalog.hh"

#include <atomic>

namespace evolive::server {

// Why the local directory `path` may not be read ("" when it may): it is
// not under one of `allowedPaths` (canonical), symlinks and `..` resolved.
std::string refusedLocalPath(const std::vector<std::string> & allowedPaths, const std::string & path);

class Api
{
public:
    Api(const ServerConfig & config, EvaluationService & evaluations, PushService & push, Metrics & metrics)
        : config_(config), evaluations_(evaluations), push_(push), metrics_(metrics), hosts_(config),
          catalog_(evaluations.resultStore())
    {
    }

    // Checks a request from its header, before its body is read: its
    // framing, Host and Origin (request_checks.hh), the token (before
    // routing: without one nothing says which endpoints exist), the route,
    // the body's size. Answers and returns false when it is refused (and
    // the connection then closes).
    bool admit(Connection & connection, const http::request_header<> & header);
    // Answers a request that admit() let through.
    void handle(Connection & connection, Request & request);
    // Counts a response the connection sent by itself (malformed requests).
    void counted(const Connection & connection) { metrics_.requestAnswered(connection.lastStatus()); }

private:
    bool admissible(Connection & connection, const http::request_header<> & header);
    bool authorized(const http::request_header<> & header) const;
    void submit(Connection & c, Request & request);
    void status(Connection & c, const std::string & fingerprint);
    void jobs(Connection & c, const std::string & fingerprint, const std::string & query);
    // The status page (src/web): its files, comparisons, previous evaluations.
    void diff(Connection & c, const std::string & old, const std::string & now, const std::string & query);
    // Streams an evaluation's lines from the first until it ends (or the
    // client goes: `connected` false), once the stream's header is sent.
    void streamLog(Connection & c, EvaluationLog & log, const std::string & fingerprint, bool connected);
    void log(Connection & c, const Request & request, const std::string & fingerprint, const std::string & query);
    void cancel(Connection & c, const std::string & fingerprint);
    void list(Connection & c, const std::string & query);
    void pushSocket(Connection & c, const Request & request);
    // Why a jobset's path inputs and local git repositories may not be read
    // here ("" when they may).
    std::string refusedPaths(const Jobset & jobset) const;

    const ServerConfig & config_;
    EvaluationService & evaluations_;
    PushService & push_;
    Metrics & metrics_;
    HostPolicy hosts_;
    std::atomic<size_t> webSockets_{0}; // open /v1/push sockets, at most max-websockets
    web::ResultCatalog catalog_;
};

} // namespace evolive::server
