// Line-oriented I/O on file descriptors: the framing of the pipes between
// the coordinator and its workers (one JSON document per line).
#pragma once

#include <optional>
#include <string>

namespace evolive {

// Buffered reader of newline-terminated lines from a file descriptor.
class LineReader
{
public:
    explicit LineReader(int fd) : fd_(fd) {}

    // Blocks until a whole line is available; nullopt at end of file.
    // Throws std::system_error on a read error.
    std::optional<std::string> readLine();

    // Reads what is available without blocking past one read(2) call and
    // returns false at end of file. Complete lines are then taken with
    // nextBufferedLine().
    bool fill();
    std::optional<std::string> nextBufferedLine();


private:
    int fd_;
    std::string buffer_;
    size_t start_ = 0;
};

} // namespace evolive
