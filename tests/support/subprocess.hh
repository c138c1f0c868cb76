// Runs a program for a test: argv without a shell, stdout and stderr
// captured, optionally watched while it runs.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace evolive::test {

struct Completed
{
    int exitCode = -1;      // -1 when killed by a signal
    int signal = 0;
    std::string out, err;
};

class Subprocess
{
public:
    // Starts argv[0] (looked up in PATH) with extra environment variables.
    explicit Subprocess(const std::vector<std::string> & argv, const std::map<std::string, std::string> & env = {});
    ~Subprocess();
    Subprocess(const Subprocess &) = delete;
    Subprocess & operator=(const Subprocess &) = delete;

    pid_t pid() const { return pid_; }

    // Reads output until stderr contains `needle`; false on timeout or exit.
    bool waitForStderr(const std::string & needle, std::chrono::seconds timeout);

    // Reads everything until the program exits.
    Completed wait();

    // What it has written to stderr so far (read by waitForStderr).
    const std::string & stderrSoFar() const { return err_; }

private:
    bool pump(int timeoutMs); // false once both pipes are at end of file
    pid_t pid_ = -1;
    int outFd_ = -1, errFd_ = -1;
    std::string out_, err_;
};

// Runs to completion.
Completed runCommand(const std::vector<std::string> & argv, const std::map<std::string, std::string> & env = {});

// `git -C dir ARGS...` with a fixed author and date (and file transport
// allowed for submodules); fails the test when git fails. Its output,
// without the last newline.
std::string git(const std::string & dir, std::vector<std::string> args);

// A fresh directory under $TMPDIR, removed when the object goes away.
class TempDir
{
public:
    TempDir();
    ~TempDir();
    const std::string & path() const { return path_; }
    // Writes `content` to `name` inside the directory; returns the full path.
    std::string write(const std::string & name, const std::string & content) const;

private:
    std::string path_;
};

// A nix-daemon of the test's own, on a socket in `dir`; stopped when the
// object goes away. Throws when it does not start. With `storeRoot`, it
// serves a chroot store there (Nix's local?root=DIR) instead of /nix/store.
class NixDaemon
{
public:
    explicit NixDaemon(const std::string & dir, const std::string & storeRoot = "");
    const std::string & socket() const { return socket_; }

private:
    std::string socket_;
    std::unique_ptr<Subprocess> process_;
};

// Waits for a server started by a test to print `listening PORT` on stderr
// (the scripts in tests/node do); throws naming `what` when it does not.
int listeningPort(Subprocess & server, const std::string & what);

// @20minutes/s3rver (tests/node/s3rver.js, which checks SigV4; credentials
// S3RVER/S3RVER) storing into `dir`, with one bucket, on a free loopback
// port; stopped when the object goes away.
class S3Server
{
public:
    S3Server(const std::string & dir, const std::string & bucket);
    int port() const { return port_; }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    std::unique_ptr<Subprocess> process_;
    int port_ = 0;
};

// `nix` with the nix-command feature, and without the HTTP store's hour-long
// memory of paths it did not find (a test's cache fills up as it runs).
Completed runNix(const std::vector<std::string> & args);

// The .drv of `attr` in examples/release.nix, with `salt`.
std::string instantiateExample(const std::string & attr, const std::string & salt);

// A store path (`nix-store --add`) of a file that is too large for the
// pusher to build in memory (24 MiB: 8 random, salted by `salt`, then 16 of
// one byte, so that compression has work), written under `dir` first.
std::string addLargeFile(const std::string & dir, const std::string & salt);

std::string firstLine(const std::string & s);
// The non-empty lines of `text`.
std::set<std::string> lineSet(const std::string & text);

// Reads a whole file.
std::string readFile(const std::string & path);

// A salt no earlier run used, so that every .drv a test makes is new.
std::string freshSalt();

} // namespace evolive::test
