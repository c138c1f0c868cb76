// GET /v1/push: a long-lived WebSocket on which a client asks for .drv
// closures to be pushed while it reads an evaluation stream. Each text
// message `{"drv": PATH}` (with an optional "id", echoed) gets one answer
// in order: the push outcome, or an error. A bad message gets an error
// answer; the socket stays open. An answer never echoes more than a store
// path's and a short id's worth of what was sent.
#include "api.hh"

#include "json_parse.hh"

#include <set>
#include <spdlog/spdlog.h>

namespace evolive::server {

using json = nlohmann::json;

namespace {

// Longer than any store path (its name is at most 211 characters).
constexpr size_t maxDrvBytes = 1024, maxIdBytes = 256;

json answerTo(const std::string & text, PushService & push, std::set<std::string> & pushedHere, Metrics & metrics)
{
    metrics.pushRequests++;
    json answer = json::object();
    auto fail = [&](const std::string & why) {
        metrics.pushErrors++;
        answer["error"] = why;
        return answer;
    };
    json message;
    try {
        message = parseJson(text, "the message");
    } catch (JsonParseError & e) {
        return fail(e.what());
    }
    if (!message.is_object()) return fail("the message must be a JSON object: {\"drv\": \"/nix/store/...drv\"}");
    if (message.contains("id")) {
        auto & id = message["id"];
        if (!id.is_number() && !(id.is_string() && id.get_ref<const std::string &>().size() <= maxIdBytes))
            return fail("id: a number, or a string of at most " + std::to_string(maxIdBytes) + " bytes");
        answer["id"] = id;
    }
    for (auto & [key, value] : message.items())
        if (key != "drv" && key != "id")
            return fail("unknown field '" + key.substr(0, 64) + (key.size() > 64 ? "...'" : "'") +
                        " (a message has \"drv\" and an optional \"id\")");
    if (!message.contains("drv") || !message["drv"].is_string()) return fail("drv: a .drv store path (a string) is required");
    auto drv = message["drv"].get<std::string>();
    if (drv.size() > maxDrvBytes)
        return fail("drv: " + std::to_string(drv.size()) + " bytes is longer than any store path");
    answer["drv"] = drv;
    if (pushedHere.count(drv)) {
        // Pushed on this socket before: its closure is in the cache.
        answer.update({{"uploaded", 0}, {"present", 0}, {"repeated", true}});
        return answer;
    }
    auto outcome = push.push(drv);
    if (outcome.contains("error")) return fail(outcome["error"]);
    pushedHere.insert(drv);
    answer.update(outcome);
    return answer;
}

} // namespace

void Api::pushSocket(Connection & c, const Request & request)
{
    if (!websocket::is_upgrade(request))
        return (void) c.error(http::status::upgrade_required, "/v1/push is a WebSocket: send an Upgrade: websocket request");
    // WebSockets are long-lived: they have a cap of their own, so that they
    // cannot take every connection slot.
    if (++webSockets_ > config_.maxWebSockets) {
        --webSockets_;
        return (void) c.error(http::status::service_unavailable,
                              std::to_string(config_.maxWebSockets) + " push sockets are open already (max-websockets)");
    }
    struct Release
    {
        std::atomic<size_t> & count;
        ~Release() { --count; }
    } release{webSockets_};
    Connection::WebSocketSettings settings{config_.webSocketPingTimeout, config_.maxRequestBytes};
    c.upgrade(request, settings, [&](Connection::WebSocket & socket, Connection & connection) {
        std::set<std::string> pushedHere;
        beast::flat_buffer buffer;
        while (true) {
            buffer.clear();
            // A socket that answers pings but sends no message for
            // websocket-idle-timeout is closed, saying why.
            bool idle = false, closing = false;
            auto ec = connection.awaitUntil(
                std::chrono::steady_clock::now() + config_.webSocketIdleTimeout,
                [&](auto handler) { socket.async_read(buffer, handler); },
                [&] {
                    idle = closing = true;
                    auto reason = "no message for " + std::to_string(config_.webSocketIdleTimeout.count()) +
                                  " s (websocket-idle-timeout)";
                    socket.async_close(websocket::close_reason(websocket::close_code::going_away, reason),
                                       [&](beast::error_code) { closing = false; });
                });
            if (idle) {
                // The close handshake ends the read; wait for the close too.
                while (closing && connection.context().run_one_for(std::chrono::seconds(5))) {}
                spdlog::info("push socket closed: idle for {} s", config_.webSocketIdleTimeout.count());
                return;
            }
            if (ec) {
                if (ec != websocket::error::closed) spdlog::info("push socket closed: {}", ec.message());
                return;
            }
            auto answer = socket.got_text()
                              ? answerTo(beast::buffers_to_string(buffer.data()), push_, pushedHere, metrics_)
                              : json{{"error", "send text messages (JSON), not binary ones"}};
            auto text = jsonLine(answer);
            socket.text(true);
            if (connection.await([&](auto handler) { socket.async_write(net::buffer(text), handler); })) return;
        }
    });
}

} // namespace evolive::server
