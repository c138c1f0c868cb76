// One client connection, served on a thread of its own with blocking-style
// calls that still time out: each read or write runs as an asynchronous
// Beast operation on the connection's private io_context, with the
// stream's deadline set first. A client that sends nothing, or stops
// reading what it is sent, is dropped after the configured timeout without
// holding anything else up.
#pragma once

#include <utility> // before Asio: Boost 1.74's awaitable.hpp misses it under g++ 12
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace evolive::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;

class Api;

class Connection
{
public:
    struct Settings
    {
        std::chrono::seconds header, read, write; // header-timeout, read-timeout, write-timeout
        size_t maxBodyBytes;                      // max-request-bytes
    };
    // A request's header is at most this large (Beast's default), its
    // trailer a little more: the read buffer holds no more than this, so a
    // trailer over it ends in a 431, never in the parser's own field limit
    // (which throws).
    static constexpr size_t maxHeaderBytes = 8 * 1024, maxBufferedBytes = 16 * 1024;

    explicit Connection(Settings settings);
    net::io_context & context() { return context_; }
    tcp::socket & socket() { return beast::get_lowest_layer(stream_).socket(); }

    // Reads requests and answers them through `api` until the client or
    // the api closes the connection. Never throws.
    void serve(Api & api);

    // A header for every response to the current request (CORS).
    void addHeader(const std::string & name, const std::string & value) { extraHeaders_.emplace_back(name, value); }
    // Answers for the Api. Each returns false when the client is gone.
    bool respond(http::status status, const nlohmann::json & body);
    bool respond(http::status status, const std::string & contentType, std::string body);
    bool respond(http::status status, const std::string & contentType, std::string body,
                 const std::vector<std::pair<std::string, std::string>> & headers);
    bool error(http::status status, const std::string & message) { return respond(status, {{"error", message}}); }
    // `length` bytes of the file `fd` from `offset`, read and sent a piece
    // at a time (never the whole in memory). `headers` go with it.
    bool respondFile(http::status status, const std::string & contentType, int fd, uint64_t offset, uint64_t length,
                     const std::vector<std::pair<std::string, std::string>> & headers = {});
    // A streamed response, written piece by piece; the connection closes
    // after it. Chunked for HTTP/1.1; for HTTP/1.0, the body ends where
    // the connection does.
    bool startStream(const std::string & contentType);
    bool writeChunk(const std::string & data);
    bool endStream();
    // Whether a streamed response has started: an error can then only be
    // told in the stream itself.
    bool streaming() const { return streaming_; }
    // Upgrades to a WebSocket and hands it to `session` (see push_socket.cc).
    using WebSocket = websocket::stream<beast::tcp_stream>;
    struct WebSocketSettings
    {
        std::chrono::seconds ping;   // a peer silent this long (pings unanswered) is dropped
        size_t maxMessageBytes;
    };
    bool upgrade(const Request & request, const WebSocketSettings & settings,
                 const std::function<void(WebSocket &, Connection &)> & session);

    // Runs one asynchronous operation to its end (its deadline, if any, is
    // set before). Only until its handler has run: a WebSocket keeps a
    // timer pending all the time, so the context never runs out of work.
    template<class Start> beast::error_code await(Start && start)
    {
        return awaitUntil(std::chrono::steady_clock::time_point::max(), std::forward<Start>(start), [] {});
    }
    // The same with a deadline: when it passes first, `cancel` is called
    // (it must make the operation end, e.g. by closing its socket) and the
    // result is net::error::timed_out.
    template<class Start, class Cancel>
    beast::error_code awaitUntil(std::chrono::steady_clock::time_point deadline, Start && start, Cancel && cancel)
    {
        beast::error_code result;
        bool done = false;
        start([&](beast::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
        context_.restart();
        bool forever = deadline == std::chrono::steady_clock::time_point::max();
        while (!done && (forever ? context_.run_one() : context_.run_one_until(deadline))) {}
        if (done || forever) return result;
        cancel();
        while (!done && context_.run_one()) {}
        return net::error::timed_out;
    }

    // Whether the connection stays open after the response.
    void keepAlive(bool keep) { keepAlive_ = keep; }
    bool keepsAlive() const { return keepAlive_; }
    bool timedOut() const { return timedOut_; }
    unsigned lastStatus() const { return lastStatus_; }
    // The request's HTTP version: 10 or 11.
    unsigned version() const { return version_; }

private:
    void serveRequests(Api & api);
    void closeGracefully();
    bool refuse(Api & api, http::status status, const std::string & message);
    bool readFailed(Api & api, beast::error_code ec, bool headerRead, const std::string & thrown);
    template<class Response> void decorate(Response & response);
    bool write(const std::function<void(std::function<void(beast::error_code, std::size_t)>)> & start);

    net::io_context context_{1};
    beast::tcp_stream stream_{context_};
    beast::flat_buffer buffer_{maxBufferedBytes};
    Settings settings_;
    std::vector<std::pair<std::string, std::string>> extraHeaders_;
    bool keepAlive_ = true;
    bool timedOut_ = false;
    bool streaming_ = false;
    unsigned lastStatus_ = 0;
    unsigned version_ = 11;
};

} // namespace evolive::server
