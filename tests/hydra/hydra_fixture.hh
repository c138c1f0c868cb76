// What the Hydra tests share: a PostgreSQL server with the test schema
// (tests/hydra/hydra_schema.sql), HYDRA_DATA and hydra.conf in a temporary
// directory, a copy of tests/hydra/jobs with a fresh salt, jobsets made the
// way Hydra's own test harness makes them (a project, a jobset whose input
// `jobs` is a path), running build/bin/hydra-eval-jobset, and listening to
// its notifications.
#pragma once

#include "postgres.hh"
#include "subprocess.hh"

#include <pqxx/pqxx>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evolive::test {

struct Notification
{
    std::string channel, payload;
};

// A connection LISTENing on Hydra's channels from its creation on.
class NotificationListener
{
public:
    explicit NotificationListener(const std::string & conninfo);
    ~NotificationListener();
    // Everything that arrived, in order, up to now: a NOTIFY of our own on
    // another connection is sent and awaited, and notifications are
    // delivered in commit order, so nothing committed before is missed.
    std::vector<Notification> drain();

private:
    struct Receiver;
    std::string conninfo_;
    std::unique_ptr<pqxx::connection> conn_;
    // Before the receivers: removing one (UNLISTEN) may deliver to the others.
    std::vector<Notification> received_;
    std::vector<std::unique_ptr<Receiver>> receivers_;
};

class HydraFixture
{
public:
    HydraFixture();
    ~HydraFixture();

    PostgresServer & postgres() { return *pg_; }
    std::string conninfo() const { return pg_->conninfo("hydra"); }
    std::unique_ptr<pqxx::connection> connect() const { return std::make_unique<pqxx::connection>(conninfo()); }
    // One query's result (in a transaction of its own).
    pqxx::result query(const std::string & sql) const;
    // The first column of the first row, or nothing when NULL/no row.
    std::optional<std::string> scalar(const std::string & sql) const;
    void exec(const std::string & sql) const;

    // hydra.conf's text (replacing it); the gc_roots_dir line is added.
    void writeConfig(const std::string & text);
    const std::string & dataDir() const { return data_.path(); }
    const std::string & rootsDir() const { return roots_; }
    const std::string & salt() const { return salt_; }

    // This test's copy of tests/hydra/jobs.
    const std::string & jobsDir() const { return jobsDir_; }
    // A fresh folder with config.nix (salted) and `file` (from tests/hydra/jobs) as NAME.
    std::string jobsDirWith(const std::string & file, const std::string & name = "default.nix");

    // Project `tests` (owner root) and jobset NAME evaluating jobs/EXPR,
    // with input `jobs` (a path); returns the jobset's id.
    int createJobset(const std::string & name, const std::string & expr, const std::string & jobsDir = "",
                     const std::string & project = "tests");
    void addInput(const std::string & jobset, const std::string & name, const std::string & type,
                  const std::vector<std::string> & values, const std::string & project = "tests");

    // Runs build/bin/hydra-eval-jobset PROJECT JOBSET with Hydra's environment.
    Completed evalJobset(const std::string & jobset, const std::string & project = "tests",
                         const std::map<std::string, std::string> & env = {});
    std::map<std::string, std::string> environment() const;

    // Builds of the jobset by job name: the row as column -> value ("" for NULL).
    std::map<std::string, std::map<std::string, std::string>> builds(int jobsetId) const;

private:
    std::unique_ptr<PostgresServer> pg_;
    TempDir data_;
    std::string roots_, jobsDir_, salt_, configPath_, config_;
};

std::string hydraEvalJobsetBinary();
std::string hydraTestDir();

} // namespace evolive::test
