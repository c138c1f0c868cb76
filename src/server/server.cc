#include "server.hh"

#include "s3_result_store.hh"

#include <filesystem>
#include <spdlog/spdlog.h>
#include <thread>

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
    settings.evaluation.evaluatorDir = std::filesystem::canonical("/proc/self/exe").parent_path();
    settings.evaluation.refusedResult = [this](const std::string & fingerprint, const std::string & why, bool damaged) {
        (damaged ? metrics_.resultsDamaged : metrics_.resultsWithEnvironmentErrors)++;
        spdlog::warn("evaluating {} again: {}", fingerprint, why);
    };
    settings.evaluation.push = [this](const std::string & drvPath) {
        auto outcome = push_->push(drvPath);
        if (outcome.contains("error")) return nlohmann::json{{"error", outcome["error"]}};
        return nlohmann::json{{"uploaded", outcome["uploaded"]}, {"present", outcome["present"]}};
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
    while (!stopping_) {
        auto connection = std::make_shared<Connection>(Connection::Timeouts{config_.readTimeout, config_.writeTimeout},
                                                       config_.maxRequestBytes);
        boost::system::error_code ec;
        acceptor_.accept(connection->socket(), ec);
        if (stopping_) break;
        if (ec) {
            spdlog::warn("accept: {}", ec.message());
            if (ec == net::error::no_descriptors) std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        boost::system::error_code ignored;
        connection->socket().set_option(tcp::no_delay(true), ignored);
        if (connections_ >= config_.maxConnections) {
            spdlog::warn("{} connections already: refusing one (max-connections)", config_.maxConnections);
            connection->error(http::status::service_unavailable, "too many connections; try again later");
            continue;
        }
        ++connections_;
        std::thread([this, connection] {
            connection->serve(*api_);
            --connections_;
        }).detach();
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
