// A client of the Nix daemon's worker protocol over its Unix socket: the
// handshake and the queries evolive needs (QueryPathInfo,
// QueryValidPaths). Speaks protocol 1.34 (Nix 2.8) and works with daemons
// from 1.17 on; see docs/push.md.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::nix {

struct DaemonError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct PathInfo
{
    std::string path;
    std::string deriver;               // "" when unknown
    std::string narHash;               // base16 SHA-256, as the daemon sends it
    std::set<std::string> references;  // full store paths
    uint64_t registrationTime = 0;
    uint64_t narSize = 0;
    bool ultimate = false;
    std::set<std::string> sigs;
    std::string ca;
};

class DaemonConnection
{
public:
    // The socket: $NIX_DAEMON_SOCKET_PATH, else /nix/var/nix/daemon-socket/socket.
    static std::string defaultSocketPath();

    explicit DaemonConnection(const std::string & socketPath = defaultSocketPath());
    ~DaemonConnection();
    DaemonConnection(const DaemonConnection &) = delete;
    DaemonConnection & operator=(const DaemonConnection &) = delete;

    // The protocol both sides speak (1.minor): the older of the daemon's and
    // ours (1.38).
    unsigned protocolMinor() const { return minor_; }
    // The daemon's Nix version ("2.26.3"), when the protocol tells (1.33 on).
    const std::string & daemonNixVersion() const { return daemonNixVersion_; }

    // nullopt when the path is not valid.
    std::optional<PathInfo> queryPathInfo(const std::string & path);
    std::set<std::string> queryValidPaths(const std::set<std::string> & paths);

private:
    void writeU64(uint64_t n);
    void writeString(const std::string & s);
    void flush();
    uint64_t readU64();
    std::string readString();
    std::set<std::string> readStrings();
    void readExact(char * buf, size_t n);
    // Reads log messages until the daemon's answer starts; throws its error.
    void processStderr();

    int fd_ = -1;
    unsigned minor_ = 0;
    std::string daemonNixVersion_;
    std::string out_;
    std::string in_;
    size_t inPos_ = 0;
};

} // namespace evolive::nix
