#include "stop_signals.hh"

#include <csignal>
#include <pthread.h>
#include <thread>

namespace evolive {

namespace {

sigset_t stopSignals()
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    return signals;
}

} // namespace

void blockStopSignals()
{
    auto signals = stopSignals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

void onStopSignal(std::function<void(int signal)> stop)
{
    std::thread([stop = std::move(stop)] {
        auto signals = stopSignals();
        int signal = 0;
        sigwait(&signals, &signal);
        stop(signal);
    }).detach();
}

} // namespace evolive
