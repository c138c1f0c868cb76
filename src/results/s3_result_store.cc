#include "s3_result_store.hh"

#include "leftovers.hh"
#include "s3_cache.hh"
#include "store_url.hh"

#include <algorithm>
#include <chrono>
#include <map>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace evolive::results {

namespace fs = std::filesystem;

namespace {

// "4294967296", "512M", "4G": bytes.
uint64_t parseBytes(const std::string & value, const std::string & url)
{
    size_t end = 0;
    uint64_t n = 0;
    try {
        n = std::stoull(value, &end);
    } catch (std::exception &) {
        end = std::string::npos;
    }
    std::string unit = end == std::string::npos ? "?" : value.substr(end);
    int shift = unit == "" ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
    if (value.empty() || value[0] == '-' || shift < 0 || n > (UINT64_MAX >> shift))
        throw std::invalid_argument("S3 URL: cache-limit must be a number of bytes (K, M or G allowed): " + url);
    return n << shift;
}

// A temporary name next to `path`, unique among threads and processes.
std::string temporaryName(const std::string & path)
{
    static std::atomic<unsigned> counter{0};
    return path + ".download-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

} // namespace

S3ResultStore::S3ResultStore(const std::string & url, std::string cacheDir) : url_(url), cacheDir_(std::move(cacheDir))
{
    auto parsed = cache::StoreUrl::parse(url);
    auto location = cache::S3Location::take(parsed);
    prefix_ = parsed.take("prefix").value_or("");
    if (auto limit = parsed.take("cache-limit")) cacheLimit_ = parseBytes(*limit, url);
    parsed.refuseRest("an s3:// results store");
    if (!prefix_.empty() && prefix_.front() == '/')
        throw std::invalid_argument("S3 URL: prefix must not start with '/': " + url);
    for (char c : prefix_)
        if (!isalnum((unsigned char) c) && !strchr("/._-", c))
            throw std::invalid_argument("S3 URL: prefix may have letters, digits and /._- only: " + url);
    auto credentials = cache::S3Credentials::find(location.profile);
    bucket_ = std::make_unique<cache::S3Cache>(std::move(location), std::move(credentials), cache::S3Cache::Role::Objects);
    fs::create_directories(cacheDir_);
    removeLeftovers(cacheDir_, {".tmp-", ".download-"}); // of evaluations and downloads that died
}

S3ResultStore::~S3ResultStore() = default;

void S3ResultStore::check()
{
    try {
        bucket_->list(prefix_, 1);
    } catch (std::exception & e) {
        throw std::runtime_error("results: cannot list " + url_ + ": " + e.what());
    }
}

std::string S3ResultStore::pathFor(const std::string & fingerprint)
{
    return cacheDir_ + "/" + fingerprint + ".parquet";
}

std::optional<std::string> S3ResultStore::find(const std::string & fingerprint)
{
    if (!isFingerprint(fingerprint)) return std::nullopt;
    auto path = pathFor(fingerprint);
    // Used now: the newest of the local copies (see prune()).
    if (utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0) return path;
    auto tmp = temporaryName(path);
    try {
        if (!bucket_->get(key(fingerprint), tmp)) return std::nullopt;
    } catch (std::exception & e) {
        throw std::runtime_error("reading the result " + fingerprint + " from " + url_ + ": " + e.what());
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int error = errno;
        unlink(tmp.c_str());
        throw std::runtime_error("cannot rename " + tmp + ": " + strerror(error));
    }
    prune(path);
    return path;
}

void S3ResultStore::stored(const std::string & fingerprint)
{
    if (!isFingerprint(fingerprint)) throw std::invalid_argument("not a fingerprint: '" + fingerprint + "'");
    auto path = pathFor(fingerprint);
    try {
        // An S3 PUT (or a completed multipart upload) appears whole or not at all.
        bucket_->putFile(key(fingerprint), path, "application/vnd.apache.parquet");
    } catch (std::exception & e) {
        std::error_code ec;
        fs::remove(path, ec);
        throw std::runtime_error("storing the result in " + url_ + ": " + e.what());
    }
    prune(path);
}

void S3ResultStore::prune(const std::string & added)
{
    std::lock_guard lock(pruning_);
    // The directory is read only when the copies may be beyond the limit:
    // `localBytes_` counts what this store added since it last read it.
    std::error_code ec;
    auto bytes = fs::file_size(added, ec);
    if (!ec && localBytes_ && *localBytes_ + bytes <= cacheLimit_) {
        *localBytes_ += bytes;
        return;
    }
    struct Copy
    {
        fs::path path;
        fs::file_time_type used;
        uint64_t bytes;
    };
    std::vector<Copy> copies;
    uint64_t total = 0;
    for (auto & entry : fs::directory_iterator(cacheDir_, ec)) {
        auto name = entry.path().filename().string();
        if (name.size() != 64 + 8 || !name.ends_with(".parquet")) continue; // temporary names are not copies
        auto used = entry.last_write_time(ec);
        auto bytes = entry.file_size(ec);
        if (ec) continue; // gone meanwhile
        copies.push_back({entry.path(), used, bytes});
        total += bytes;
    }
    localBytes_ = total;
    if (total <= cacheLimit_) return;
    // Oldest use first; a copy used in the last ten minutes may be being
    // replayed (found, not yet opened) or just written: it stays.
    std::sort(copies.begin(), copies.end(), [](auto & a, auto & b) { return a.used < b.used; });
    auto recent = fs::file_time_type::clock::now() - std::chrono::minutes(10);
    for (auto & copy : copies) {
        if (total <= cacheLimit_ || copy.used > recent) break;
        if (fs::remove(copy.path, ec)) total -= copy.bytes;
    }
    localBytes_ = total;
}

std::vector<StoredResult> S3ResultStore::recent(size_t limit)
{
    std::vector<StoredResult> found;
    std::vector<cache::S3Object> objects;
    try {
        objects = bucket_->list(prefix_);
    } catch (std::exception & e) {
        throw std::runtime_error("listing the results in " + url_ + ": " + e.what());
    }
    for (auto & object : objects) {
        if (object.key.rfind(prefix_, 0) != 0) continue;
        auto name = object.key.substr(prefix_.size());
        if (name.size() != 64 + 8 || name.compare(64, 8, ".parquet") != 0 || !isFingerprint(name.substr(0, 64)))
            continue;
        found.push_back({name.substr(0, 64), object.modified, object.bytes});
    }
    std::stable_sort(found.begin(), found.end(), [](auto & a, auto & b) { return a.modified > b.modified; });
    if (found.size() > limit) found.resize(limit);
    return found;
}

std::shared_ptr<ResultStore> openResultStore(const std::string & setting, const std::string & stateDir)
{
    if (setting.empty()) return std::make_shared<DirectoryResultStore>(stateDir + "/results");
    auto url = cache::StoreUrl::parse(setting);
    if (url.kind() == cache::StoreUrl::Kind::S3) return std::make_shared<S3ResultStore>(setting, stateDir + "/results-cache");
    url.refuseRest("a results directory");
    return std::make_shared<DirectoryResultStore>(url.location());
}

} // namespace evolive::results
