#include "binary_cache.hh"

#include "fd_io.hh"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <unistd.h>

namespace evolive::cache {

namespace fs = std::filesystem;

std::optional<std::vector<std::string>> BinaryCache::narinfoKeys(size_t)
{
    return std::nullopt;
}

std::string CacheInfo::render() const
{
    return "StoreDir: /nix/store\nWantMassQuery: " + std::string(wantMassQuery ? "1" : "0") +
           "\nPriority: " + std::to_string(priority) + "\n";
}

DirectoryCache::DirectoryCache(std::string root, CacheInfo info) : root_(fs::absolute(root).lexically_normal().string())
{
    fs::create_directories(root_ + "/nar");
    if (!exists("nix-cache-info")) put("nix-cache-info", info.render(), "text/x-nix-cache-info");
}

bool DirectoryCache::exists(const std::string & key)
{
    return fs::exists(root_ + "/" + key);
}

std::optional<std::vector<std::string>> DirectoryCache::narinfoKeys(size_t limit)
{
    std::vector<std::string> keys;
    for (auto & entry : fs::directory_iterator(root_)) {
        auto name = entry.path().filename().string();
        if (!name.ends_with(".narinfo")) continue; // `*.narinfo.tmp-*` are not
        if (keys.size() == limit) return std::nullopt;
        keys.push_back(std::move(name));
    }
    return keys;
}

void BinaryCache::putFile(const std::string & key, const std::string & path, const std::string & contentType)
{
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
    put(key, data, contentType);
}

void DirectoryCache::install(const std::string & key, const std::function<void(int fd, const std::string & tmp)> & write)
{
    // A temporary file renamed into place: a reader (or a crash) never
    // sees a partial file under `key`.
    auto target = root_ + "/" + key;
    static std::atomic<uint64_t> counter{0};
    auto tmp = target + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + strerror(errno));
    try {
        write(fd, tmp);
    } catch (...) {
        close(fd);
        unlink(tmp.c_str());
        throw;
    }
    // No fsync, as Nix's own file:// caches: renaming makes the file appear
    // whole to readers and survives the process being killed; surviving a
    // power loss in order would need an fsync per file (measured: 3x slower
    // than nix copy).
    if (close(fd) != 0) {
        unlink(tmp.c_str());
        throw std::runtime_error("cannot write " + tmp + ": " + strerror(errno));
    }
    if (rename(tmp.c_str(), target.c_str()) != 0) {
        unlink(tmp.c_str());
        throw std::runtime_error("cannot rename " + tmp + ": " + strerror(errno));
    }
}

void DirectoryCache::put(const std::string & key, std::string_view data, const std::string &)
{
    install(key, [&](int fd, const std::string & tmp) { writeAll(fd, data, "cannot write " + tmp); });
}

void DirectoryCache::putFile(const std::string & key, const std::string & path, const std::string &)
{
    int from = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (from < 0) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
    struct Close
    {
        int fd;
        ~Close() { close(fd); }
    } closeFrom{from};
    install(key, [&](int fd, const std::string & tmp) {
        while (true) {
            ssize_t n = copy_file_range(from, nullptr, fd, nullptr, 1 << 30, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw std::runtime_error("cannot copy " + path + " to " + tmp + ": " + strerror(errno));
            if (n == 0) return;
        }
    });
}

} // namespace evolive::cache
