#include "push_command.hh"

#include "push_session.hh"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

namespace evolive {

namespace {

struct PushOptions
{
    std::vector<std::string> drvs;
    cache::PushSettings push;
    bool json = false;
    bool progress = false;
    bool noProgress = false;
};

// Shows a push's progress on one line of stderr, five times a second, until
// destroyed, which draws the last state once more and clears the line.
class ProgressLine
{
public:
    explicit ProgressLine(const cache::PushProgress & p) : progress_(p), thread_([this] { run(); }) {}
    ~ProgressLine()
    {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        stopped_.notify_one();
        thread_.join();
        draw();
        std::fprintf(stderr, "\r\033[K");
    }

private:
    void run()
    {
        std::unique_lock lock(mutex_);
        while (!stopped_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; })) draw();
    }

    void draw()
    {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        if (!progress_.walked)
            std::fprintf(stderr, "\rchecking the closure: %zu paths   ", progress_.checked.load());
        else
            std::fprintf(stderr, "\ruploading: %zu of %zu paths, %.1f MiB, %.0f s   ", progress_.done.load(),
                         progress_.missing.load(), progress_.fileBytes / 1048576.0, secs);
    }

    const cache::PushProgress & progress_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::mutex mutex_;
    std::condition_variable stopped_;
    bool stop_ = false;
    std::thread thread_; // last: started once the rest is ready
};

int runPush(PushOptions & o)
{
    if (o.drvs.empty() || (o.drvs.size() == 1 && o.drvs[0] == "-")) {
        o.drvs.clear();
        for (std::string line; std::getline(std::cin, line);)
            if (!line.empty()) o.drvs.push_back(line);
    }
    if (o.drvs.empty()) {
        std::cerr << "evolive push: no derivations given (as arguments or one per line on stdin)\n";
        return 2;
    }
    try {
        auto started = std::chrono::steady_clock::now();
        cache::PushSession session(o.push);
        cache::PushProgress progress;
        cache::PushSummary summary;
        {
            std::optional<ProgressLine> line;
            if (o.progress || (!o.noProgress && isatty(2))) line.emplace(progress);
            summary = session.pusher().push(o.drvs, &progress);
        }
        auto target = session.cache().describe();
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (o.json) {
            std::cout << nlohmann::json{{"uploaded", summary.uploaded.size()},
                                        {"present", summary.present.size()},
                                        {"narBytes", summary.narBytes},
                                        {"fileBytes", summary.fileBytes},
                                        {"seconds", seconds},
                                        {"cache", target}}
                             .dump()
                      << "\n";
        } else {
            std::cout << "pushed to " << target << ": " << summary.uploaded.size() << " uploaded ("
                      << summary.fileBytes << " bytes, " << summary.narBytes << " uncompressed), "
                      << summary.present.size() << " already present, in " << seconds << " s\n";
        }
        return 0;
    } catch (std::exception & e) {
        std::cerr << "evolive push: " << e.what() << "\n";
        return 1;
    }
}

} // namespace

void addPushCommand(CLI::App & app)
{
    auto o = std::make_shared<PushOptions>();
    auto * cmd = app.add_subcommand("push", "Push the closures of .drv files into a binary cache");
    cmd->add_option("drvs", o->drvs, ".drv store paths (default: one per line on stdin)");
    cmd->add_option("--to", o->push.cache, "the binary cache: a directory (file://DIR for nix) or s3://BUCKET?endpoint=...&region=...")->required();
    cmd->add_option("--key", o->push.keyFile, "a secret key file (nix-store --generate-binary-cache-key) to sign with");
    cmd->add_option("--compression", o->push.compression, "zstd (default), xz or none")
        ->check(CLI::IsMember({"zstd", "xz", "none"}));
    cmd->add_option("--daemon-socket", o->push.daemonSocket,
                    "the Nix daemon's socket (default: $NIX_DAEMON_SOCKET_PATH, else /nix/var/nix/daemon-socket/socket)");
    cmd->add_option("--redis", o->push.redis,
                    "share what is known to be in the cache through Redis: redis://HOST:PORT or unix:///PATH");
    cmd->add_option("--uploads", o->push.uploads, "paths uploaded at once (default: one per core; 8 for S3)");
    cmd->add_option("--closures", o->push.closures, "closures pushed at once; the others wait their turn (default 4)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--checks", o->push.checks,
                    "paths of a closure checked at once (in the cache, then with the daemon) (default 16)")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--json", o->json, "print the summary as JSON");
    cmd->add_flag("--progress", o->progress, "show progress on stderr (default: when stderr is a terminal)");
    cmd->add_flag("--no-progress", o->noProgress, "never show progress");
    cmd->callback([o]() { throw CLI::RuntimeError(runPush(*o)); });
}

} // namespace evolive
