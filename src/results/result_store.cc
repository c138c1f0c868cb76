#include "result_store.hh"

#include "leftovers.hh"

#include <algorithm>
#include <filesystem>
#include <sys/stat.h>

namespace evolive::results {

namespace fs = std::filesystem;

bool isFingerprint(const std::string & s)
{
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

DirectoryResultStore::DirectoryResultStore(std::string dir) : dir_(std::move(dir))
{
    fs::create_directories(dir_);
    removeLeftovers(dir_, {".tmp-"}); // ParquetWriter's, of evaluations that died
}

std::optional<std::string> DirectoryResultStore::find(const std::string & fingerprint)
{
    if (!isFingerprint(fingerprint)) return std::nullopt;
    auto path = pathFor(fingerprint);
    if (!fs::exists(path)) return std::nullopt;
    return path;
}

std::string DirectoryResultStore::pathFor(const std::string & fingerprint)
{
    return dir_ + "/" + fingerprint + ".parquet";
}

std::vector<StoredResult> DirectoryResultStore::recent(size_t limit)
{
    std::vector<StoredResult> found;
    std::error_code ec;
    for (auto & entry : fs::directory_iterator(dir_, ec)) {
        auto name = entry.path().filename().string();
        if (entry.path().extension() != ".parquet" || !isFingerprint(name.substr(0, name.size() - 8))) continue;
        struct stat st;
        if (stat(entry.path().c_str(), &st) != 0) continue;
        found.push_back({name.substr(0, 64), (int64_t) st.st_mtime, (uint64_t) st.st_size});
    }
    std::sort(found.begin(), found.end(), [](auto & a, auto & b) { return a.modified > b.modified; });
    if (found.size() > limit) found.resize(limit);
    return found;
}

} // namespace evolive::results
