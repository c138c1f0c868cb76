#include "push_command.hh"

#include "binary_cache.hh"
#include "daemon_client.hh"
#include "pusher.hh"
#include "signing_key.hh"

#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace evolive {

namespace {

struct PushOptions
{
    std::vector<std::string> drvs;
    std::string to;
    std::string keyFile;
    std::string compression = "zstd";
    std::string socket;
    std::string redis;
    size_t uploads = 0;
    bool json = false;
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
        std::optional<nix::SigningKey> key;
        if (!o.keyFile.empty()) key = nix::SigningKey::fromFile(o.keyFile);
        auto target = cache::openBinaryCache(o.to);
        nix::DaemonConnection daemon(o.socket.empty() ? nix::DaemonConnection::defaultSocketPath() : o.socket);
        std::unique_ptr<cache::PresenceCache> presence =
            o.redis.empty() ? std::make_unique<cache::PresenceCache>()
                            : std::make_unique<cache::PresenceCache>(o.redis, target->describe());
        cache::Pusher pusher(daemon, *target, *presence, key, o.compression, o.uploads);
        auto summary = pusher.push(o.drvs);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (o.json) {
            std::cout << nlohmann::json{{"uploaded", summary.uploaded.size()},
                                        {"present", summary.present.size()},
                                        {"narBytes", summary.narBytes},
                                        {"fileBytes", summary.fileBytes},
                                        {"seconds", seconds},
                                        {"cache", target->describe()}}
                             .dump()
                      << "\n";
        } else {
            std::cout << "pushed to " << target->describe() << ": " << summary.uploaded.size() << " uploaded ("
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
    cmd->add_option("--to", o->to, "the binary cache: a directory (file://DIR for nix) or s3://BUCKET?endpoint=...&region=...")->required();
    cmd->add_option("--key", o->keyFile, "a secret key file (nix-store --generate-binary-cache-key) to sign with");
    cmd->add_option("--compression", o->compression, "zstd (default), xz or none")
        ->check(CLI::IsMember({"zstd", "xz", "none"}));
    cmd->add_option("--daemon-socket", o->socket,
                    "the Nix daemon's socket (default: $NIX_DAEMON_SOCKET_PATH, else /nix/var/nix/daemon-socket/socket)");
    cmd->add_option("--redis", o->redis,
                    "share what is known to be in the cache through Redis: redis://HOST:PORT or unix:///PATH");
    cmd->add_option("--uploads", o->uploads, "paths uploaded at once (default: one per core)");
    cmd->add_flag("--json", o->json, "print the summary as JSON");
    cmd->callback([o]() { throw CLI::RuntimeError(runPush(*o)); });
}

} // namespace evolive
