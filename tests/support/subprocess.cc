#include "subprocess.hh"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <poll.h>
#include <random>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace evolive::test {

Subprocess::Subprocess(const std::vector<std::string> & argv, const std::map<std::string, std::string> & env)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    std::vector<char *> cargv;
    for (auto & a : argv) cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        for (auto & [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        execvp(cargv[0], cargv.data());
        dprintf(2, "cannot run %s: %s\n", cargv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    outFd_ = out[0];
    errFd_ = err[0];
}

Subprocess::~Subprocess()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (outFd_ >= 0) close(outFd_);
    if (errFd_ >= 0) close(errFd_);
}

bool Subprocess::pump(int timeoutMs)
{
    std::vector<pollfd> fds;
    if (outFd_ >= 0) fds.push_back({outFd_, POLLIN, 0});
    if (errFd_ >= 0) fds.push_back({errFd_, POLLIN, 0});
    if (fds.empty()) return false;
    int n = poll(fds.data(), fds.size(), timeoutMs);
    if (n <= 0) return true;
    for (auto & p : fds) {
        if (!p.revents) continue;
        char buf[65536];
        ssize_t r = read(p.fd, buf, sizeof buf);
        std::string & sink = p.fd == outFd_ ? out_ : err_;
        if (r > 0) {
            sink.append(buf, r);
        } else if (r == 0 || errno != EINTR) {
            close(p.fd);
            (p.fd == outFd_ ? outFd_ : errFd_) = -1;
        }
    }
    return outFd_ >= 0 || errFd_ >= 0;
}

bool Subprocess::waitForStderr(const std::string & needle, std::chrono::seconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (err_.find(needle) == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        if (!pump(100)) return err_.find(needle) != std::string::npos;
    }
    return true;
}

Completed Subprocess::wait()
{
    while (pump(-1)) {
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    Completed c;
    c.out = std::move(out_);
    c.err = std::move(err_);
    if (WIFEXITED(status)) c.exitCode = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) c.signal = WTERMSIG(status);
    return c;
}

Completed runCommand(const std::vector<std::string> & argv, const std::map<std::string, std::string> & env)
{
    return Subprocess(argv, env).wait();
}

TempDir::TempDir()
{
    std::string base = std::filesystem::temp_directory_path() / "evolive-test-XXXXXX";
    if (!mkdtemp(base.data())) throw std::runtime_error("mkdtemp failed");
    path_ = base;
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string & name, const std::string & content) const
{
    auto full = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::ofstream(full) << content;
    return full;
}

NixDaemon::NixDaemon(const std::string & dir, const std::string & storeRoot) : socket_(dir + "/daemon.sock")
{
    std::filesystem::remove(socket_); // a stale socket refuses connections
    std::map<std::string, std::string> env{{"NIX_DAEMON_SOCKET_PATH", socket_}};
    if (!storeRoot.empty()) env["NIX_REMOTE"] = "local?root=" + storeRoot;
    process_ = std::make_unique<Subprocess>(std::vector<std::string>{"nix-daemon"}, env);
    for (int i = 0; i < 200 && !std::filesystem::exists(socket_); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!std::filesystem::exists(socket_)) throw std::runtime_error("nix-daemon did not start");
}

int listeningPort(Subprocess & server, const std::string & what)
{
    if (!server.waitForStderr("listening ", std::chrono::seconds(30)))
        throw std::runtime_error(what + " did not start: " + server.stderrSoFar());
    auto & err = server.stderrSoFar();
    return std::stoi(err.substr(err.find("listening ") + 10));
}

Completed runNix(const std::vector<std::string> & args)
{
    std::vector<std::string> argv{"nix", "--extra-experimental-features", "nix-command", "--option",
                                  "narinfo-cache-negative-ttl", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
}

std::string instantiateExample(const std::string & attr, const std::string & salt)
{
    auto r = runCommand({"nix-instantiate", EXAMPLES_DIR "/release.nix", "-A", attr, "--argstr", "salt", salt});
    if (r.exitCode != 0) throw std::runtime_error("nix-instantiate failed: " + r.err);
    return firstLine(r.out);
}

std::string addLargeFile(const std::string & dir, const std::string & salt)
{
    std::string content;
    std::mt19937_64 random(std::hash<std::string>{}(salt));
    while (content.size() < (8u << 20)) {
        uint64_t word = random();
        content.append(reinterpret_cast<const char *>(&word), sizeof word);
    }
    content.append(16u << 20, 'e');
    auto file = dir + "/large-" + salt;
    std::ofstream(file, std::ios::binary) << content;
    auto r = runCommand({"nix-store", "--add", file});
    if (r.exitCode != 0) throw std::runtime_error("nix-store --add failed: " + r.err);
    return firstLine(r.out);
}

S3Server::S3Server(const std::string & dir, const std::string & bucket)
{
    process_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"node", "--openssl-legacy-provider", S3RVER_SCRIPT, dir, bucket},
        std::map<std::string, std::string>{{"EVOLIVE_NODE_MODULES", NODE_MODULES}});
    port_ = listeningPort(*process_, "s3rver");
}

std::set<std::string> lineSet(const std::string & text)
{
    std::set<std::string> set;
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);)
        if (!l.empty()) set.insert(l);
    return set;
}

std::string firstLine(const std::string & s)
{
    return s.substr(0, s.find('\n'));
}

std::string readFile(const std::string & path)
{
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string freshSalt()
{
    std::random_device rd;
    std::ostringstream ss;
    ss << "test-" << std::chrono::system_clock::now().time_since_epoch().count() << "-" << rd();
    return ss.str();
}

std::string git(const std::string & dir, std::vector<std::string> args)
{
    std::vector<std::string> argv{"git", "-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.org",
                                  "-c", "protocol.file.allow=always"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runCommand(argv, {{"GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z"}, {"GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z"}});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    auto out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

} // namespace evolive::test
