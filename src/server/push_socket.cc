// GET /v1/push: a long-lived WebSocket on which a client asks for .drv
// closures to be pushed while it reads an evaluation stream. Each text
// message `{"drv": PATH}` (with an optional "id", echoed) gets one answer
// in order: the push outcome, or an error. A bad message gets an error
// answer; the socket stays open.
#include "api.hh"

#include <set>
#include <spdlog/spdlog.h>

namespace evolive::server {

using json = nlohmann::json;

namespace {

json answerTo(const std::string & text, PushService & push, std::set<std::string> & pushedHere, Metrics & metrics)
{
    metrics.pushRequests++;
    auto message = json::parse(text, nullptr, false);
    json answer = json::object();
    auto fail = [&](const std::string & why) {
        metrics.pushErrors++;
        answer["error"] = why;
        return answer;
    };
    if (message.is_discarded()) return fail("the message is not valid JSON");
    if (!message.is_object()) return fail("the message must be a JSON object: {\"drv\": \"/nix/store/...drv\"}");
    if (message.contains("id")) answer["id"] = message["id"];
    for (auto & [key, value] : message.items())
        if (key != "drv" && key != "id") return fail("unknown field '" + key + "' (a message has \"drv\" and an optional \"id\")");
    if (!message.contains("drv") || !message["drv"].is_string()) return fail("drv: a .drv store path (a string) is required");
    auto drv = message["drv"].get<std::string>();
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
    c.upgrade(request, [&](Connection::WebSocket & socket, Connection & connection) {
        std::set<std::string> pushedHere;
        beast::flat_buffer buffer;
        while (true) {
            buffer.clear();
            auto ec = connection.await([&](auto handler) { socket.async_read(buffer, handler); });
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
