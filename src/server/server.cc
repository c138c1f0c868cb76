#include "server.hh"

#include "fleet_job_source.hh"

#include "s3_result_store.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace evolive::server {

namespace {

tcp::endpoint parseListen(const std::string & listen)
{
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw ConfigError("listen: '" + listen + "' is not HOST:PORT");
    auto host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) throw ConfigError("listen: '" + host + "' is not an IP address");
    unsigned long port = 0;
    try {
        size_t end = 0;
        port = std::stoul(listen.substr(colon + 1), &end);
        if (end != listen.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
    } catch (...) {
        throw ConfigError("listen: '" + listen.substr(colon + 1) + "' is not a port number");
    }
    return {address, (unsigned short) port};
}

} // namespace

Server::Server(ServerConfig config) : config_(std::move(config))
{
    auto endpoint = parseListen(config_.listen);
    if (config_.tokens.empty() && !endpoint.address().is_loopback())
        throw ConfigError("listen: " + config_.listen +
                          " is not a loopback address and no tokens are configured; set tokens (or listen on 127.0.0.1)");
    std::filesystem::create_directories(config_.stateDir);

    push_ = std::make_unique<PushService>(config_.push, metrics_);
    ServiceSettings settings;
    settings.evaluation.stateDir = config_.stateDir;
    settings.evaluation.results = results::openResultStore(config_.results, config_.stateDir);
    settings.evaluation.results->check();
    spdlog::info("results in {}", settings.evaluation.results->describe());
    settings.evaluation.gitTimeout = config_.gitTimeout;
    settings.evaluation.restrictions = config_.restrictions;
    if (!config_.restrictions.restrictEval) spdlog::warn("restrict-eval is off: evaluations may read any file this server can");
    settings.evaluation.evaluatorDir = config_.evaluatorDir; // finishConfig() filled it in
    if (!config_.fleet.redis.empty()) {
        // Every evaluation goes to the fleet unless its jobset says "fleet": false.
        spdlog::info("evaluating on the fleet at {} ({} paths a chunk)", config_.fleet.redis, config_.fleet.chunkSize);
        settings.evaluation.jobSource = [fleet = config_.fleet, dir = settings.evaluation.evaluatorDir](
                                            const Jobset & jobset) -> std::unique_ptr<JobSource> {
            if (jobset.options.fleet.value_or(true)) return std::make_unique<fleet::FleetJobSource>(fleet, dir);
            return std::make_unique<LocalJobSource>(dir);
        };
    }
    settings.evaluation.refusedResult = [this](const std::string & fingerprint, const std::string & why, bool damaged) {
        (damaged ? metrics_.resultsDamaged : metrics_.resultsWithEnvironmentErrors)++;
        spdlog::warn("evaluating {} again: {}", fingerprint, why);
    };
    settings.evaluation.push = [this](const std::string & drvPath) {
        auto outcome = push_->push(drvPath);
        if (outcome.contains("error")) return nlohmann::json{{"error", outcome["error"]}};
        return nlohmann::json{{"uploaded", outcome["uploaded"]}, {"present", outcome["present"]}};
    };
    settings.evaluation.checkLocalPath = [this](const std::string & path) {
        return refusedLocalPath(config_.allowedPaths, path);
    };
    settings.concurrency = config_.concurrency;
    settings.maxWorkers = config_.maxWorkers;
    settings.keepEvaluations = config_.keepEvaluations;
    evaluations_ = std::make_unique<EvaluationService>(std::move(settings), metrics_);
    api_ = std::make_unique<Api>(config_, *evaluations_, *push_, metrics_);

    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

Server::~Server() = default;

std::string Server::url() const
{
    auto endpoint = acceptor_.local_endpoint();
    auto host = endpoint.address().to_string();
    if (endpoint.address().is_v6()) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(endpoint.port());
}

void Server::run()
{
    spdlog::info("listening on {} (state in {}, binary cache {}, {} evaluation(s) at once)", url(), config_.stateDir,
                 config_.push.cache, config_.concurrency);
    if (config_.tokens.empty())
        spdlog::warn("no tokens are configured: every local user can call this server (fine for local use only)");
    // A descriptor kept in reserve: when accept fails for want of
    // descriptors, freeing it lets the waiting client be told so (503) and
    // closed, instead of waiting unanswered in the backlog.
    int reserve = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    auto backoff = std::chrono::milliseconds(0);
    auto lastWarning = std::chrono::steady_clock::time_point();
    while (!stopping_) {
        tcp::endpoint peer;
        socklen_t length = peer.capacity();
        int fd = ::accept4(acceptor_.native_handle(), peer.data(), &length, SOCK_CLOEXEC);
        if (stopping_) {
            if (fd >= 0) ::close(fd);
            break;
        }
        if (fd < 0) {
            int error = errno;
            if (error == EINTR || error == ECONNABORTED) continue;
            if (std::chrono::steady_clock::now() - lastWarning > std::chrono::seconds(1)) {
                spdlog::warn("accept: {}", strerror(error));
                lastWarning = std::chrono::steady_clock::now();
            }
            if ((error == EMFILE || error == ENFILE) && reserve >= 0) {
                ::close(reserve);
                int waiting = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
                if (waiting >= 0) refuse(waiting, "the server is out of file descriptors; try again later");
                reserve = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            // Back off while the failures last, so that they cost no CPU.
            backoff = std::min(std::max(backoff * 2, std::chrono::milliseconds(5)), std::chrono::milliseconds(500));
            std::this_thread::sleep_for(backoff);
            continue;
        }
        backoff = std::chrono::milliseconds(0);
        peer.resize(length);
        serve(fd, peer);
    }
    if (reserve >= 0) ::close(reserve);
}

void Server::refuse(int fd, const std::string & message)
{
    // Written on the accepting thread without blocking it: the answer is
    // small enough for the socket's buffer.
    auto body = jsonLine(nlohmann::json{{"error", message}}) + "\n";
    auto response = "HTTP/1.1 503 Service Unavailable\r\nServer: evolive\r\nContent-Type: application/json\r\n"
                    "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
    [[maybe_unused]] auto sent = ::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    // What the client sent already is read, so that closing does not reset
    // the connection (which would lose the answer).
    char sink[16384];
    while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    ::close(fd);
    metrics_.requestAnswered(503);
}

void Server::serve(int fd, const tcp::endpoint & peer)
{
    auto address = peer.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    auto client = address.to_string();
    {
        std::lock_guard lock(slotsMutex_);
        if (connections_ >= config_.maxConnections) {
            spdlog::warn("{} connections already: refusing one from {} (max-connections)", config_.maxConnections, client);
            return refuse(fd, "too many connections; try again later (max-connections)");
        }
        if (perClient_[client] >= config_.maxConnectionsPerClient) {
            spdlog::warn("{} connections from {} already: refusing one (max-connections-per-client)",
                         config_.maxConnectionsPerClient, client);
            return refuse(fd, "too many connections from " + client + "; try again later (max-connections-per-client)");
        }
        ++connections_;
        ++perClient_[client];
    }
    auto release = [this, client] {
        std::lock_guard lock(slotsMutex_);
        --connections_;
        if (--perClient_[client] == 0) perClient_.erase(client);
    };
    try {
        auto connection = std::make_shared<Connection>(Connection::Settings{
            config_.headerTimeout, config_.readTimeout, config_.writeTimeout, config_.maxRequestBytes});
        connection->socket().assign(peer.protocol(), fd);
        fd = -1; // the connection's now
        boost::system::error_code ignored;
        connection->socket().set_option(tcp::no_delay(true), ignored);
        std::thread([this, connection, release] {
            connection->serve(*api_);
            release();
        }).detach();
    } catch (std::exception & e) {
        // Out of descriptors (each connection has an io_context) or threads.
        spdlog::warn("cannot serve a connection from {}: {}", client, e.what());
        release();
        if (fd >= 0) refuse(fd, "the server cannot take more connections now; try again later");
    }
}

void Server::stop()
{
    stopping_ = true;
    boost::system::error_code ignored;
    // Wakes the blocked accept().
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
}

} // namespace evolive::server
