// A WebSocket client (Beast) for GET /v1/push: asks for closures to be
// pushed and reads the answers, with the headers a test chooses (a token,
// an Origin, a Host).
#pragma once

#include <utility> // before Asio (Boost 1.74 with g++ 12)
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace evolive::test {

class PushClient
{
public:
    // Connects and upgrades; throws boost::system::system_error when the
    // server refuses (its status is in the error's message).
    explicit PushClient(const std::string & url, const std::string & token = "",
                        const std::map<std::string, std::string> & headers = {});

    // Sends one text message and returns the answer, parsed.
    nlohmann::json ask(const std::string & text);
    nlohmann::json push(const std::string & drv, int id = 0) { return ask(nlohmann::json{{"drv", drv}, {"id", id}}.dump()); }
    // Sends one text message and returns the answer's text.
    std::string askText(const std::string & text);

    // Reads until the server closes the socket; false when something else
    // arrives first or the read fails otherwise.
    bool closedByServer();

    // Reads for `duration` (answering pings meanwhile, as Beast does while
    // it reads); true when nothing arrived and the socket stayed open. The
    // socket cannot be used afterwards.
    bool staysOpenFor(std::chrono::seconds duration);

    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> & socket() { return socket_; }

private:
    boost::asio::io_context context_;
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> socket_{context_};
};

} // namespace evolive::test
