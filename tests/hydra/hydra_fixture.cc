#include "hydra_fixture.hh"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace evolive::test {

namespace fs = std::filesystem;

std::string hydraEvalJobsetBinary() { return HYDRA_EVAL_JOBSET_BINARY; }
std::string hydraTestDir() { return HYDRA_TEST_DIR; }

namespace {

const char * const hydraChannels[] = {"eval_started",          "build_queued",        "cached_build_finished",
                                      "cached_build_queued",   "eval_added",          "builds_added",
                                      "eval_cached",           "eval_failed",         "jobset_scheduling_changed",
                                      "builds_restarted"};
const char * const sentinelChannel = "evolive_test_sentinel";

std::string replaceAll(std::string s, const std::string & from, const std::string & to)
{
    for (size_t i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size())) s.replace(i, from.size(), to);
    return s;
}

} // namespace

struct NotificationListener::Receiver : pqxx::notification_receiver
{
    Receiver(pqxx::connection_base & c, const std::string & channel, std::vector<Notification> & into)
        : pqxx::notification_receiver(c, channel), into_(into)
    {
    }
    void operator()(const std::string & payload, int) override { into_.push_back({channel(), payload}); }
    std::vector<Notification> & into_;
};

NotificationListener::NotificationListener(const std::string & conninfo)
    : conninfo_(conninfo), conn_(std::make_unique<pqxx::connection>(conninfo))
{
    for (auto * channel : hydraChannels) receivers_.push_back(std::make_unique<Receiver>(*conn_, channel, received_));
    receivers_.push_back(std::make_unique<Receiver>(*conn_, sentinelChannel, received_));
    conn_->get_notifs(); // makes the LISTENs take effect now
}

NotificationListener::~NotificationListener() = default;

std::vector<Notification> NotificationListener::drain()
{
    static int counter = 0;
    auto token = std::to_string(++counter);
    {
        pqxx::connection other(conninfo_);
        pqxx::work tx(other);
        tx.exec_params("select pg_notify($1, $2)", sentinelChannel, token);
        tx.commit();
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
        for (size_t i = 0; i < received_.size(); ++i)
            if (received_[i].channel == sentinelChannel && received_[i].payload == token) {
                std::vector<Notification> out(received_.begin(), received_.begin() + i);
                received_.erase(received_.begin(), received_.begin() + i + 1);
                return out;
            }
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("the sentinel notification never came");
        conn_->await_notification(1, 0);
    }
}

HydraFixture::HydraFixture() : pg_(std::make_unique<PostgresServer>())
{
    pg_->createDatabase("hydra", hydraTestDir() + "/hydra_schema.sql");
    salt_ = freshSalt();
    roots_ = data_.path() + "/gcroots";
    configPath_ = data_.path() + "/hydra.conf";
    jobsDir_ = data_.path() + "/jobs";
    fs::copy(hydraTestDir() + "/jobs", jobsDir_, fs::copy_options::recursive);
    std::ofstream(jobsDir_ + "/config.nix") << replaceAll(readFile(jobsDir_ + "/config.nix.in"), "@salt@", salt_);
    fs::remove(jobsDir_ + "/config.nix.in");
    // As in Hydra's own tests: no 30-second memory of path inputs.
    writeConfig("path_input_cache_validity_seconds = 0\n");
    exec("insert into users (username, emailaddress, password) values ('root', 'root@invalid.org', '')");
}

HydraFixture::~HydraFixture() = default;

pqxx::result HydraFixture::query(const std::string & sql) const
{
    auto conn = connect();
    pqxx::work tx(*conn);
    auto r = tx.exec(sql);
    tx.commit();
    return r;
}

std::optional<std::string> HydraFixture::scalar(const std::string & sql) const
{
    auto r = query(sql);
    if (r.empty() || r[0][0].is_null()) return std::nullopt;
    return r[0][0].as<std::string>();
}

void HydraFixture::exec(const std::string & sql) const
{
    query(sql);
}

void HydraFixture::writeConfig(const std::string & text)
{
    config_ = text;
    std::ofstream(configPath_) << "gc_roots_dir = " << roots_ << "\n" << text;
}

std::string HydraFixture::jobsDirWith(const std::string & file, const std::string & name)
{
    static int counter = 0;
    auto dir = data_.path() + "/jobset-" + std::to_string(++counter);
    fs::create_directories(dir);
    fs::copy_file(jobsDir_ + "/config.nix", dir + "/config.nix");
    fs::copy_file(jobsDir_ + "/" + file, dir + "/" + name);
    return dir;
}

int HydraFixture::createJobset(const std::string & name, const std::string & expr, const std::string & jobsDir,
                               const std::string & project)
{
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec_params("insert into projects (name, displayname, owner) values ($1, '', 'root') on conflict do nothing",
                   project);
    int id = tx.exec_params1("insert into jobsets (name, project, nixexprinput, nixexprpath, emailoverride) "
                             "values ($1, $2, 'jobs', $3, '') returning id",
                             name, project, expr)[0]
                 .as<int>();
    tx.commit();
    addInput(name, "jobs", "path", {jobsDir.empty() ? jobsDir_ : jobsDir}, project);
    return id;
}

void HydraFixture::addInput(const std::string & jobset, const std::string & name, const std::string & type,
                            const std::vector<std::string> & values, const std::string & project)
{
    auto conn = connect();
    pqxx::work tx(*conn);
    tx.exec_params("insert into jobsetinputs (project, jobset, name, type) values ($1, $2, $3, $4)", project, jobset,
                   name, type);
    for (size_t n = 0; n < values.size(); ++n)
        tx.exec_params("insert into jobsetinputalts (project, jobset, input, altnr, value) values ($1, $2, $3, $4, $5)",
                       project, jobset, name, (int) n, values[n]);
    tx.commit();
}

std::map<std::string, std::string> HydraFixture::environment() const
{
    return {{"HYDRA_DATABASE_URL", pg_->url("hydra")}, {"HYDRA_DATA", data_.path()}, {"HYDRA_CONFIG", configPath_}};
}

Completed HydraFixture::evalJobset(const std::string & jobset, const std::string & project,
                                   const std::map<std::string, std::string> & extra)
{
    auto env = environment();
    for (auto & [k, v] : extra) env[k] = v;
    return runCommand({hydraEvalJobsetBinary(), project, jobset}, env);
}

std::map<std::string, std::map<std::string, std::string>> HydraFixture::builds(int jobsetId) const
{
    std::map<std::string, std::map<std::string, std::string>> out;
    auto r = query("select * from builds where jobset_id = " + std::to_string(jobsetId) + " order by id");
    for (auto row : r) {
        std::map<std::string, std::string> cols;
        for (auto f : row) cols[f.name()] = f.is_null() ? "" : f.as<std::string>();
        out[cols["job"]] = cols;
    }
    return out;
}

} // namespace evolive::test
