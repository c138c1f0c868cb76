#include "push_session.hh"

#include "signing_key.hh"

namespace evolive::cache {

PushSession::PushSession(const PushSettings & s)
{
    std::optional<nix::SigningKey> key;
    if (!s.keyFile.empty()) key = nix::SigningKey::fromFile(s.keyFile);
    cache_ = openBinaryCache(s.cache);
    // One connection per push at once: a push's walk asks one query at a time.
    daemons_ = std::make_unique<DaemonPool>(
        s.daemonSocket.empty() ? nix::DaemonConnection::defaultSocketPath() : s.daemonSocket, s.closures);
    // The first one now, so that an unreachable daemon fails here, not at the first push.
    daemons_->acquire();
    presence_ = s.redis.empty() ? std::make_unique<PresenceCache>()
                                : std::make_unique<PresenceCache>(s.redis, cache_->describe());
    pusher_ = std::make_unique<Pusher>(*daemons_, *cache_, *presence_, key, s.compression, s.uploads, s.closures);
}

} // namespace evolive::cache
