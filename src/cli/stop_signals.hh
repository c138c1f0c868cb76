// SIGINT and SIGTERM stop a long-running command (`evolive serve`, `evolive
// worker`), taken by one thread of their own so that what they do is not
// limited to what a signal handler may do.
#pragma once

#include <functional>

namespace evolive {

// Blocks SIGINT and SIGTERM in this thread and in every thread started
// after (they inherit the mask), and ignores SIGPIPE (a closed socket or
// pipe is an error return, not a death). Call before starting threads.
void blockStopSignals();

// Starts the thread that waits for SIGINT or SIGTERM and then calls
// `stop` with it, once.
void onStopSignal(std::function<void(int signal)> stop);

} // namespace evolive
