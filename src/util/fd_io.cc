#include "fd_io.hh"

#include <cerrno>
#include <system_error>
#include <unistd.h>

namespace evolive {

void writeAll(int fd, std::string_view data, const std::string & what)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), what);
        data.remove_prefix(n);
    }
}

} // namespace evolive
