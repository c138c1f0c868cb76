#include "binary_cache.hh"
#include "s3_cache.hh"
#include "store_url.hh"

namespace evolive::cache {

namespace {

// Nix's binary cache parameters that are about reading a cache (as a
// substituter): nothing evolive writes depends on them.
const char * const readerParameters[] = {"trusted", "path-info-cache-size", "local-nar-cache", "system-features"};

} // namespace

BinaryCacheUrl BinaryCacheUrl::parse(const std::string & text)
{
    auto url = StoreUrl::parse(text);
    BinaryCacheUrl c;
    c.text = text;
    if (url.kind() == StoreUrl::Kind::S3) {
        c.s3 = std::make_shared<S3Location>(S3Location::take(url));
        c.info.priority = 40;
    } else {
        c.directory = url.location();
    }
    c.compression = url.take("compression");
    if (c.compression && *c.compression != "xz" && *c.compression != "zstd" && *c.compression != "none")
        url.refuse("compression", *c.compression, "evolive writes xz, zstd or none");
    c.compressionLevel = url.takeInteger("compression-level");
    c.parallelCompression = url.takeBool("parallel-compression");
    c.secretKey = url.take("secret-key");
    if (auto keys = url.take("secret-keys")) {
        if (keys->find(',') != std::string::npos) url.refuse("secret-keys", *keys, "evolive signs with one key");
        if (c.secretKey && *c.secretKey != *keys) url.refuse("secret-keys", *keys, "secret-key names another key");
        if (!keys->empty()) c.secretKey = *keys;
    }
    if (auto mass = url.takeBool("want-mass-query")) c.info.wantMassQuery = *mass;
    if (auto priority = url.takeInteger("priority")) c.info.priority = *priority;
    // Nix's, with the one value evolive writes.
    if (auto listing = url.takeBool("write-nar-listing"); listing && *listing)
        url.refuse("write-nar-listing", "true", "evolive writes no .ls listings of NARs");
    if (auto debug = url.takeBool("index-debug-info"); debug && *debug)
        url.refuse("index-debug-info", "true", "evolive indexes no debug info");
    for (auto name : {"narinfo-compression", "ls-compression", "log-compression"})
        if (auto v = url.take(name); v && !v->empty() && *v != "none")
            url.refuse(name, *v, "evolive writes these files uncompressed");
    if (auto store = url.take("store"); store && *store != "/nix/store")
        url.refuse("store", *store, "evolive pushes paths of /nix/store");
    if (c.s3)
        if (auto storageClass = url.take("storage-class"))
            url.refuse("storage-class", *storageClass, "evolive uploads in the bucket's default storage class");
    for (auto name : readerParameters) url.take(name);
    url.refuseRest(c.s3 ? "an s3:// binary cache" : "a file:// binary cache");
    return c;
}

std::unique_ptr<BinaryCache> openBinaryCache(const BinaryCacheUrl & url)
{
    if (url.s3) return std::make_unique<S3Cache>(*url.s3, S3Credentials::find(url.s3->profile), S3Cache::Role::BinaryCache, url.info);
    return std::make_unique<DirectoryCache>(url.directory, url.info);
}

std::unique_ptr<BinaryCache> openBinaryCache(const std::string & where)
{
    return openBinaryCache(BinaryCacheUrl::parse(where));
}

} // namespace evolive::cache
