// A binary cache in an S3 bucket (AWS or any S3-compatible server), through
// libcurl with SigV4 signing. Nix reads it over HTTP(S) when the bucket is
// served (path-style: ENDPOINT/BUCKET/...).
//
//   s3://BUCKET?region=eu-west-1                         AWS, virtual-hosted addressing
//   s3://BUCKET?endpoint=http://127.0.0.1:4568           another server, path-style
//   parameters: region (us-east-1), endpoint, addressing (path|virtual),
//   profile (AWS profile for credentials), multipart-threshold and
//   part-size (bytes; 64 MiB and 16 MiB), retries (5)
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), else from the profile (AWS_PROFILE, else `default`)
// in AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.
#pragma once

#include "binary_cache.hh"

#include <chrono>
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
    bool pathStyle = false;
    std::string profile;
    size_t multipartThreshold = 64u << 20;
    size_t partSize = 16u << 20;
    int retries = 5;

    // Throws std::invalid_argument for a URL that is not s3://BUCKET?...
    static S3Location parse(const std::string & url);
    // The URL of `key` (without query).
    std::string objectUrl(const std::string & key) const;
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
    S3Cache(S3Location location, S3Credentials credentials);
    ~S3Cache() override;

    bool exists(const std::string & key) override;
    void put(const std::string & key, std::string_view data, const std::string & contentType) override;
    std::string describe() const override;

private:
    struct Response
    {
        long status = 0;
        std::string body;
        std::map<std::string, std::string> headers; // lower-case names
    };
    // One request with retries on 5xx, 429 and transport errors; throws
    // S3Error for anything else that is not 2xx (404 is returned for HEAD).
    Response request(const std::string & method, const std::string & key, const std::string & query,
                     std::string_view body, const std::string & contentType);
    void putMultipart(const std::string & key, std::string_view data, const std::string & contentType);

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
