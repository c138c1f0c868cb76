// A counting semaphore that lets waiters in in the order they came, so
// that a steady stream of callers cannot starve one that waits already.
// The Pusher's caps (closures at once, uploads at once) are these.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace evolive::cache {

class FifoSemaphore
{
public:
    explicit FifoSemaphore(size_t count) : count_(count), free_(count) {}
    FifoSemaphore(const FifoSemaphore &) = delete;
    FifoSemaphore & operator=(const FifoSemaphore &) = delete;

    // Blocks until every earlier caller is in and a unit is free.
    void acquire()
    {
        std::unique_lock lock(mutex_);
        auto ticket = nextTicket_++;
        ++waiting_;
        changed_.wait(lock, [&] { return ticket == serving_ && free_ > 0; });
        --waiting_;
        --free_;
        ++serving_;
        changed_.notify_all(); // the next ticket may go too
    }

    void release()
    {
        std::lock_guard lock(mutex_);
        ++free_;
        changed_.notify_all();
    }

    // Callers blocked in acquire() now.
    size_t waiting()
    {
        std::lock_guard lock(mutex_);
        return waiting_;
    }

    // Units acquired and not released now.
    size_t held()
    {
        std::lock_guard lock(mutex_);
        return count_ - free_;
    }

    // Holds one unit for a scope.
    class Hold
    {
    public:
        explicit Hold(FifoSemaphore & s) : s_(s) { s_.acquire(); }
        ~Hold() { s_.release(); }
        Hold(const Hold &) = delete;
        Hold & operator=(const Hold &) = delete;

    private:
        FifoSemaphore & s_;
    };

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    const size_t count_;
    size_t free_;
    size_t waiting_ = 0;
    uint64_t nextTicket_ = 0, serving_ = 0;
};

} // namespace evolive::cache
