// Where stored results live: one Parquet file per fingerprint. An
// evaluation writes its result to a local file (ParquetWriter makes it
// appear complete or not at all) and then tells the store it is complete;
// a replay asks the store for a local file to read. The directory store is
// the embedded default; a second backend (S3) implements the same interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evolive::results {

struct StoredResult
{
    std::string fingerprint;
    int64_t modified = 0; // seconds since the epoch
    uint64_t bytes = 0;
};

class ResultStore
{
public:
    virtual ~ResultStore() = default;
    // A local file holding the complete result of `fingerprint`, or nullopt.
    virtual std::optional<std::string> find(const std::string & fingerprint) = 0;
    // The local file an evaluation of `fingerprint` writes its result to.
    virtual std::string pathFor(const std::string & fingerprint) = 0;
    // Called once the file at pathFor(fingerprint) is complete.
    virtual void stored(const std::string & fingerprint) = 0;
    // The stored results, newest first, at most `limit`.
    virtual std::vector<StoredResult> recent(size_t limit) = 0;
    virtual std::string describe() const = 0;
    // Throws, saying why, when the store cannot be read: for a service to
    // refuse to start rather than fail every evaluation later.
    virtual void check() {}
};

// `DIR/<fingerprint>.parquet`.
class DirectoryResultStore : public ResultStore
{
public:
    explicit DirectoryResultStore(std::string dir);
    std::optional<std::string> find(const std::string & fingerprint) override;
    std::string pathFor(const std::string & fingerprint) override;
    void stored(const std::string & fingerprint) override {}
    std::vector<StoredResult> recent(size_t limit) override;
    std::string describe() const override { return dir_; }

private:
    std::string dir_;
};

// True for what a fingerprint looks like (64 lowercase hex digits): the
// only names a store ever looks up, so no request can name another file.
bool isFingerprint(const std::string & s);

} // namespace evolive::results
