// Connections to one Nix daemon for several threads. A connection serves
// one query at a time (it is one conversation on one socket), so a thread
// borrows a connection for its query and gives it back. Connections are
// opened when first needed, at most `size` of them (each is a process of
// the daemon's), and kept for the next query.
#pragma once

#include "daemon_client.hh"

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace evolive::cache {

class DaemonPool
{
public:
    // `size` 0 counts as 1.
    DaemonPool(std::string socketPath, size_t size);
    DaemonPool(const DaemonPool &) = delete;
    DaemonPool & operator=(const DaemonPool &) = delete;

    // A borrowed connection, given back when the lease goes away; if it goes
    // away because an exception is thrown through it, the connection may be
    // in the middle of a message, so it is closed instead.
    class Lease
    {
    public:
        Lease(DaemonPool & pool, std::unique_ptr<nix::DaemonConnection> c)
            : pool_(pool), c_(std::move(c)), exceptions_(std::uncaught_exceptions())
        {
        }
        ~Lease() { pool_.giveBack(std::move(c_), std::uncaught_exceptions() == exceptions_); }
        Lease(const Lease &) = delete;
        Lease & operator=(const Lease &) = delete;
        nix::DaemonConnection * operator->() { return c_.get(); }
        nix::DaemonConnection & operator*() { return *c_; }

    private:
        DaemonPool & pool_;
        std::unique_ptr<nix::DaemonConnection> c_;
        int exceptions_;
    };

    // Blocks while all `size` connections are lent. Throws nix::DaemonError
    // when a new connection cannot be opened.
    Lease acquire();

    const std::string & socketPath() const { return socketPath_; }

private:
    void giveBack(std::unique_ptr<nix::DaemonConnection> c, bool reusable);

    std::string socketPath_;
    size_t size_;
    std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<nix::DaemonConnection>> idle_;
    size_t lent_ = 0;
};

} // namespace evolive::cache
