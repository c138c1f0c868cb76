#include "pusher.hh"

#include <hiredis/hiredis.h>
#include <iostream>

namespace evolive::cache {

PresenceCache::PresenceCache(const std::string & redis, const std::string & scope) : key_("evolive:present:" + scope)
{
    timeval timeout{2, 0};
    redisContext * c = nullptr;
    if (redis.rfind("unix://", 0) == 0) {
        c = redisConnectUnixWithTimeout(redis.substr(7).c_str(), timeout);
    } else if (redis.rfind("redis://", 0) == 0) {
        auto hostPort = redis.substr(8);
        auto colon = hostPort.rfind(':');
        auto host = colon == std::string::npos ? hostPort : hostPort.substr(0, colon);
        int port = colon == std::string::npos ? 6379 : std::stoi(hostPort.substr(colon + 1));
        c = redisConnectWithTimeout(host.c_str(), port, timeout);
    } else {
        throw std::invalid_argument("a Redis address is redis://HOST:PORT or unix:///PATH, not '" + redis + "'");
    }
    if (!c || c->err) {
        std::cerr << "evolive: warning: Redis at " << redis << " is unreachable ("
                  << (c ? c->errstr : "out of memory") << "); remembering presence in memory only\n";
        if (c) redisFree(c);
        return;
    }
    redisSetTimeout(c, timeout);
    redis_ = c;
}

PresenceCache::~PresenceCache()
{
    if (redis_) redisFree((redisContext *) redis_);
}

void PresenceCache::redisFailed(const std::string & what)
{
    std::cerr << "evolive: warning: Redis " << what << " failed (" << ((redisContext *) redis_)->errstr
              << "); remembering presence in memory only from now on\n";
    redisFree((redisContext *) redis_);
    redis_ = nullptr;
}

bool PresenceCache::known(const std::string & path)
{
    std::lock_guard lock(mutex_);
    if (present_.count(path)) return true;
    if (!redis_) return false;
    auto * reply = (redisReply *) redisCommand((redisContext *) redis_, "SISMEMBER %b %b", key_.data(), key_.size(),
                                               path.data(), path.size());
    if (!reply) {
        redisFailed("SISMEMBER");
        return false;
    }
    bool found = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    freeReplyObject(reply);
    if (found) present_.insert(path);
    return found;
}

bool PresenceCache::knownHere(const std::string & path)
{
    std::lock_guard lock(mutex_);
    return present_.count(path) > 0;
}

void PresenceCache::remember(const std::string & path)
{
    std::lock_guard lock(mutex_);
    present_.insert(path);
    if (!redis_) return;
    auto * reply = (redisReply *) redisCommand((redisContext *) redis_, "SADD %b %b", key_.data(), key_.size(),
                                               path.data(), path.size());
    if (!reply) return redisFailed("SADD");
    freeReplyObject(reply);
}

} // namespace evolive::cache
