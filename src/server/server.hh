// `evolive serve`: listens, and serves each connection on a thread of its
// own (see connection.hh) until stop() is called.
#pragma once

#include "api.hh"
#include "config.hh"

#include <atomic>
#include <map>
#include <mutex>
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
    // Takes an accepted connection, or refuses it over max-connections or
    // max-connections-per-client.
    void serve(int fd, const tcp::endpoint & peer);
    // Answers 503 with `message` and closes, without a Connection (which
    // costs descriptors and a thread).
    void refuse(int fd, const std::string & message);

    ServerConfig config_;
    Metrics metrics_;
    std::unique_ptr<PushService> push_;
    std::unique_ptr<EvaluationService> evaluations_;
    std::unique_ptr<Api> api_;
    net::io_context context_;
    tcp::acceptor acceptor_{context_};
    std::atomic<bool> stopping_{false};
    std::mutex slotsMutex_; // guards the two below
    size_t connections_ = 0;
    std::map<std::string, size_t> perClient_; // open connections by client address
};

} // namespace evolive::server
