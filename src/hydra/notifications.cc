#include "notifications.hh"

#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace evolive::hydra {

std::string makeTraceId()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", (double) ts.tv_sec + ts.tv_nsec / 1e9);
    return std::string(buf) + "." + std::to_string(getpid());
}

std::string payload(std::initializer_list<std::string> fields)
{
    std::string out;
    for (auto & f : fields) out += (out.empty() ? "" : "\t") + f;
    return out;
}

void notify(pqxx::transaction_base & tx, const std::string & channel, const std::string & payload)
{
    tx.exec_params("select pg_notify($1, $2)", channel, payload);
}

void notifyNow(pqxx::connection & conn, const std::string & channel, const std::string & payload)
{
    pqxx::work tx(conn);
    notify(tx, channel, payload);
    tx.commit();
}

} // namespace evolive::hydra
