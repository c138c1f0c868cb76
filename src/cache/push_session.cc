#include "push_session.hh"

#include "signing_key.hh"

#include <algorithm>

namespace evolive::cache {

PushSession::PushSession(const PushSettings & s)
{
    std::optional<nix::SigningKey> key;
    if (!s.keyFile.empty()) key = nix::SigningKey::fromFile(s.keyFile);
    cache_ = openBinaryCache(s.cache);
    // Each of a walk's checks borrows a connection for its query: enough for
    // one push's checks at once, or one per push at once; more pushes share.
    daemons_ = std::make_unique<DaemonPool>(
        s.daemonSocket.empty() ? nix::DaemonConnection::defaultSocketPath() : s.daemonSocket,
        std::max(std::max<size_t>(s.closures, 1), s.checks));
    // The first one now, so that an unreachable daemon fails here, not at the first push.
    daemons_->acquire();
    presence_ = s.redis.empty() ? std::make_unique<PresenceCache>()
                                : std::make_unique<PresenceCache>(s.redis, cache_->describe());
    pusher_ = std::make_unique<Pusher>(*daemons_, *cache_, *presence_, key, s.compression, s.uploads, s.closures, s.checks);
}

} // namespace evolive::cache
