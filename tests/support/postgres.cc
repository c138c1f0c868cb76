#include "postgres.hh"

#include "subprocess.hh"

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <pwd.h>
#include <stdexcept>
#include <sys/file.h>
#include <unistd.h>

namespace evolive::test {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Debian keeps the server's programs out of PATH.
std::string binDir()
{
    static const std::string dir = [] {
        auto r = runCommand({"pg_config", "--bindir"});
        auto d = trim(r.out);
        if (r.exitCode == 0 && fs::exists(d + "/initdb")) return d;
        std::string best;
        std::error_code ec;
        for (auto & v : fs::directory_iterator("/usr/lib/postgresql", ec))
            if (fs::exists(v.path() / "bin/initdb") && v.path().string() > best) best = v.path().string();
        if (best.empty()) throw std::runtime_error("PostgreSQL's initdb is not installed (Debian: postgresql)");
        return best + "/bin";
    }();
    return dir;
}

void chownToPostgres(const std::string & path)
{
    if (geteuid() != 0) return;
    auto r = runCommand({"chown", "-R", "postgres:postgres", path});
    if (r.exitCode != 0) throw std::runtime_error("cannot give " + path + " to the postgres user: " + r.err);
}

void check(const Completed & r, const std::string & what)
{
    if (r.exitCode != 0) throw std::runtime_error(what + " failed (" + std::to_string(r.exitCode) + "): " + r.err + r.out);
}

// initdb takes seconds; every server starts from a copy of one cluster made
// once, beside the test binaries.
std::string templateCluster()
{
    std::string dir = POSTGRES_TEMPLATE_DIR;
    fs::create_directories(fs::path(dir).parent_path());
    int lock = ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + dir + ".lock");
    try {
        if (!fs::exists(dir + "/data/PG_VERSION")) {
            auto tmp = dir + ".tmp";
            fs::remove_all(tmp);
            fs::create_directories(tmp);
            chownToPostgres(tmp);
            check(runCommand(asPostgres({binDir() + "/initdb", "-D", tmp + "/data", "-A", "trust", "-U", "postgres",
                                         "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync", "--wal-segsize=1"})),
                  "initdb");
            fs::remove_all(dir);
            fs::rename(tmp, dir);
        }
    } catch (...) {
        ::close(lock);
        throw;
    }
    ::close(lock);
    return dir + "/data";
}

} // namespace

std::vector<std::string> asPostgres(std::vector<std::string> argv)
{
    if (geteuid() != 0) return argv;
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    return argv;
}

PostgresServer::PostgresServer()
{
    // A short path: the socket's must fit in 107 bytes.
    char tmpl[] = "/tmp/evolive-pg-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    data_ = dir_ + "/data";
    try {
        auto source = templateCluster();
        check(runCommand({"cp", "-a", source, data_}), "copying the template cluster");
        chownToPostgres(dir_);
        start();
    } catch (...) {
        fs::remove_all(dir_);
        throw;
    }
}

PostgresServer::~PostgresServer()
{
    try {
        stop();
    } catch (...) {
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void PostgresServer::start()
{
    if (running_) return;
    check(runCommand(asPostgres({binDir() + "/pg_ctl", "-D", data_, "-l", dir_ + "/server.log", "-w", "-t", "60", "-o",
                                 "-k " + dir_ + " -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                                 "-c full_page_writes=off",
                                 "start"})),
          "starting PostgreSQL (log: " + dir_ + "/server.log)");
    running_ = true;
}

void PostgresServer::stop()
{
    if (!running_) return;
    check(runCommand(asPostgres({binDir() + "/pg_ctl", "-D", data_, "-m", "immediate", "-w", "stop"})), "stopping PostgreSQL");
    running_ = false;
}

std::string PostgresServer::conninfo(const std::string & database) const
{
    return "host=" + dir_ + " user=postgres dbname=" + database;
}

std::string PostgresServer::url(const std::string & database) const
{
    return "postgresql://postgres@/" + database + "?host=" + dir_;
}

void PostgresServer::createDatabase(const std::string & database, const std::string & sqlFile) const
{
    check(runCommand({binDir() + "/createdb", "-h", dir_, "-U", "postgres", database}), "createdb " + database);
    if (!sqlFile.empty())
        check(runCommand({"psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir_, "-U", "postgres", "-d", database, "-f",
                          sqlFile}),
              "loading " + sqlFile);
}

} // namespace evolive::test
