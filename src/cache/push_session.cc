#include "push_session.hh"

#include "compression.hh"
#include "signing_key.hh"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace evolive::cache {

void evaluateIntoStoreRoot(PushSettings & s)
{
    if (s.storeRoot.empty()) return;
    s.storeRoot = std::filesystem::absolute(s.storeRoot).lexically_normal().string();
    if (s.storeRoot.size() > 1 && s.storeRoot.back() == '/') s.storeRoot.pop_back();
    setenv("NIX_REMOTE", ("local?root=" + s.storeRoot).c_str(), 1);
}

PushSession::PushSession(const PushSettings & s)
{
    // Everything the URL says is checked before the cache is opened (which
    // creates it): a refused parameter writes nothing.
    auto url = BinaryCacheUrl::parse(s.cache);
    NarCompression compression{url.compression.value_or(s.compression)};
    compression.level = (int) url.compressionLevel.value_or(-1);
    compression.parallel = url.parallelCompression.value_or(false);
    checkCompression(compression);
    auto keyFile = s.keyFile;
    if (url.secretKey) {
        if (!keyFile.empty() && keyFile != *url.secretKey)
            throw std::invalid_argument("two signing keys: --key " + keyFile + " and secret-key=" + *url.secretKey +
                                        " in '" + s.cache + "' (evolive signs with one)");
        keyFile = *url.secretKey;
    }
    std::optional<nix::SigningKey> key;
    if (!keyFile.empty()) key = nix::SigningKey::fromFile(keyFile);
    cache_ = openBinaryCache(url);
    // Each of a walk's checks borrows a connection for its query: enough for
    // one push's checks at once, or one per push at once; more pushes share.
    daemons_ = std::make_unique<DaemonPool>(
        s.daemonSocket.empty() ? nix::DaemonConnection::defaultSocketPath() : s.daemonSocket,
        std::max(std::max<size_t>(s.closures, 1), s.checks));
    // The first one now, so that an unreachable daemon fails here, not at the first push.
    daemons_->acquire();
    presence_ = s.redis.empty() ? std::make_unique<PresenceCache>()
                                : std::make_unique<PresenceCache>(s.redis, cache_->describe());
    // Uploads to S3 mostly wait for the server's answers: more of them at
    // once than cores keep a server busy (measured with bench/push_s3.sh:
    // 2 at once left s3rver idle a sixth of the time; 8 and 16 did not).
    size_t uploads = s.uploads ? s.uploads : url.s3 ? s3Uploads : 0;
    pusher_ = std::make_unique<Pusher>(*daemons_, *cache_, *presence_, key, compression, uploads, s.closures, s.checks,
                                         200000, s.storeRoot);
}

} // namespace evolive::cache
