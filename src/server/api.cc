#include "api.hh"

#include "git_fetcher.hh"
#include "json_parse.hh"
#include "parquet_reader.hh"
#include "result_store.hh"
#include "query.hh"
#include "routes.hh"

#include <filesystem>
#include <fstream>
#include <set>
#include <sodium.h>
#include <spdlog/spdlog.h>

namespace evolive::server {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A request target taken apart: /v1/evaluations/FP/jobs?limit=5 gives
// the segments {"v1", "evaluations", "FP", "jobs"} and the query "limit=5".
struct Target
{
    std::vector<std::string> segments;
    std::string query;

    explicit Target(const std::string & target)
    {
        auto q = target.find('?');
        if (q != std::string::npos) query = target.substr(q + 1);
        auto path = target.substr(0, q);
        size_t start = 0;
        while (start < path.size()) {
            auto end = path.find('/', start);
            if (end == std::string::npos) end = path.size();
            if (end > start) segments.emplace_back(path.substr(start, end - start));
            start = end + 1;
        }
    }

    bool is(std::initializer_list<const char *> names) const
    {
        if (segments.size() != names.size()) return false;
        size_t i = 0;
        for (auto * name : names) {
            if (*name != '*' && segments[i] != name) return false;
            ++i;
        }
        return true;
    }
};

// `/` and `/ui/NAME`: the status page's files, served without a token (they
// hold no data; the page asks for a token when the API wants one).
bool isPageFile(const Target & t)
{
    return t.segments.empty() || (t.segments.size() == 2 && t.segments[0] == "ui");
}

void reply(Connection & c, const web::Answer & answer)
{
    c.respond(http::status(answer.status), answer.contentType, answer.body, answer.headers);
}

// The methods a path answers to; empty for a path that does not exist.
std::set<http::verb> methodsFor(const Target & t)
{
    if (t.is({"healthz"}) || t.is({"metrics"}) || t.is({"v1", "push"})) return {http::verb::get};
    if (t.is({"v1", "evaluations"})) return {http::verb::get, http::verb::post};
    if (t.is({"v1", "evaluations", "*"})) return {http::verb::get, http::verb::delete_};
    if (t.is({"v1", "evaluations", "*", "jobs"}) || t.is({"v1", "evaluations", "*", "log"})) return {http::verb::get};
    // The status page (src/web): its files, comparisons, previous evaluations.
    if (isPageFile(t) || t.is({"v1", "evaluations", "*", "diff", "*"}) || t.is({"v1", "evaluations", "*", "previous"}))
        return {http::verb::get};
    return {};
}

size_t queryNumber(const std::string & query, const std::string & key, size_t fallback)
{
    auto at = ("&" + query).find("&" + key + "=");
    if (at == std::string::npos) return fallback;
    try {
        return std::stoul(query.substr(at + key.size() + 1));
    } catch (...) {
        return fallback;
    }
}

bool underDirectory(const fs::path & path, const fs::path & dir)
{
    auto rel = path.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
}

} // namespace

bool Api::authorized(const http::request_header<> & header) const
{
    if (config_.tokens.empty()) return true;
    auto value = header[http::field::authorization];
    if (value.size() < 7 || !beast::iequals(value.substr(0, 7), "Bearer ")) return false;
    auto given = value.substr(7);
    bool ok = false;
    // Every token is compared, in constant time, whatever matched.
    for (auto & token : config_.tokens)
        if (token.size() == given.size() && sodium_memcmp(token.data(), given.data(), token.size()) == 0) ok = true;
    return ok;
}

bool Api::admit(Connection & c, const http::request_header<> & header)
{
    // A refusal closes the connection, and says so.
    bool keep = c.keepsAlive();
    c.keepAlive(false);
    if (!admissible(c, header)) {
        counted(c);
        return false;
    }
    c.keepAlive(keep);
    return true;
}

bool Api::admissible(Connection & c, const http::request_header<> & header)
{
    if (auto refusal = framingProblem(header)) return c.error(refusal->status, refusal->message), false;
    if (auto refusal = hosts_.checkHost(header)) return c.error(refusal->status, refusal->message), false;
    switch (hosts_.origin(header)) {
    case HostPolicy::Origin::Foreign:
        return c.error(http::status::forbidden, "requests from pages of other sites (Origin: " +
                                                    std::string(header[http::field::origin].substr(0, 256)) +
                                                    ") are refused; allowed-origins lists the origins that may call "
                                                    "this server"),
               false;
    case HostPolicy::Origin::Allowed:
        c.addHeader("Access-Control-Allow-Origin", std::string(header[http::field::origin]));
        c.addHeader("Vary", "Origin");
        if (header.method() == http::verb::options && header.count(http::field::access_control_request_method)) {
            // A preflight: it carries no token, by design.
            c.addHeader("Access-Control-Allow-Methods", "GET, POST, DELETE");
            c.addHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
            c.addHeader("Access-Control-Max-Age", "600");
            return c.respond(http::status::no_content, "text/plain", ""), false;
        }
        break;
    case HostPolicy::Origin::Same:
    case HostPolicy::Origin::None: break;
    }
    Target target(std::string(header.target()));
    // Public without a token: /healthz, and the status page's static
    // files (they hold no data; the page asks for a token itself).
    bool open = target.is({"healthz"}) || (header.method() == http::verb::get && isPageFile(target));
    if (!open && !authorized(header))
        return c.error(http::status::unauthorized, "a valid bearer token is required (Authorization: Bearer TOKEN)"), false;
    auto methods = methodsFor(target);
    if (methods.empty()) return c.error(http::status::not_found, "no such endpoint: " + std::string(header.target())), false;
    if (!methods.count(header.method()))
        return c.error(http::status::method_not_allowed,
                       std::string(header.method_string()) + " is not allowed on " + std::string(header.target())),
               false;
    if (auto length = header[http::field::content_length]; !length.empty()) {
        size_t n = 0;
        try {
            n = std::stoull(std::string(length));
        } catch (...) {
            return c.error(http::status::bad_request, "Content-Length is not a number"), false;
        }
        if (n > config_.maxRequestBytes)
            return c.error(http::status::payload_too_large, "the request body is larger than " +
                                                                std::to_string(config_.maxRequestBytes) +
                                                                " bytes (max-request-bytes)"),
                   false;
    }
    return true;
}

void Api::handle(Connection & c, Request & request)
{
    auto started = std::chrono::steady_clock::now();
    Target t(std::string(request.target()));
    auto method = request.method();
    try {
        if (t.is({"healthz"})) c.respond(http::status::ok, json{{"status", "ok"}});
        else if (isPageFile(t)) {
            auto file = web::pageFile(t.segments.empty() ? "/" : "/ui/" + t.segments[1]);
            file ? reply(c, *file) : (void) c.error(http::status::not_found, "no such file: " + std::string(request.target()));
        }
        else if (t.is({"metrics"})) {
            auto gauges = evaluations_.gauges();
            gauges.merge(push_.gauges());
            c.respond(http::status::ok, "text/plain; version=0.0.4", metrics_.render(gauges));
        }
        else if (t.is({"v1", "push"})) pushSocket(c, request);
        else if (t.is({"v1", "evaluations"})) method == http::verb::post ? submit(c, request) : list(c, t.query);
        else if (!results::isFingerprint(t.segments[2]))
            c.error(http::status::not_found, "'" + t.segments[2] + "' is not a fingerprint (64 hexadecimal digits)");
        else if (t.segments.size() == 5) diff(c, t.segments[2], t.segments[4], t.query);
        else if (t.segments.size() == 4 && t.segments[3] == "previous") reply(c, web::previousAnswer(catalog_, t.segments[2]));
        else if (t.segments.size() == 4)
            t.segments[3] == "jobs" ? jobs(c, t.segments[2], t.query) : log(c, request, t.segments[2], t.query);
        else method == http::verb::delete_ ? cancel(c, t.segments[2]) : status(c, t.segments[2]);
    } catch (std::exception & e) {
        spdlog::error("{} {}: {}", std::string(request.method_string()), std::string(request.target()), e.what());
        if (!c.streaming()) c.error(http::status::internal_server_error, e.what());
        else {
            // The status line went out long ago: the stream itself says it
            // failed, and ends.
            json failed{{"type", "failed"}, {"stage", "server"}, {"message", e.what()}};
            if (t.segments.size() > 2 && results::isFingerprint(t.segments[2])) failed["fingerprint"] = t.segments[2];
            if (c.writeChunk(jsonLine(failed) + "\n")) c.endStream();
        }
    }
    metrics_.requestAnswered(c.lastStatus());
    spdlog::info("{} {} {} {:.3f}s", std::string(request.method_string()), std::string(request.target()), c.lastStatus(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

std::string refusedLocalPath(const std::vector<std::string> & allowedPaths, const std::string & given)
{
    std::error_code ec;
    auto path = fs::weakly_canonical(given, ec);
    for (auto & dir : allowedPaths)
        if (!ec && underDirectory(path, dir)) return "";
    return "'" + given + "' is not under a directory this server allows" +
           (allowedPaths.empty() ? " (allowed-paths is empty: local directories are refused)" : " (allowed-paths)");
}

std::string Api::refusedPaths(const Jobset & jobset) const
{
    // Path inputs and local git repositories alike; a repository's local
    // submodules are vetted by the fetcher (EvaluationSettings::checkLocalPath).
    for (auto & [name, input] : jobset.inputs) {
        if (input.type == InputType::Path) {
            if (auto why = refusedLocalPath(config_.allowedPaths, input.path); !why.empty()) return "inputs." + name + ".path: " + why;
        } else if (input.type == InputType::Git) {
            std::optional<std::string> local;
            try {
                local = localGitPath(input.git.url);
            } catch (std::exception & e) {
                return "inputs." + name + ".url: " + e.what();
            }
            if (local)
                if (auto why = refusedLocalPath(config_.allowedPaths, *local); !why.empty()) return "inputs." + name + ".url: " + why;
        }
    }
    return "";
}

void Api::submit(Connection & c, Request & request)
{
    // A media type is matched without case; parameters (charset) do not matter.
    auto contentType = request[http::field::content_type];
    auto mediaType = contentType.substr(0, contentType.find(';'));
    while (!mediaType.empty() && (mediaType.back() == ' ' || mediaType.back() == '\t')) mediaType.remove_suffix(1);
    if (!beast::iequals(mediaType, "application/json"))
        return (void) c.error(http::status::unsupported_media_type, "the request body must be JSON (Content-Type: application/json)");
    json document;
    try {
        document = parseJson(request.body(), "the request body");
    } catch (JsonParseError & e) {
        return (void) c.error(http::status::bad_request, e.what());
    }
    if (!document.is_object()) return (void) c.error(http::status::bad_request, "the request body must be a JSON object (a jobset)");
    bool force = false;
    if (document.contains("force")) {
        if (!document["force"].is_boolean()) return (void) c.error(http::status::bad_request, "force: must be true or false");
        force = document["force"];
        document.erase("force");
    }
    Jobset jobset;
    try {
        jobset = parseJobset(document);
    } catch (JobsetError & e) {
        return (void) c.error(http::status::bad_request, e.what());
    }
    if (auto why = refusedPaths(jobset); !why.empty()) return (void) c.error(http::status::forbidden, why);
    if (jobset.options.fleet.value_or(false) && config_.fleet.redis.empty())
        return (void) c.error(http::status::bad_request,
                              "options.fleet: this server has no fleet (start it with --fleet or [fleet] redis)");

    // The first line goes out before fetching starts.
    auto ticket = evaluations_.accept();
    if (!c.startStream("application/x-ndjson")) return;
    bool connected = c.writeChunk(json{{"type", "accepted"}, {"queue", ticket.position()}}.dump() + "\n");
    auto stream = evaluations_.submit(std::move(jobset), force, std::move(ticket));
    if (stream.joined && connected)
        connected = c.writeChunk(json{{"type", "joined"}, {"fingerprint", stream.fingerprint}}.dump() + "\n");
    streamLog(c, *stream.log, stream.fingerprint, connected);
}

void Api::streamLog(Connection & c, EvaluationLog & log, const std::string & fingerprint, bool connected)
{
    // A client that went away is not waited for; the evaluation goes on.
    for (size_t next = 0; connected;) {
        auto batch = log.read(next, 256 * 1024);
        connected = c.writeChunk(batch.data);
        if (connected) metrics_.bytesStreamed += batch.data.size();
        next = batch.next;
        if (batch.end) break;
    }
    if (connected) c.endStream();
    else if (c.timedOut()) {
        metrics_.clientsDropped++;
        spdlog::warn("a client of {} did not read for {} s: dropped", fingerprint, config_.writeTimeout.count());
    }
}

void Api::diff(Connection & c, const std::string & old, const std::string & now, const std::string & query)
{
    if (!results::isFingerprint(now))
        return (void) c.error(http::status::not_found, "'" + now + "' is not a fingerprint (64 hexadecimal digits)");
    auto oldPath = evaluations_.storedResult(old), newPath = evaluations_.storedResult(now);
    for (auto & [fingerprint, path] : {std::pair{old, oldPath}, std::pair{now, newPath}})
        if (!path)
            return (void) c.error(http::status::not_found, "no stored result for fingerprint " + fingerprint +
                                                               (evaluations_.running(fingerprint) ? " (still running)" : ""));
    reply(c, web::diffAnswer(*oldPath, *newPath, query));
}

void Api::status(Connection & c, const std::string & fingerprint)
{
    if (auto found = evaluations_.status(fingerprint)) c.respond(http::status::ok, *found);
    else c.error(http::status::not_found, "no evaluation with fingerprint " + fingerprint);
}

void Api::jobs(Connection & c, const std::string & fingerprint, const std::string & query)
{
    if (auto log = evaluations_.running(fingerprint)) {
        // Still running: every line as it comes (follow), a page of the
        // jobs found so far, or all of them.
        if (web::queryValue(query, "follow").value_or("0") != "0")
            return c.startStream("application/x-ndjson") ? streamLog(c, *log, fingerprint, true) : void();
        if (web::isJobPageQuery(query)) return reply(c, web::jobPageFromLines(log->jobs(), query));
        c.respond(http::status::ok, "application/x-ndjson", log->jobs());
        return;
    }
    auto path = evaluations_.storedResult(fingerprint);
    if (!path) return (void) c.error(http::status::not_found, "no stored result for fingerprint " + fingerprint);
    if (web::isJobPageQuery(query)) return reply(c, web::jobPageAnswer(*path, query));
    if (!c.startStream("application/x-ndjson")) return;
    std::string pending;
    bool connected = true;
    results::readParquet(*path, [&](auto & columns, auto & row) {
        if (!connected) return;
        pending += jobLineFromRow(columns, row) + "\n";
        if (pending.size() > 256 * 1024) {
            connected = c.writeChunk(pending);
            pending.clear();
        }
    });
    if (connected && c.writeChunk(pending)) c.endStream();
}

void Api::cancel(Connection & c, const std::string & fingerprint)
{
    switch (evaluations_.cancel(fingerprint)) {
    case EvaluationService::Cancel::Cancelled:
        c.respond(http::status::accepted, json{{"fingerprint", fingerprint}, {"status", "cancelling"}});
        break;
    case EvaluationService::Cancel::AlreadyEnded:
        c.error(http::status::conflict, "evaluation " + fingerprint + " has already ended");
        break;
    case EvaluationService::Cancel::Unknown:
        c.error(http::status::not_found, "no evaluation with fingerprint " + fingerprint);
        break;
    }
}

void Api::list(Connection & c, const std::string & query)
{
    c.respond(http::status::ok, json{{"evaluations", evaluations_.recent(std::min<size_t>(queryNumber(query, "limit", 50), 1000))}});
}

} // namespace evolive::server
