// What the service tests need to talk to a real `evolive serve`: the server
// started on a free loopback port with its log in a file, an HTTP client
// (libcurl) that can read a stream line by line and hang up mid-way, and a
// reader for the Prometheus page.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <vector>

namespace evolive::test {

class EvoliveServer
{
public:
    // `evolive serve --listen 127.0.0.1:0 --state-dir STATE ARGS...`; waits
    // until it listens. Throws (with its log) when it does not.
    // `wrapper` runs it (e.g. {"prlimit", "--nofile=64:64", "--"}).
    EvoliveServer(const std::string & stateDir, const std::vector<std::string> & args = {},
                  const std::map<std::string, std::string> & env = {}, const std::vector<std::string> & wrapper = {});
    ~EvoliveServer(); // SIGTERM, then waits
    const std::string & url() const { return url_; }
    std::string log() const;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    std::string logFile_, url_;
};

struct HttpResponse
{
    long status = 0;
    std::string body, contentType;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One request; `headers` as "Name: value". A JSON body is sent with
// Content-Type: application/json unless `headers` names another.
HttpResponse httpRequest(const std::string & method, const std::string & url, const std::string & body = "",
                         const std::vector<std::string> & headers = {});

// POSTs `body` and reads the JSON lines of the answer as they come; stops
// reading (and hangs up) when `onLine` returns false. Returns the lines
// read, and the status in `status` when given.
std::vector<nlohmann::json> streamLines(const std::string & url, const std::string & body,
                                        const std::function<bool(const nlohmann::json &)> & onLine = {},
                                        const std::vector<std::string> & headers = {}, long * status = nullptr);

// Raw connections, for requests curl cannot make (bad framing, HTTP/1.0,
// idle sockets). connectTo opens a TCP connection to the server of `url`
// from `fromAddress` (any 127.x.y.z is loopback), with a small receive
// buffer when `receiveBuffer` is given, so that what the server sends
// piles up on its side while the test does not read.
int connectTo(const std::string & url, int receiveBuffer = 0, const std::string & fromAddress = "");
void sendAll(int fd, const std::string & data);
// Reads until the server closes the connection, or `timeout` passes with
// nothing read (then `closed`, when given, is set to false).
std::string readAll(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(30), bool * closed = nullptr);

// One raw exchange: connects, sends `request`, reads until the server
// closes (or 5 s pass without a byte). `closed` says which.
struct RawExchange
{
    std::string response;
    bool closed = false;
    // The status code of the first response, 0 if none.
    int status() const;
};
RawExchange rawRequest(const std::string & url, const std::string & request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

// "HOST:PORT" of `url`.
std::string hostPort(const std::string & url);

// GET /metrics as name{labels} → value.
std::map<std::string, double> readMetrics(const std::string & baseUrl);

// Calls `condition` until it holds or `timeout` passes (checking every
// 50 ms); returns whether it held.
bool eventually(const std::function<bool()> & condition, std::chrono::seconds timeout = std::chrono::seconds(60));

// A jobset document for a Nix file: a path input `src` (the file's folder)
// and string inputs; the server must allow the folder (--allow-path).
nlohmann::json fileJobset(const std::string & dir, const std::string & file,
                          const std::map<std::string, std::string> & strings = {});

} // namespace evolive::test
