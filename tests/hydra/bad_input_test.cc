// What goes wrong, and that it is said clearly, with Hydra's exit status,
// and leaves nothing half-written: jobsets that do not exist, inputs Hydra
// refuses or cannot fetch, a bad hydra.conf, a database that is down, has
// another schema or goes away during the evaluation, and a transaction
// that PostgreSQL aborts to break a deadlock.
#include "hydra_fixture.hh"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace evolive::test {

namespace fs = std::filesystem;

namespace {

std::string str(int n) { return std::to_string(n); }

long count(HydraFixture & h, const std::string & sql) { return std::stol(h.scalar(sql).value_or("0")); }

void expectNothingWritten(HydraFixture & h)
{
    EXPECT_EQ(count(h, "select count(*) from jobsetevals"), 0);
    EXPECT_EQ(count(h, "select count(*) from builds"), 0);
    EXPECT_EQ(count(h, "select count(*) from buildoutputs"), 0);
    EXPECT_EQ(count(h, "select count(*) from jobsetevalmembers"), 0);
    EXPECT_EQ(count(h, "select count(*) from evaluationerrors"), 0);
}

// A fetch error: recorded in fetcherrormsg (errormsg untouched), eval_failed, exit 0.
void expectFetchError(HydraFixture & h, NotificationListener & listener, int id, const Completed & r,
                      const std::string & messagePart)
{
    EXPECT_EQ(r.exitCode, 0) << r.err;
    auto row = h.query("select fetcherrormsg, errormsg, lastcheckedtime is not null from jobsets where id = " + str(id));
    auto fetchError = row[0][0].is_null() ? "" : row[0][0].as<std::string>();
    EXPECT_NE(fetchError.find(messagePart), std::string::npos) << fetchError;
    EXPECT_TRUE(row[0][1].is_null()) << "errormsg is for evaluation errors";
    EXPECT_TRUE(row[0][2].as<bool>());
    auto n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[0].channel, "eval_started");
    EXPECT_EQ(n[1].channel, "eval_failed");
    EXPECT_EQ(n[1].payload, n[0].payload);
    expectNothingWritten(h);
}

} // namespace

TEST(HydraBadInput, JobsetOrProjectThatDoesNotExist)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    h.createJobset("basic", "basic.nix");
    auto r = h.evalJobset("nope");
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("specified jobset \"tests:nope\" does not exist"), std::string::npos) << r.err;
    r = h.evalJobset("basic", "noproject");
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("\"noproject:basic\" does not exist"), std::string::npos) << r.err;
    EXPECT_TRUE(listener.drain().empty());
    r = runCommand({hydraEvalJobsetBinary(), "only-one-argument"}, h.environment());
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("syntax: "), std::string::npos) << r.err;
    expectNothingWritten(h);
}

TEST(HydraBadInput, SeveralAlternativesAreRefused)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("args", "arguments.nix");
    h.addInput("args", "label", "string", {"one", "two"});
    h.addInput("args", "flag", "boolean", {"true"});
    h.addInput("args", "extra", "nix", {"{ n = 1; }"});
    auto r = h.evalJobset("args");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_EQ(h.scalar("select errormsg from jobsets where id = " + str(id)),
              "multiple jobset input alternatives are no longer supported\n");
    auto n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[1].channel, "eval_failed");
    expectNothingWritten(h);
}

TEST(HydraBadInput, MalformedValuesAreFetchErrors)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("args", "arguments.nix");
    h.addInput("args", "flag", "boolean", {"yes"});
    auto r = h.evalJobset("args");
    expectFetchError(h, listener, id, r, "is a boolean, but its value `yes' is neither `true' nor `false'");
}

TEST(HydraBadInput, UnsupportedAndUnknownTypesAreFetchErrors)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("hg", "basic.nix");
    h.addInput("hg", "src", "hg", {"https://example.org/repo"});
    auto r = h.evalJobset("hg");
    expectFetchError(h, listener, id, r, "input `src' has type `hg', which evolive's hydra-eval-jobset does not support");

    int other = h.createJobset("weird", "basic.nix");
    h.addInput("weird", "src", "weird", {"x"});
    r = h.evalJobset("weird");
    EXPECT_NE(h.scalar("select fetcherrormsg from jobsets where id = " + str(other)).value_or("").find("has unknown type `weird'"),
              std::string::npos);
}

TEST(HydraBadInput, UnreachableGitRepositoryIsAFetchError)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("git", "git-input.nix");
    h.addInput("git", "src", "git", {"file://" + h.dataDir() + "/no-such-repo main"});
    auto r = h.evalJobset("git");
    expectFetchError(h, listener, id, r, "error fetching latest change from git repo at `file://" + h.dataDir() + "/no-such-repo'");

    // A later successful evaluation clears it.
    h.exec("delete from jobsetinputs where name = 'src'");
    h.exec("update jobsets set nixexprpath = 'basic.nix' where id = " + str(id));
    r = h.evalJobset("git");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(h.scalar("select fetcherrormsg from jobsets where id = " + str(id)), std::nullopt);
}

TEST(HydraBadInput, BadConfigurationIsRecorded)
{
    HydraFixture h;
    int id = h.createJobset("basic", "basic.nix");
    h.writeConfig("<git-input>\ntimeout = 10\n");
    auto r = h.evalJobset("basic");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("hydra.conf:2: <git-input> is never closed"), std::string::npos) << error;

    h.writeConfig("evaluator_workers = many\n");
    r = h.evalJobset("basic");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("evaluator_workers = 'many' is not a whole number"), std::string::npos) << error;

    r = h.evalJobset("basic", "tests", {{"HYDRA_DATA", h.dataDir() + "/missing"}});
    EXPECT_EQ(r.exitCode, 1) << r.err;
    error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("The HYDRA_DATA directory (" + h.dataDir() + "/missing) does not exist!"), std::string::npos)
        << error;
    expectNothingWritten(h);
}

TEST(HydraBadInput, DatabaseThatIsDown)
{
    HydraFixture h;
    h.createJobset("basic", "basic.nix");
    h.postgres().stop();
    auto r = h.evalJobset("basic");
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("cannot connect to Hydra's database"), std::string::npos) << r.err;
    r = h.evalJobset("basic", "tests", {{"HYDRA_DATABASE_URL", "mysql://localhost/hydra"}});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("does not denote a PostgreSQL database"), std::string::npos) << r.err;
    h.postgres().start();
    expectNothingWritten(h);
}

TEST(HydraBadInput, DatabaseWithAnotherSchema)
{
    HydraFixture h;
    // Not Hydra's database at all: said on stderr.
    h.postgres().createDatabase("empty");
    auto r = h.evalJobset("basic", "tests", {{"HYDRA_DATABASE_URL", h.postgres().url("empty")}});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("does not have Hydra's schema"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("missing aggregateconstituents"), std::string::npos) << r.err;

    // A schema without a column it writes: recorded on the jobset.
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("basic", "basic.nix");
    h.exec("alter table builds drop column maxsilent");
    r = h.evalJobset("basic");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("missing builds.maxsilent"), std::string::npos) << error;
    auto n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[1].channel, "eval_failed");
    expectNothingWritten(h);
}

TEST(HydraBadInput, DatabaseGoneDuringTheEvaluation)
{
    HydraFixture h;
    auto dir = h.dataDir() + "/synthetic";
    fs::create_directories(dir);
    fs::copy_file(std::string(EVOLIVE_WORKLOADS_DIR) + "/synthetic.nix", dir + "/synthetic.nix");
    std::ofstream(dir + "/release.nix") << "import ./synthetic.nix { n = 3000; salt = \"" << h.salt() << "\"; }\n";
    h.createJobset("big", "release.nix", dir);
    Subprocess run({hydraEvalJobsetBinary(), "tests", "big"}, h.environment());
    ASSERT_TRUE(run.waitForStderr("Evaluating...", std::chrono::seconds(120))) << run.stderrSoFar();
    h.postgres().stop();
    auto r = run.wait();
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.err.find("cannot record the error in Hydra's database"), std::string::npos) << r.err;
    h.postgres().start();
    expectNothingWritten(h);
}

TEST(HydraBadInput, DeadlockedTransactionIsRetried)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("basic", "basic.nix");
    // The first insert of an evaluation fails as a deadlock would; a
    // sequence counts the attempts (it is not rolled back).
    h.exec("create sequence attempts");
    h.exec("create function deadlock_once() returns trigger as $$ begin "
           "if nextval('attempts') = 1 then raise exception 'deadlock detected (simulated)' using errcode = '40P01'; "
           "end if; return new; end $$ language plpgsql");
    h.exec("create trigger deadlock_once before insert on jobsetevals for each row execute procedure deadlock_once()");
    auto r = h.evalJobset("basic");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("evaluation transaction aborted (attempt 1), retrying"), std::string::npos) << r.err;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 1);
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + str(id)), 3);
    EXPECT_EQ(count(h, "select count(*) from evaluationerrors"), 1);
    EXPECT_EQ(count(h, "select count(*) from jobsetevalmembers"), 3);
    auto n = listener.drain();
    size_t queued = 0;
    for (auto & x : n) queued += x.channel == "build_queued";
    EXPECT_EQ(queued, 3u) << "the aborted attempt's notifications are never delivered";
}

} // namespace evolive::test
