#include "process.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace evolive {

namespace {

// fork + exec with stdin from `stdinFd` (-1: /dev/null); returns the pid.
// Child-side code sticks to async-signal-safe calls.
pid_t spawn(const ProcessSpec & spec, int stdoutFd, int stderrFd, int stdinFd = -1)
{
    std::vector<std::string> envStrings;
    for (char ** e = environ; spec.inheritEnvironment && *e; ++e) {
        std::string entry(*e);
        auto name = entry.substr(0, entry.find('='));
        if (!spec.env.count(name)) envStrings.push_back(entry);
    }
    for (auto & [k, v] : spec.env) envStrings.push_back(k + "=" + v);
    std::vector<char *> envp, argv;
    for (auto & e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = spec.argv;
    for (auto & a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (args.empty()) throw std::runtime_error("no program to run");

    int errPipe[2];
    if (pipe2(errPipe, O_CLOEXEC)) throw std::runtime_error("pipe: " + std::string(strerror(errno)));
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork: " + std::string(strerror(errno)));
    if (pid == 0) {
        setpgid(0, 0); // so that a timeout kills the whole tree
        dup2(stdinFd >= 0 ? stdinFd : open("/dev/null", O_RDONLY), 0);
        dup2(stdoutFd, 1);
        dup2(stderrFd, 2);
        if (spec.cwd && chdir(spec.cwd->c_str()) != 0) {
            int e = errno;
            [[maybe_unused]] auto n = write(errPipe[1], &e, sizeof e);
            _exit(127);
        }
        execvpe(argv[0], argv.data(), envp.data());
        int e = errno;
        [[maybe_unused]] auto n = write(errPipe[1], &e, sizeof e);
        _exit(127);
    }
    close(errPipe[1]);
    int childErrno = 0;
    ssize_t n = read(errPipe[0], &childErrno, sizeof childErrno);
    close(errPipe[0]);
    if (n == sizeof childErrno) {
        waitpid(pid, nullptr, 0);
        throw std::runtime_error("cannot run " + args[0] + ": " + strerror(childErrno));
    }
    return pid;
}

} // namespace

std::string ProcessResult::describe(std::chrono::milliseconds timeout) const
{
    if (timedOut) return "timed out after " + std::to_string(timeout.count() / 1000) + " s";
    if (signal) return "killed by signal " + std::to_string(signal);
    return "exited with status " + std::to_string(exitCode);
}

ProcessResult runProcess(const ProcessSpec & spec)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    pid_t pid;
    try {
        pid = spawn(spec, out[1], err[1]);
    } catch (...) {
        for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
        throw;
    }
    close(out[1]);
    close(err[1]);

    ProcessResult result;
    auto deadline = std::chrono::steady_clock::now() + spec.timeout;
    int fds[2] = {out[0], err[0]};
    std::string * sinks[2] = {&result.out, &result.err};
    while (fds[0] >= 0 || fds[1] >= 0) {
        int waitMs = -1;
        if (spec.timeout.count() > 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                result.timedOut = true;
                ::kill(-pid, SIGKILL);
                break;
            }
            waitMs = (int) left.count();
        }
        pollfd p[2];
        int np = 0;
        for (int i = 0; i < 2; ++i)
            if (fds[i] >= 0) p[np++] = {fds[i], POLLIN, 0};
        int r = poll(p, np, waitMs);
        if (r < 0 && errno == EINTR) continue;
        for (int k = 0; k < np; ++k) {
            if (!p[k].revents) continue;
            int i = p[k].fd == fds[0] ? 0 : 1;
            char buf[65536];
            ssize_t n = read(fds[i], buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
    }
    for (int fd : fds)
        if (fd >= 0) close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

ChildProcess::ChildProcess(const ProcessSpec & spec, int stderrFd)
{
    int out[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    if (spec.stdinPipe && pipe2(in, O_CLOEXEC)) {
        close(out[0]);
        close(out[1]);
        throw std::runtime_error("pipe failed");
    }
    try {
        pid_ = spawn(spec, out[1], stderrFd, in[0]);
    } catch (...) {
        for (int fd : {out[0], out[1], in[0], in[1]})
            if (fd >= 0) close(fd);
        throw;
    }
    close(out[1]);
    stdout_ = out[0];
    if (in[0] >= 0) close(in[0]);
    stdin_ = in[1];
}

void ChildProcess::closeStdin()
{
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
}

ChildProcess::~ChildProcess()
{
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) close(stdout_);
    closeStdin();
}

void ChildProcess::kill()
{
    std::lock_guard lock(mutex_);
    if (pid_ > 0) ::kill(-pid_, SIGKILL);
}

bool ChildProcess::running()
{
    std::lock_guard lock(mutex_);
    if (pid_ <= 0) return false;
    siginfo_t info{};
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) < 0) return false;
    return info.si_pid == 0;
}

int ChildProcess::wait()
{
    // Wait without reaping, so that the pid cannot be reused while kill()
    // may still send to it; reap under the lock.
    siginfo_t info{};
    while (waitid(P_PID, pid_, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    std::lock_guard lock(mutex_);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
}

} // namespace evolive
