#include "daemon_client.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace evolive::nix {

namespace {

constexpr uint64_t workerMagic1 = 0x6e697863;
constexpr uint64_t workerMagic2 = 0x6478696f;
// The newest protocol spoken here: 1.38, Nix 2.26's. The connection uses
// the older of this and the daemon's (Nix 2.8 speaks 1.34); between the
// two only the handshake differs for the queries made here (1.35 adds the
// daemon's trust in us, 1.38 a feature exchange).
constexpr uint64_t protocolVersion = 1 << 8 | 38;

constexpr uint64_t opQueryPathInfo = 26;
constexpr uint64_t opQueryValidPaths = 31;

constexpr uint64_t stderrNext = 0x6f6c6d67;
constexpr uint64_t stderrRead = 0x64617461;
constexpr uint64_t stderrWrite = 0x64617416;
constexpr uint64_t stderrLast = 0x616c7473;
constexpr uint64_t stderrError = 0x63787470;
constexpr uint64_t stderrStartActivity = 0x53545254;
constexpr uint64_t stderrStopActivity = 0x53544f50;
constexpr uint64_t stderrResult = 0x52534c54;

} // namespace

std::string DaemonConnection::defaultSocketPath()
{
    if (const char * p = getenv("NIX_DAEMON_SOCKET_PATH")) return p;
    return "/nix/var/nix/daemon-socket/socket";
}

DaemonConnection::DaemonConnection(const std::string & socketPath)
{
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw DaemonError("cannot create a socket: " + std::string(strerror(errno)));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socketPath.size() >= sizeof addr.sun_path) throw DaemonError("socket path too long: " + socketPath);
    strcpy(addr.sun_path, socketPath.c_str());
    if (connect(fd_, (sockaddr *) &addr, sizeof addr) != 0) {
        auto why = std::string(strerror(errno));
        close(fd_);
        fd_ = -1;
        throw DaemonError("cannot connect to the Nix daemon at " + socketPath + ": " + why);
    }
    try {
        writeU64(workerMagic1);
        flush();
        if (readU64() != workerMagic2) throw DaemonError("protocol mismatch");
        uint64_t version = readU64();
        if ((version & 0xff00) != (protocolVersion & 0xff00)) throw DaemonError("unsupported daemon protocol");
        unsigned daemonMinor = version & 0xff;
        if (daemonMinor < 17)
            throw DaemonError("the Nix daemon is too old (protocol 1." + std::to_string(daemonMinor) + ")");
        // Both sides then speak the older of the two versions.
        minor_ = std::min<unsigned>(daemonMinor, protocolVersion & 0xff);
        writeU64(protocolVersion);
        if (minor_ >= 38) {
            writeU64(0); // the features we support: none
            flush();
            readStrings(); // the daemon's
        }
        writeU64(0); // obsolete CPU affinity
        writeU64(0); // obsolete reserveSpace
        flush();
        if (minor_ >= 33) daemonNixVersion_ = readString();
        if (minor_ >= 35) readU64();    // whether it trusts us (0: unknown, 1: yes, 2: no)
        processStderr();
    } catch (...) {
        close(fd_);
        fd_ = -1;
        throw;
    }
}

DaemonConnection::~DaemonConnection()
{
    if (fd_ >= 0) close(fd_);
}

void DaemonConnection::writeU64(uint64_t n)
{
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = (char) ((n >> (8 * i)) & 0xff);
    out_.append(buf, 8);
}

void DaemonConnection::writeString(const std::string & s)
{
    writeU64(s.size());
    out_ += s;
    if (s.size() % 8) out_.append(8 - s.size() % 8, '\0');
}

void DaemonConnection::flush()
{
    size_t done = 0;
    while (done < out_.size()) {
        ssize_t n = send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw DaemonError("writing to the Nix daemon: " + std::string(strerror(errno)));
        done += n;
    }
    out_.clear();
}

void DaemonConnection::readExact(char * buf, size_t n)
{
    while (n > 0) {
        if (inPos_ == in_.size()) {
            in_.resize(65536);
            ssize_t r = read(fd_, in_.data(), in_.size());
            if (r < 0 && errno == EINTR) {
                in_.clear();
                inPos_ = 0;
                continue;
            }
            if (r <= 0) throw DaemonError("the Nix daemon closed the connection");
            in_.resize(r);
            inPos_ = 0;
        }
        size_t take = std::min(n, in_.size() - inPos_);
        memcpy(buf, in_.data() + inPos_, take);
        inPos_ += take;
        buf += take;
        n -= take;
    }
}

uint64_t DaemonConnection::readU64()
{
    unsigned char buf[8];
    readExact((char *) buf, 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | buf[i];
    return n;
}

std::string DaemonConnection::readString()
{
    uint64_t len = readU64();
    if (len > (64u << 20)) throw DaemonError("the Nix daemon sent an implausibly long string");
    std::string s(len, '\0');
    readExact(s.data(), len);
    if (len % 8) {
        char pad[8];
        readExact(pad, 8 - len % 8);
    }
    return s;
}

std::set<std::string> DaemonConnection::readStrings()
{
    std::set<std::string> out;
    for (uint64_t n = readU64(); n > 0; --n) out.insert(readString());
    return out;
}

void DaemonConnection::processStderr()
{
    auto skipFields = [&] {
        for (uint64_t n = readU64(); n > 0; --n) {
            if (readU64() == 0) readU64(); // an integer field
            else readString();             // a string field
        }
    };
    while (true) {
        uint64_t msg = readU64();
        if (msg == stderrLast) return;
        if (msg == stderrNext || msg == stderrWrite) {
            readString();
        } else if (msg == stderrError) {
            if (minor_ >= 26) {
                readString();          // "Error"
                readU64();             // level
                readString();          // name (unused)
                auto message = readString();
                readU64();             // havePos (0)
                for (uint64_t n = readU64(); n > 0; --n) {
                    readU64();
                    readString();
                }
                throw DaemonError(message);
            }
            auto message = readString();
            readU64();
            throw DaemonError(message);
        } else if (msg == stderrStartActivity) {
            readU64();
            readU64();
            readU64();
            readString();
            skipFields();
            readU64();
        } else if (msg == stderrStopActivity) {
            readU64();
        } else if (msg == stderrResult) {
            readU64();
            readU64();
            skipFields();
        } else if (msg == stderrRead) {
            throw DaemonError("the Nix daemon asked for data, which no query here sends");
        } else {
            throw DaemonError("unknown message from the Nix daemon");
        }
    }
}

std::optional<PathInfo> DaemonConnection::queryPathInfo(const std::string & path)
{
    writeU64(opQueryPathInfo);
    writeString(path);
    flush();
    try {
        processStderr();
    } catch (DaemonError & e) {
        if (std::string(e.what()).find("is not valid") != std::string::npos) return std::nullopt;
        throw;
    }
    if (!readU64()) return std::nullopt;
    PathInfo info;
    info.path = path;
    info.deriver = readString();
    info.narHash = readString();
    info.references = readStrings();
    info.registrationTime = readU64();
    info.narSize = readU64();
    info.ultimate = readU64() != 0;
    info.sigs = readStrings();
    info.ca = readString();
    return info;
}

std::set<std::string> DaemonConnection::queryValidPaths(const std::set<std::string> & paths)
{
    writeU64(opQueryValidPaths);
    writeU64(paths.size());
    for (auto & p : paths) writeString(p);
    if (minor_ >= 27) writeU64(0); // do not substitute
    flush();
    processStderr();
    return readStrings();
}

} // namespace evolive::nix
