#include "push_session.hh"

#include "signing_key.hh"

namespace evolive::cache {

PushSession::PushSession(const PushSettings & s)
{
    std::optional<nix::SigningKey> key;
    if (!s.keyFile.empty()) key = nix::SigningKey::fromFile(s.keyFile);
    cache_ = openBinaryCache(s.cache);
    daemon_ = std::make_unique<nix::DaemonConnection>(s.daemonSocket.empty() ? nix::DaemonConnection::defaultSocketPath()
                                                                             : s.daemonSocket);
    presence_ = s.redis.empty() ? std::make_unique<PresenceCache>()
                                : std::make_unique<PresenceCache>(s.redis, cache_->describe());
    pusher_ = std::make_unique<Pusher>(*daemon_, *cache_, *presence_, key, s.compression, s.uploads);
}

} // namespace evolive::cache
