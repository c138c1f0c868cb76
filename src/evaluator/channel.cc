#include "channel.hh"

#include <cerrno>
#include <system_error>
#include <unistd.h>

namespace evolive {

std::optional<std::string> LineReader::nextBufferedLine()
{
    auto nl = buffer_.find('\n', start_);
    if (nl == std::string::npos) {
        // Keep the buffer from growing without bound on the consumed side.
        if (start_ > 0) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
        return std::nullopt;
    }
    std::string line = buffer_.substr(start_, nl - start_);
    start_ = nl + 1;
    return line;
}

bool LineReader::fill()
{
    char chunk[65536];
    while (true) {
        ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "reading from pipe");
        if (n == 0) return false;
        buffer_.append(chunk, n);
        return true;
    }
}

std::optional<std::string> LineReader::readLine()
{
    while (true) {
        if (auto line = nextBufferedLine()) return line;
        if (!fill()) return std::nullopt;
    }
}

} // namespace evolive
