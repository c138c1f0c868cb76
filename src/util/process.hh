// Running programs without a shell: argv as given, nothing interpreted.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace evolive {

struct ProcessSpec
{
    std::vector<std::string> argv;              // argv[0] is looked up in PATH
    std::map<std::string, std::string> env;     // added to (or replacing in) the environment
    bool inheritEnvironment = true;             // false: `env` is the whole environment
    std::optional<std::string> cwd;
    std::chrono::milliseconds timeout{0};       // 0: none; then SIGKILL
    bool stdinPipe = false;                     // ChildProcess: stdin is a pipe from the caller (else /dev/null)
};

struct ProcessResult
{
    int exitCode = -1; // -1 when killed by a signal or not started
    int signal = 0;
    bool timedOut = false;
    std::string out, err;

    bool ok() const { return exitCode == 0; }
    // "exited with status 2", "killed by signal 9", "timed out after 30 s"
    std::string describe(std::chrono::milliseconds timeout = {}) const;
};

// Runs to completion, capturing stdout and stderr. Throws std::runtime_error
// when the program cannot be started at all.
ProcessResult runProcess(const ProcessSpec & spec);

// A program whose stdout is read as it runs and whose stderr goes to a
// file descriptor of the caller's choice.
class ChildProcess
{
public:
    ChildProcess(const ProcessSpec & spec, int stderrFd);
    ~ChildProcess();
    ChildProcess(const ChildProcess &) = delete;
    ChildProcess & operator=(const ChildProcess &) = delete;

    int stdoutFd() const { return stdout_; }
    // With ProcessSpec::stdinPipe: the write end of the program's stdin
    // (-1 otherwise, and after closeStdin()).
    int stdinFd() const { return stdin_; }
    void closeStdin();
    // Waits for the exit; returns the wait status.
    int wait();
    // Whether it has not exited yet (without reaping it).
    bool running();
    // From any thread: kills the program and everything it started (its
    // process group); wait() then returns.
    void kill();

private:
    std::mutex mutex_; // kill() against the reaping in wait()
    pid_t pid_ = -1;
    int stdout_ = -1;
    int stdin_ = -1;
};

} // namespace evolive
