#include "channel.hh"
#include "fd_io.hh"

#include <gtest/gtest.h>
#include <unistd.h>

using evolive::LineReader;
using evolive::writeAll;

TEST(LineReader, SplitsLinesAcrossWritesAndReportsEndOfFile)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    writeAll(fds[1], "first\nsec", "writing to pipe");
    writeAll(fds[1], "ond\n\nlast-without-newline", "writing to pipe");
    close(fds[1]);

    LineReader reader(fds[0]);
    EXPECT_EQ(reader.readLine(), "first");
    EXPECT_EQ(reader.readLine(), "second");
    EXPECT_EQ(reader.readLine(), "");
    // An unterminated last line is a truncated message, not a line.
    EXPECT_EQ(reader.readLine(), std::nullopt);
    close(fds[0]);
}

TEST(LineReader, CarriesLinesLargerThanThePipeBuffer)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::string big(1 << 20, 'x');
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        writeAll(fds[1], big + "\n", "writing to pipe");
        _exit(0);
    }
    close(fds[1]);
    LineReader reader(fds[0]);
    EXPECT_EQ(reader.readLine(), big);
    close(fds[0]);
}
