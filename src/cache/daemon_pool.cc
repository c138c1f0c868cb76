#include "daemon_pool.hh"

namespace evolive::cache {

DaemonPool::DaemonPool(std::string socketPath, size_t size) : socketPath_(std::move(socketPath)), size_(size ? size : 1)
{
}

DaemonPool::Lease DaemonPool::acquire()
{
    std::unique_lock lock(mutex_);
    returned_.wait(lock, [&] { return !idle_.empty() || lent_ < size_; });
    ++lent_;
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(c));
    }
    // Opened without the lock: the handshake is a round trip.
    lock.unlock();
    try {
        return Lease(*this, std::make_unique<nix::DaemonConnection>(socketPath_));
    } catch (...) {
        lock.lock();
        --lent_;
        returned_.notify_one();
        throw;
    }
}

void DaemonPool::giveBack(std::unique_ptr<nix::DaemonConnection> c, bool reusable)
{
    std::lock_guard lock(mutex_);
    --lent_;
    if (c && reusable) idle_.push_back(std::move(c));
    returned_.notify_one();
}

} // namespace evolive::cache
