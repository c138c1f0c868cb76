#include "nar_writer.hh"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace evolive::nix {

namespace {

void writeUint64(const Sink & sink, uint64_t n)
{
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = (char) ((n >> (8 * i)) & 0xff);
    sink({buf, 8});
}

void writePadding(const Sink & sink, uint64_t len)
{
    static const char zeros[8] = {};
    if (len % 8) sink({zeros, 8 - len % 8});
}

void writeString(const Sink & sink, std::string_view s)
{
    writeUint64(sink, s.size());
    sink(s);
    writePadding(sink, s.size());
}

[[noreturn]] void fail(const std::string & what, const std::string & path)
{
    throw std::runtime_error(what + " '" + path + "': " + strerror(errno));
}

void writeEntry(const std::string & path, const Sink & sink)
{
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) fail("cannot stat", path);
    writeString(sink, "(");
    if (S_ISREG(st.st_mode)) {
        writeString(sink, "type");
        writeString(sink, "regular");
        if (st.st_mode & S_IXUSR) {
            writeString(sink, "executable");
            writeString(sink, "");
        }
        writeString(sink, "contents");
        writeUint64(sink, st.st_size);
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open", path);
        std::vector<char> buf(1 << 16);
        uint64_t left = st.st_size;
        while (left > 0) {
            ssize_t n = read(fd, buf.data(), std::min<uint64_t>(buf.size(), left));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fd);
                errno = n == 0 ? EIO : errno;
                fail("file changed while reading", path);
            }
            sink({buf.data(), (size_t) n});
            left -= n;
        }
        close(fd);
        writePadding(sink, st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
        writeString(sink, "type");
        writeString(sink, "directory");
        std::vector<std::string> names;
        DIR * dir = opendir(path.c_str());
        if (!dir) fail("cannot open directory", path);
        while (auto * e = readdir(dir)) {
            std::string name = e->d_name;
            if (name != "." && name != "..") names.push_back(name);
        }
        closedir(dir);
        std::sort(names.begin(), names.end()); // byte order, whatever the locale
        for (auto & name : names) {
            writeString(sink, "entry");
            writeString(sink, "(");
            writeString(sink, "name");
            writeString(sink, name);
            writeString(sink, "node");
            writeEntry(path + "/" + name, sink);
            writeString(sink, ")");
        }
    } else if (S_ISLNK(st.st_mode)) {
        std::string target(st.st_size + 1, '\0');
        ssize_t n = readlink(path.c_str(), target.data(), target.size());
        if (n < 0) fail("cannot read symlink", path);
        target.resize(n);
        writeString(sink, "type");
        writeString(sink, "symlink");
        writeString(sink, "target");
        writeString(sink, target);
    } else {
        throw std::runtime_error("'" + path + "' is neither a file, a directory nor a symlink");
    }
    writeString(sink, ")");
}

} // namespace

void writeNar(const std::string & path, const Sink & sink)
{
    writeString(sink, "nix-archive-1");
    writeEntry(path, sink);
}

} // namespace evolive::nix
