// Where a binary cache's files go. Keys are Nix's layout: `nix-cache-info`,
// `<hash>.narinfo`, `nar/<filehash>.nar.<ext>`. A second backend (S3)
// implements the same interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace evolive::cache {

class BinaryCache
{
public:
    virtual ~BinaryCache() = default;
    virtual bool exists(const std::string & key) = 0;
    // Writes `data` under `key` so that a reader sees all of it or nothing.
    virtual void put(const std::string & key, std::string_view data, const std::string & contentType) = 0;
    virtual std::string describe() const = 0;
};

// A local directory, readable by `nix` as `file://DIR`.
class DirectoryCache : public BinaryCache
{
public:
    // Creates the directory and its nix-cache-info when missing.
    explicit DirectoryCache(std::string root);
    bool exists(const std::string & key) override;
    void put(const std::string & key, std::string_view data, const std::string & contentType) override;
    std::string describe() const override { return "file://" + root_; }

private:
    std::string root_;
};

// A directory path, `file://DIR`, or `s3://BUCKET?...` (see s3_cache.hh).
std::unique_ptr<BinaryCache> openBinaryCache(const std::string & where);

} // namespace evolive::cache
