#include "redis_connection.hh"

#include <hiredis/hiredis.h>

namespace evolive::fleet {

namespace {

struct Address
{
    std::string unixPath, host;
    int port = 6379;
};

Address parse(const std::string & url)
{
    Address a;
    if (url.rfind("unix://", 0) == 0) {
        a.unixPath = url.substr(7);
        if (a.unixPath.empty()) throw std::invalid_argument("a Redis socket URL is unix:///PATH, not '" + url + "'");
        return a;
    }
    if (url.rfind("redis://", 0) != 0)
        throw std::invalid_argument("a Redis address is redis://HOST:PORT or unix:///PATH, not '" + url + "'");
    auto hostPort = url.substr(8);
    if (!hostPort.empty() && hostPort.back() == '/') hostPort.pop_back();
    auto colon = hostPort.rfind(':');
    a.host = colon == std::string::npos ? hostPort : hostPort.substr(0, colon);
    if (colon != std::string::npos) {
        auto port = hostPort.substr(colon + 1);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
            throw std::invalid_argument("a Redis address is redis://HOST:PORT or unix:///PATH, not '" + url + "'");
        a.port = std::stoi(port);
    }
    if (a.host.empty()) throw std::invalid_argument("a Redis address is redis://HOST:PORT or unix:///PATH, not '" + url + "'");
    return a;
}

RedisReply convert(const redisReply * r)
{
    RedisReply out;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.type = RedisReply::Type::String;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = RedisReply::Type::Status;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = RedisReply::Type::Error;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = RedisReply::Type::Integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::Array;
        for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
    default:
        out.type = RedisReply::Type::Nil;
    }
    return out;
}

} // namespace

void checkRedisUrl(const std::string & url)
{
    parse(url);
}

RedisConnection::RedisConnection(const std::string & url, std::chrono::milliseconds timeout) : url_(url)
{
    Address a;
    try {
        a = parse(url);
    } catch (std::invalid_argument & e) {
        throw RedisError(e.what());
    }
    timeval tv{(time_t) (timeout.count() / 1000), (suseconds_t) (timeout.count() % 1000) * 1000};
    redisContext * c = a.unixPath.empty() ? redisConnectWithTimeout(a.host.c_str(), a.port, tv)
                                          : redisConnectUnixWithTimeout(a.unixPath.c_str(), tv);
    if (!c || c->err) {
        std::string why = c ? c->errstr : "out of memory";
        if (c) redisFree(c);
        throw RedisError("Redis at " + url + " is unreachable: " + why);
    }
    redisSetTimeout(c, tv);
    context_ = c;
}

RedisConnection::~RedisConnection()
{
    if (context_) redisFree((redisContext *) context_);
}

RedisReply RedisConnection::command(const std::vector<std::string> & args, bool errorsAsReplies)
{
    if (!context_) throw RedisError("Redis at " + url_ + ": the connection was lost");
    std::vector<const char *> argv;
    std::vector<size_t> lengths;
    for (auto & a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    auto * c = (redisContext *) context_;
    auto * r = (redisReply *) redisCommandArgv(c, (int) argv.size(), argv.data(), lengths.data());
    if (!r) {
        std::string why = c->errstr;
        redisFree(c);
        context_ = nullptr;
        throw RedisError("Redis at " + url_ + ": " + (args.empty() ? "" : args[0]) + " failed: " + why);
    }
    auto reply = convert(r);
    freeReplyObject(r);
    if (reply.type == RedisReply::Type::Error && !errorsAsReplies)
        throw RedisError("Redis at " + url_ + ": " + args[0] + ": " + reply.str);
    return reply;
}

} // namespace evolive::fleet
