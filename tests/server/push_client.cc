#include "push_client.hh"

#include <boost/asio/connect.hpp>

namespace evolive::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

PushClient::PushClient(const std::string & url, const std::string & token, const std::map<std::string, std::string> & headers)
{
    auto hostPort = url.substr(7);
    auto colon = hostPort.rfind(':');
    tcp::resolver resolver(context_);
    net::connect(socket_.next_layer(), resolver.resolve(hostPort.substr(0, colon), hostPort.substr(colon + 1)));
    socket_.set_option(websocket::stream_base::decorator([token, headers](websocket::request_type & r) {
        if (!token.empty()) r.set(beast::http::field::authorization, "Bearer " + token);
        for (auto & [name, value] : headers) r.set(name, value);
    }));
    auto host = headers.count("Host") ? headers.at("Host") : hostPort;
    socket_.handshake(host, "/v1/push");
    socket_.read_message_max(64 << 20);
}

std::string PushClient::askText(const std::string & text)
{
    socket_.text(true);
    socket_.write(net::buffer(text));
    beast::flat_buffer buffer;
    socket_.read(buffer);
    return beast::buffers_to_string(buffer.data());
}

nlohmann::json PushClient::ask(const std::string & text)
{
    return nlohmann::json::parse(askText(text));
}

bool PushClient::closedByServer()
{
    beast::flat_buffer buffer;
    beast::error_code ec;
    socket_.read(buffer, ec);
    return ec == websocket::error::closed;
}

bool PushClient::staysOpenFor(std::chrono::seconds duration)
{
    beast::flat_buffer buffer;
    bool done = false;
    socket_.async_read(buffer, [&](beast::error_code, std::size_t) { done = true; });
    context_.restart();
    context_.run_for(duration);
    if (done) return false;
    beast::get_lowest_layer(socket_).cancel();
    context_.run_for(std::chrono::seconds(1));
    return true;
}

} // namespace evolive::test
