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
    struct Timeouts
    {
        std::chrono::seconds read, write;
    };
    Connection(Timeouts timeouts, size_t maxBodyBytes);
    net::io_context & context() { return context_; }
    tcp::socket & socket() { return beast::get_lowest_layer(stream_).socket(); }

    // Reads requests and answers them through `api` until the client or
    // the api closes the connection.
    void serve(Api & api);

    // Answers for the Api. Each returns false when the client is gone.
    bool respond(http::status status, const nlohmann::json & body);
    bool respond(http::status status, const std::string & contentType, std::string body);
    bool respond(http::status status, const std::string & contentType, std::string body,
                 const std::vector<std::pair<std::string, std::string>> & headers);
    bool error(http::status status, const std::string & message) { return respond(status, {{"error", message}}); }
    // A chunked response, written piece by piece; the connection closes after it.
    bool startStream(const std::string & contentType);
    bool writeChunk(const std::string & data);
    bool endStream();
    // Upgrades to a WebSocket and hands it to `session` (see push_socket.hh).
    using WebSocket = websocket::stream<beast::tcp_stream>;
    bool upgrade(const Request & request, const std::function<void(WebSocket &, Connection &)> & session);

    // Runs one asynchronous operation to its end (its deadline, if any, is
    // set before). Only until its handler has run: a WebSocket keeps a
    // timer pending all the time, so the context never runs out of work.
    template<class Start> beast::error_code await(Start && start)
    {
        beast::error_code result;
        bool done = false;
        start([&](beast::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
        context_.restart();
        while (!done && context_.run_one()) {}
        return result;
    }

    bool timedOut() const { return timedOut_; }
    unsigned lastStatus() const { return lastStatus_; }

private:
    void serveRequests(Api & api);
    void closeGracefully();
    void tooLarge(Api & api);
    bool write(const std::function<void(std::function<void(beast::error_code, std::size_t)>)> & start);

    net::io_context context_{1};
    beast::tcp_stream stream_{context_};
    beast::flat_buffer buffer_;
    Timeouts timeouts_;
    size_t maxBodyBytes_;
    bool keepAlive_ = true;
    bool timedOut_ = false;
    unsigned lastStatus_ = 0;
};

} // namespace evolive::server
