#include "s3_result_store.hh"

#include "s3_cache.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evolive::results {

namespace fs = std::filesystem;

namespace {

std::string percentDecode(const std::string & s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && isxdigit((unsigned char) s[i + 1]) && isxdigit((unsigned char) s[i + 2])) {
            out += (char) std::stoi(s.substr(i + 1, 2), nullptr, 16);
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Takes `prefix=...` out of the URL's query: the rest is a binary cache URL.
std::string takePrefix(const std::string & url, std::string & prefix)
{
    auto q = url.find('?');
    if (q == std::string::npos) return url;
    std::string rest = url.substr(0, q), params;
    bool found = false;
    size_t start = q + 1;
    while (start <= url.size()) {
        auto end = url.find('&', start);
        if (end == std::string::npos) end = url.size();
        auto param = url.substr(start, end - start);
        if (param.rfind("prefix=", 0) == 0 || param == "prefix") {
            if (found) throw std::invalid_argument("S3 URL: prefix given twice: " + url);
            found = true;
            prefix = percentDecode(param.substr(std::min(param.size(), (size_t) 7)));
        } else if (!param.empty()) {
            params += (params.empty() ? "" : "&") + param;
        }
        start = end + 1;
    }
    return params.empty() ? rest : rest + "?" + params;
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
    auto location = cache::S3Location::parse(takePrefix(url, prefix_));
    if (!prefix_.empty() && prefix_.front() == '/')
        throw std::invalid_argument("S3 URL: prefix must not start with '/': " + url);
    for (char c : prefix_)
        if (!isalnum((unsigned char) c) && !strchr("/._-", c))
            throw std::invalid_argument("S3 URL: prefix may have letters, digits and /._- only: " + url);
    auto credentials = cache::S3Credentials::find(location.profile);
    bucket_ = std::make_unique<cache::S3Cache>(std::move(location), std::move(credentials), cache::S3Cache::Role::Objects);
    fs::create_directories(cacheDir_);
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
    if (fs::exists(path)) return path;
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
    return path;
}

void S3ResultStore::stored(const std::string & fingerprint)
{
    if (!isFingerprint(fingerprint)) throw std::invalid_argument("not a fingerprint: '" + fingerprint + "'");
    auto path = pathFor(fingerprint);
    try {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
        struct stat st;
        if (fstat(fd, &st) != 0) {
            int error = errno;
            ::close(fd);
            throw std::runtime_error("cannot read " + path + ": " + strerror(error));
        }
        // An S3 PUT (or a completed multipart upload) appears whole or not at all.
        void * data = st.st_size ? mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
        ::close(fd);
        if (data == MAP_FAILED) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
        struct Unmap
        {
            void * data;
            size_t size;
            ~Unmap()
            {
                if (data) munmap(data, size);
            }
        } unmap{data, (size_t) st.st_size};
        bucket_->put(key(fingerprint), std::string_view((const char *) data, st.st_size), "application/vnd.apache.parquet");
    } catch (std::exception & e) {
        std::error_code ec;
        fs::remove(path, ec);
        throw std::runtime_error("storing the result in " + url_ + ": " + e.what());
    }
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
    if (setting.rfind("s3://", 0) == 0) return std::make_shared<S3ResultStore>(setting, stateDir + "/results-cache");
    if (setting.rfind("file://", 0) == 0) return std::make_shared<DirectoryResultStore>(setting.substr(7));
    if (setting.find("://") != std::string::npos)
        throw std::invalid_argument("results: '" + setting + "' is neither a directory nor s3://BUCKET?...");
    return std::make_shared<DirectoryResultStore>(setting);
}

} // namespace evolive::results
