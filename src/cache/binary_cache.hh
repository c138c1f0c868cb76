// Where a binary cache's files go. Keys are Nix's layout: `nix-cache-info`,
// `<hash>.narinfo`, `nar/<filehash>.nar.<ext>`. A second backend (S3)
// implements the same interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evolive::cache {

// What a new cache's `nix-cache-info` says (Nix's want-mass-query and
// priority: how clients that use it as a substituter treat it).
struct CacheInfo
{
    bool wantMassQuery = true;
    int64_t priority = 30;
    std::string render() const;
};

class BinaryCache
{
public:
    virtual ~BinaryCache() = default;
    virtual bool exists(const std::string & key) = 0;
    // Writes `data` under `key` so that a reader sees all of it or nothing.
    virtual void put(const std::string & key, std::string_view data, const std::string & contentType) = 0;
    // Writes the file at `path` under `key`, as put() does, without holding
    // all of it in memory where the backend can; this default reads it
    // whole and calls put().
    virtual void putFile(const std::string & key, const std::string & path, const std::string & contentType);
    virtual std::string describe() const = 0;
    // The `<hash>.narinfo` keys at the cache's top level, in any order; or
    // nullopt when there are more than `limit` of them, or the backend
    // cannot list (this default). May throw when listing fails.
    virtual std::optional<std::vector<std::string>> narinfoKeys(size_t limit);
};

// A local directory, readable by `nix` as `file://DIR`.
class DirectoryCache : public BinaryCache
{
public:
    // Creates the directory and its nix-cache-info when missing.
    explicit DirectoryCache(std::string root, CacheInfo info = {});
    bool exists(const std::string & key) override;
    void put(const std::string & key, std::string_view data, const std::string & contentType) override;
    // Copies the file in the kernel (copy_file_range), then renames.
    void putFile(const std::string & key, const std::string & path, const std::string & contentType) override;
    std::string describe() const override { return "file://" + root_; }
    std::optional<std::vector<std::string>> narinfoKeys(size_t limit) override;

private:
    // Creates a temporary file beside `key`, lets `write` fill it, and
    // renames it to `key`; removes it when anything fails.
    void install(const std::string & key, const std::function<void(int fd, const std::string & tmp)> & write);
    std::string root_;
};

struct S3Location;

// A binary cache URL for writing: a directory, `file://DIR?PARAMS` or
// `s3://BUCKET?PARAMS` (store_url.hh), with Nix's binary cache parameters
// taken out of it: the ones evolive honours are here, the ones that do not
// change what is written (trusted, path-info-cache-size, local-nar-cache,
// system-features) are accepted, and any other, or a value evolive does not
// write (compression=gzip, write-nar-listing=true, ...), is refused by
// name. The list is in docs/push.md.
struct BinaryCacheUrl
{
    std::string text;                          // as given
    std::string directory;                     // a directory cache, or
    std::shared_ptr<S3Location> s3;            // an S3 one
    std::optional<std::string> compression;    // compression: xz, zstd or none
    std::optional<int64_t> compressionLevel;   // compression-level
    std::optional<bool> parallelCompression;   // parallel-compression
    std::optional<std::string> secretKey;      // secret-key (or a single secret-keys)
    CacheInfo info;                            // want-mass-query, priority

    // Throws std::invalid_argument, naming the parameter.
    static BinaryCacheUrl parse(const std::string & url);
};

// The cache a URL names. Creates nothing before the whole URL is checked.
std::unique_ptr<BinaryCache> openBinaryCache(const BinaryCacheUrl & url);
std::unique_ptr<BinaryCache> openBinaryCache(const std::string & where);

} // namespace evolive::cache
