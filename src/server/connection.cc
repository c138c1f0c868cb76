#include "connection.hh"

#include "api.hh"

namespace evolive::server {

Connection::Connection(Timeouts timeouts, size_t maxBodyBytes) : timeouts_(timeouts), maxBodyBytes_(maxBodyBytes) {}

bool Connection::write(const std::function<void(std::function<void(beast::error_code, std::size_t)>)> & start)
{
    stream_.expires_after(timeouts_.write);
    auto ec = await(start);
    if (ec == beast::error::timeout) timedOut_ = true;
    return !ec;
}

bool Connection::respond(http::status status, const std::string & contentType, std::string body)
{
    return respond(status, contentType, std::move(body), {});
}

bool Connection::respond(http::status status, const std::string & contentType, std::string body,
                         const std::vector<std::pair<std::string, std::string>> & headers)
{
    http::response<http::string_body> response{status, 11};
    for (auto & [name, value] : headers) response.set(name, value);
    response.set(http::field::server, "evolive");
    response.set(http::field::content_type, contentType);
    if (status == http::status::unauthorized) response.set(http::field::www_authenticate, "Bearer");
    response.keep_alive(keepAlive_);
    response.body() = std::move(body);
    response.prepare_payload();
    lastStatus_ = (unsigned) status;
    return write([&](auto handler) { http::async_write(stream_, response, handler); });
}

bool Connection::respond(http::status status, const nlohmann::json & body)
{
    return respond(status, "application/json", jsonLine(body) + "\n");
}

bool Connection::startStream(const std::string & contentType)
{
    http::response<http::empty_body> response{http::status::ok, 11};
    response.set(http::field::server, "evolive");
    response.set(http::field::content_type, contentType);
    response.set(http::field::cache_control, "no-store");
    response.chunked(true);
    response.keep_alive(false);
    keepAlive_ = false;
    lastStatus_ = 200;
    http::response_serializer<http::empty_body> serializer{response};
    return write([&](auto handler) { http::async_write_header(stream_, serializer, handler); });
}

bool Connection::writeChunk(const std::string & data)
{
    if (data.empty()) return true;
    return write([&](auto handler) { net::async_write(stream_, http::make_chunk(net::buffer(data)), handler); });
}

bool Connection::endStream()
{
    return write([&](auto handler) { net::async_write(stream_, http::make_chunk_last(), handler); });
}

bool Connection::upgrade(const Request & request, const std::function<void(WebSocket &, Connection &)> & session)
{
    keepAlive_ = false;
    lastStatus_ = 101;
    WebSocket socket(std::move(stream_));
    // The socket keeps its own time: pings when idle, and a peer that
    // answers nothing for five minutes is gone.
    beast::get_lowest_layer(socket).expires_never();
    socket.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    socket.set_option(websocket::stream_base::decorator(
        [](websocket::response_type & response) { response.set(http::field::server, "evolive"); }));
    if (await([&](auto handler) { socket.async_accept(request, [handler](beast::error_code ec) { handler(ec, 0); }); }))
        return false;
    session(socket, *this);
    return true;
}

void Connection::closeGracefully()
{
    // A response sent before its request's body was read: closing with
    // unread bytes would reset the connection and could lose the response,
    // so stop sending and read what the client still sends, briefly.
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return;
    char sink[16384];
    for (size_t drained = 0; drained < (1 << 20);) {
        stream_.expires_after(std::chrono::seconds(1));
        size_t n = 0;
        ec = await([&](auto handler) {
            stream_.async_read_some(net::buffer(sink), [&n, handler](beast::error_code e, size_t got) {
                n = got;
                handler(e, got);
            });
        });
        if (ec) return;
        drained += n;
    }
}

void Connection::tooLarge(Api & api)
{
    keepAlive_ = false;
    error(http::status::payload_too_large,
          "the request body is larger than " + std::to_string(maxBodyBytes_) + " bytes (max-request-bytes)");
    api.counted(*this);
}

void Connection::serve(Api & api)
{
    serveRequests(api);
    if (socket().is_open()) closeGracefully();
}

void Connection::serveRequests(Api & api)
{
    while (keepAlive_) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(maxBodyBytes_);
        stream_.expires_after(timeouts_.read);
        auto ec = await([&](auto handler) { http::async_read_header(stream_, buffer_, parser, handler); });
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::connection_reset) return;
        if (ec == http::error::body_limit) return tooLarge(api);
        if (ec) {
            keepAlive_ = false;
            error(http::status::bad_request, "malformed HTTP request: " + ec.message());
            api.counted(*this);
            return;
        }
        keepAlive_ = parser.get().keep_alive();
        if (!api.admit(*this, parser.get())) return; // answered already (401, 404, 413, ...)

        if (parser.get()[http::field::expect] == "100-continue") {
            http::response<http::empty_body> goOn{http::status::continue_, 11};
            if (!write([&](auto handler) { http::async_write(stream_, goOn, handler); })) return;
        }
        stream_.expires_after(timeouts_.read);
        ec = await([&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
        if (ec == http::error::body_limit) return tooLarge(api);
        if (ec) {
            keepAlive_ = false;
            if (ec != beast::error::timeout && ec != http::error::end_of_stream) {
                error(http::status::bad_request, "malformed HTTP request: " + ec.message());
                api.counted(*this);
            }
            return;
        }
        auto request = parser.release();
        api.handle(*this, request);
    }
}

} // namespace evolive::server
