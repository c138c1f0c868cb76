// Results in an S3 bucket: one object `PREFIX<fingerprint>.parquet` per
// result, through the binary cache's S3 client (src/cache/s3_cache.hh:
// SigV4, retries, multipart uploads, credentials from the environment or a
// profile). Evaluations write to a local directory, which also keeps the
// copies that replays read:
//
//   s3://BUCKET?endpoint=http://127.0.0.1:4568&prefix=results/
//   parameters: those of a binary cache URL (docs/push.md), `prefix`, put
//   before every key as given (letters, digits and `/._-`; default none,
//   the bucket's top level), and `cache-limit`, the bytes of local copies
//   kept (default 4G; K, M, G allowed): beyond it the least recently used
//   copies not used in the last ten minutes are removed
#pragma once

#include "result_store.hh"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace evolive::cache {
class S3Cache;
}

namespace evolive::results {

class S3ResultStore : public ResultStore
{
public:
    // Throws std::invalid_argument for a malformed URL and cache::S3Error
    // when no credentials are found; the bucket is not contacted.
    S3ResultStore(const std::string & url, std::string cacheDir);
    ~S3ResultStore() override;

    // The local copy when there is one, else the object downloaded into the
    // local directory (whole or not at all); nullopt when the bucket has none.
    std::optional<std::string> find(const std::string & fingerprint) override;
    // CACHE_DIR/<fingerprint>.parquet.
    std::string pathFor(const std::string & fingerprint) override;
    // Uploads pathFor(fingerprint). Throws (naming the bucket and S3's
    // error) when it cannot, after removing the local file: only what is in
    // the bucket is ever found.
    void stored(const std::string & fingerprint) override;
    // Lists the prefix (every page): newest first by LastModified.
    std::vector<StoredResult> recent(size_t limit) override;
    // The URL as given.
    std::string describe() const override { return url_; }
    // One listing of the prefix (a single key): the bucket exists and the
    // credentials may read it.
    void check() override;

    const std::string & prefix() const { return prefix_; }
    std::string key(const std::string & fingerprint) const { return prefix_ + fingerprint + ".parquet"; }

private:
    // Removes the least recently used local copies beyond `cache-limit`,
    // now that the copy at `added` is there.
    void prune(const std::string & added);

    std::string url_, prefix_, cacheDir_;
    uint64_t cacheLimit_ = 4ull << 30;
    std::mutex pruning_;
    std::optional<uint64_t> localBytes_; // of the copies, once read
    std::unique_ptr<cache::S3Cache> bucket_;
};

// The store a `results` setting names: "" → the directory STATE/results;
// `s3://...` → an S3ResultStore with its local copies in
// STATE/results-cache; anything else → that directory (`file://DIR` too).
std::shared_ptr<ResultStore> openResultStore(const std::string & setting, const std::string & stateDir);

} // namespace evolive::results
