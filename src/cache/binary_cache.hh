// Where a binary cache's files go. Keys are Nix's layout: `nix-cache-info`,
// `<hash>.narinfo`, `nar/<filehash>.nar.<ext>`. A second backend (S3)
// implements the same interface.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evolive::cache {

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
    explicit DirectoryCache(std::string root);
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

// A directory path, `file://DIR`, or `s3://BUCKET?...` (see s3_cache.hh).
std::unique_ptr<BinaryCache> openBinaryCache(const std::string & where);

} // namespace evolive::cache
