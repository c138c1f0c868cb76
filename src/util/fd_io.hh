// Writing to file descriptors.
#pragma once

#include <string>
#include <string_view>

namespace evolive {

// Writes all of `data` to `fd`, retrying on EINTR and short writes. Throws
// std::system_error on failure, whose what() is "`what`: <the reason>".
void writeAll(int fd, std::string_view data, const std::string & what);

} // namespace evolive
