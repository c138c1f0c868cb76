#include "connection.hh"

#include "api.hh"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace evolive::server {

Connection::Connection(Settings settings) : settings_(settings) {}

template<class Response> void Connection::decorate(Response & response)
{
    response.set(http::field::server, "evolive");
    for (auto & [name, value] : extraHeaders_) response.set(name, value);
}

bool Connection::write(const std::function<void(std::function<void(beast::error_code, std::size_t)>)> & start)
{
    stream_.expires_after(settings_.write);
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
    decorate(response);
    for (auto & [name, value] : headers) response.set(name, value);
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

bool Connection::respondFile(http::status status, const std::string & contentType, int fd, uint64_t offset,
                             uint64_t length, const std::vector<std::pair<std::string, std::string>> & headers)
{
    http::response<http::empty_body> response{status, 11};
    decorate(response);
    response.set(http::field::content_type, contentType);
    for (auto & [name, value] : headers) response.set(name, value);
    response.content_length(length);
    response.keep_alive(keepAlive_);
    lastStatus_ = (unsigned) status;
    http::response_serializer<http::empty_body> serializer{response};
    if (!write([&](auto handler) { http::async_write_header(stream_, serializer, handler); })) return false;
    std::vector<char> piece(256 * 1024);
    while (length > 0) {
        auto n = ::pread(fd, piece.data(), std::min<uint64_t>(length, piece.size()), (off_t) offset);
        if (n <= 0) {
            // The file shrank under us: the promised length cannot be kept,
            // so the connection must end for the client to notice.
            keepAlive_ = false;
            return false;
        }
        if (!write([&](auto handler) { net::async_write(stream_, net::buffer(piece.data(), n), handler); })) return false;
        offset += n;
        length -= n;
    }
    return true;
}

bool Connection::startStream(const std::string & contentType)
{
    http::response<http::empty_body> response{http::status::ok, 11};
    decorate(response);
    response.set(http::field::content_type, contentType);
    response.set(http::field::cache_control, "no-store");
    // An HTTP/1.0 client knows no chunks: its body ends with the connection.
    if (version_ >= 11) response.chunked(true);
    response.keep_alive(false);
    keepAlive_ = false;
    streaming_ = true;
    lastStatus_ = 200;
    http::response_serializer<http::empty_body> serializer{response};
    return write([&](auto handler) { http::async_write_header(stream_, serializer, handler); });
}

bool Connection::writeChunk(const std::string & data)
{
    if (data.empty()) return true;
    if (version_ < 11) return write([&](auto handler) { net::async_write(stream_, net::buffer(data), handler); });
    return write([&](auto handler) { net::async_write(stream_, http::make_chunk(net::buffer(data)), handler); });
}

bool Connection::endStream()
{
    if (version_ < 11) return true; // closing the connection ends it
    return write([&](auto handler) { net::async_write(stream_, http::make_chunk_last(), handler); });
}

bool Connection::upgrade(const Request & request, const WebSocketSettings & ws,
                         const std::function<void(WebSocket &, Connection &)> & session)
{
    keepAlive_ = false;
    lastStatus_ = 101;
    WebSocket socket(std::move(stream_));
    // The socket keeps its own time: a ping after half of `ws.ping` without
    // a frame from the peer, and a peer that sends nothing (not even the
    // answer to a ping) for all of it is gone.
    beast::get_lowest_layer(socket).expires_never();
    socket.set_option(websocket::stream_base::timeout{settings_.header, ws.ping, true});
    socket.read_message_max(ws.maxMessageBytes);
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

bool Connection::refuse(Api & api, http::status status, const std::string & message)
{
    keepAlive_ = false;
    error(status, message);
    api.counted(*this);
    return false;
}

bool Connection::readFailed(Api & api, beast::error_code ec, bool headerRead, const std::string & thrown)
{
    if (ec == http::error::body_limit)
        return refuse(api, http::status::payload_too_large,
                      "the request body is larger than " + std::to_string(settings_.maxBodyBytes) +
                          " bytes (max-request-bytes)");
    if (ec == http::error::header_limit || (ec == http::error::buffer_overflow && !headerRead))
        return refuse(api, http::status::request_header_fields_too_large,
                      "the request's header is larger than " + std::to_string(maxHeaderBytes) + " bytes");
    if (ec == http::error::buffer_overflow)
        return refuse(api, http::status::request_header_fields_too_large,
                      "the request's chunked trailer is larger than " + std::to_string(maxBufferedBytes) + " bytes");
    if (ec == http::error::bad_transfer_encoding)
        return refuse(api, http::status::bad_request,
                      "malformed HTTP request: Transfer-Encoding given twice, or together with Content-Length");
    if (ec == http::error::bad_content_length)
        return refuse(api, http::status::bad_request,
                      "malformed HTTP request: a Content-Length that is not a number, two that differ, or one "
                      "together with Transfer-Encoding");
    return refuse(api, http::status::bad_request, "malformed HTTP request: " + (thrown.empty() ? ec.message() : thrown));
}

void Connection::serve(Api & api)
{
    try {
        serveRequests(api);
        if (socket().is_open()) closeGracefully();
    } catch (std::exception & e) {
        // Nothing a client sends may end the process.
        spdlog::error("connection: {}", e.what());
    }
}

void Connection::serveRequests(Api & api)
{
    // The parser's own limits throw (a trailer field over 64 KiB): taken
    // as a malformed request, like the errors it returns.
    std::string thrown;
    auto read = [&](auto start) {
        try {
            return await(start);
        } catch (std::exception & e) {
            thrown = e.what();
            return beast::error_code(http::error::bad_value);
        }
    };
    while (keepAlive_) {
        extraHeaders_.clear();
        streaming_ = false;
        http::request_parser<http::string_body> parser;
        parser.header_limit(maxHeaderBytes);
        parser.body_limit(settings_.maxBodyBytes);
        // A connection that sends no request (first, or the next one) gets
        // the short header timeout: idle sockets do not hold slots long.
        stream_.expires_after(settings_.header);
        auto ec = read([&](auto handler) { http::async_read_header(stream_, buffer_, parser, handler); });
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::connection_reset) return;
        if (ec) return (void) readFailed(api, ec, false, thrown);
        version_ = parser.get().version();
        keepAlive_ = parser.get().keep_alive();
        if (!api.admit(*this, parser.get())) return; // answered already (401, 404, 413, ...)

        if (parser.get()[http::field::expect] == "100-continue") {
            http::response<http::empty_body> goOn{http::status::continue_, 11};
            if (!write([&](auto handler) { http::async_write(stream_, goOn, handler); })) return;
        }
        stream_.expires_after(settings_.read);
        ec = read([&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
        if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == http::error::partial_message ||
            ec == net::error::connection_reset)
            return (void) (keepAlive_ = false);
        if (ec) return (void) readFailed(api, ec, true, thrown);
        auto request = parser.release();
        api.handle(*this, request);
    }
}

} // namespace evolive::server
