// `evolive serve`: listens, and serves each connection on a thread of its
// own (see connection.hh) until stop() is called.
#pragma once

#include "api.hh"
#include "config.hh"

#include <atomic>
#include <memory>

namespace evolive::server {

class Server
{
public:
    // Opens the state directory and binds the listening socket. Throws
    // ConfigError (or a system error) when it cannot.
    explicit Server(ServerConfig config);
    ~Server();

    // http://HOST:PORT, with the port actually bound.
    std::string url() const;
    // Accepts connections until stop().
    void run();
    // From any thread (a signal handler thread): stops accepting.
    void stop();
    // After run(): cancels the evaluations (killing their evaluators) and
    // waits for them. Connections still open are left to the process exit.
    void shutdown() { evaluations_->shutdown(); }

private:
    ServerConfig config_;
    Metrics metrics_;
    std::unique_ptr<PushService> push_;
    std::unique_ptr<EvaluationService> evaluations_;
    std::unique_ptr<Api> api_;
    net::io_context context_;
    tcp::acceptor acceptor_{context_};
    std::atomic<bool> stopping_{false};
    std::atomic<size_t> connections_{0};
};

} // namespace evolive::server
