// A PostgreSQL server of the test's own (Debian's postgresql): a cluster
// made with initdb in a temporary directory owned by the `postgres` user
// (initdb and the server refuse to run as root), listening only on a Unix
// socket in that directory, stopped and removed when the object goes away.
// A server that cannot start throws, which fails the test.
#pragma once

#include <string>
#include <vector>

namespace evolive::test {

class PostgresServer
{
public:
    PostgresServer();
    ~PostgresServer();
    PostgresServer(const PostgresServer &) = delete;
    PostgresServer & operator=(const PostgresServer &) = delete;

    // The directory of the socket (libpq's `host`).
    const std::string & socketDir() const { return dir_; }
    // A libpq connection string for `database`, as the superuser.
    std::string conninfo(const std::string & database) const;
    // The same as a postgres:// URL (HYDRA_DATABASE_URL's form).
    std::string url(const std::string & database) const;

    // Creates `database`, optionally loading an SQL file into it (psql,
    // stopping at the first error).
    void createDatabase(const std::string & database, const std::string & sqlFile = "") const;

    // Stops the server (immediately), and starts it again on the same socket.
    void stop();
    void start();

private:
    std::string dir_, data_;
    bool running_ = false;
};

// Runs a command as the postgres user (through runuser when root).
std::vector<std::string> asPostgres(std::vector<std::string> argv);

} // namespace evolive::test
