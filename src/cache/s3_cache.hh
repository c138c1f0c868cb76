// A binary cache in an S3 bucket (AWS or any S3-compatible server), through
// libcurl with SigV4 signing. Nix reads it over HTTP(S) when the bucket is
// served (path-style: ENDPOINT/BUCKET/...).
//
//   s3://BUCKET?region=eu-west-1                         AWS, virtual-hosted addressing
//   s3://BUCKET?endpoint=http://127.0.0.1:4568           another server, path-style
//   s3://BUCKET?endpoint=127.0.0.1:4568&scheme=http      the same, as Nix writes it
//   parameters (docs/push.md): region (us-east-1), endpoint, scheme,
//   addressing (path|virtual) or Nix's addressing-style (auto|path|virtual),
//   profile (AWS profile for credentials), multipart-upload,
//   multipart-threshold and part-size (Nix: multipart-chunk-size,
//   buffer-size) (bytes; 64 MiB and 16 MiB), retries (5)
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), else from the profile (AWS_PROFILE, else `default`)
// in AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.
#pragma once

#include "binary_cache.hh"
#include "store_url.hh"

#include <chrono>
#include <cstdint>
#include <optional>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <vector>
#include <stdexcept>
#include <string>

namespace evolive::cache {

struct S3Error : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct S3Location
{
    std::string bucket;
    std::string region = "us-east-1";
    std::string endpoint;      // scheme://host[:port]; "" means AWS
    std::string scheme = "https"; // AWS's, when there is no endpoint
    bool pathStyle = false;
    std::string profile;
    size_t multipartThreshold = 64u << 20;
    size_t partSize = 16u << 20;
    int retries = 5;

    // The bucket of an s3:// URL and the connection's parameters, taken out
    // of it (the caller refuses what is left). Throws std::invalid_argument
    // for a value that is not valid (naming the parameter).
    static S3Location take(StoreUrl & url);
    // The URL of `key` (without query).
    std::string objectUrl(const std::string & key) const;
};

// One object of a listing.
struct S3Object
{
    std::string key;
    int64_t modified = 0; // LastModified, seconds since the epoch
    uint64_t bytes = 0;
};

struct S3Credentials
{
    std::string accessKeyId, secretAccessKey, sessionToken;
    // Throws S3Error when none are found.
    static S3Credentials find(const std::string & profile);
};

class S3Cache : public BinaryCache
{
public:
    // A binary cache writes `nix-cache-info` when the bucket has none; a
    // bucket used for other objects (results) does not.
    enum class Role { BinaryCache, Objects };
    S3Cache(S3Location location, S3Credentials credentials, Role role = Role::BinaryCache,
            CacheInfo info = {true, 40});
    ~S3Cache() override;

    bool exists(const std::string & key) override;
    void put(const std::string & key, std::string_view data, const std::string & contentType) override;
    // Above the multipart threshold, reads and sends one part at a time;
    // below it, as put().
    void putFile(const std::string & key, const std::string & path, const std::string & contentType) override;
    std::string describe() const override;
    // One ListObjectsV2 of the bucket's root (delimiter `/`, so `nar/` is
    // not walked), a page of up to 1,000 keys per request.
    std::optional<std::vector<std::string>> narinfoKeys(size_t limit) override;

    // GETs `key` into the file `path` (created or truncated, written as it
    // arrives, started over on a retry). False, with `path` removed, when
    // there is no such object (404). Not atomic: give a temporary name and
    // rename it once this returns true.
    bool get(const std::string & key, const std::string & path);
    // Every object whose key starts with `prefix` (ListObjectsV2, all
    // pages), in key order. With a `delimiter`, only the keys without it
    // after `prefix` (the others are left out). Stops after the page on
    // which more than `limit` objects are found: a listing longer than
    // `limit` is incomplete.
    std::vector<S3Object> list(const std::string & prefix, size_t limit = SIZE_MAX, const std::string & delimiter = "");

private:
    struct Response
    {
        long status = 0;
        std::string body;
        std::map<std::string, std::string> headers; // lower-case names
    };
    // One request with retries on 5xx, 429 and transport errors; throws
    // S3Error for anything else that is not 2xx (404 is returned for HEAD
    // and GET). With `sink`, a 2xx answer's body goes there instead.
    Response request(const std::string & method, const std::string & key, const std::string & query,
                     std::string_view body, const std::string & contentType, std::FILE * sink = nullptr);
    // `size` bytes in parts of `partSize`, each got from `part(offset, length)`.
    void putMultipart(const std::string & key, uint64_t size,
                      const std::function<std::string(uint64_t offset, size_t length)> & part,
                      const std::string & contentType);

    // One libcurl handle per concurrent request (a handle is not
    // thread-safe); idle ones are kept for their connections.
    void * acquireHandle();
    void releaseHandle(void * handle);

    S3Location location_;
    S3Credentials credentials_;
    std::mutex handlesMutex_;
    std::vector<void *> idleHandles_;
};

} // namespace evolive::cache
