// Aggregate jobs with --constituents, checked against the derivations Nix
// reads back from the store.
#include "eval_jobs.hh"

#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

std::set<std::string> inputDrvsOf(const std::string & drv)
{
    auto refs = runCommand({"nix-store", "--query", "--references", drv});
    std::set<std::string> out;
    std::istringstream lines(refs.out);
    for (std::string l; std::getline(lines, l);)
        if (l.ends_with(".drv")) out.insert(l);
    return out;
}

} // namespace

TEST(EvalConstituents, NamedGlobAndNestedAggregatesAreResolved)
{
    auto run = evalJobs({"--constituents", "--workers", "2", "--argstr", "salt", freshSalt(),
                         testDataDir() + "/aggregates.nix"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    auto drv = [&](const std::string & attr) { return run.jobs.at(attr).at("drvPath").get<std::string>(); };

    auto & byDrv = run.jobs.at("byDrv");
    EXPECT_EQ(byDrv["constituents"].get<std::set<std::string>>(), (std::set<std::string>{drv("a"), drv("b")}));
    EXPECT_EQ(byDrv["namedConstituents"], json::array());

    auto & byName = run.jobs.at("byName");
    std::set<std::string> wanted{drv("a"), drv("tests.t1")};
    EXPECT_EQ(byName["constituents"].get<std::set<std::string>>(), wanted);
    EXPECT_EQ(byName["namedConstituents"], json::array({"a", "tests.t1"}));
    // The derivation was rewritten to depend on its constituents.
    EXPECT_EQ(inputDrvsOf(drv("byName")), wanted);
    auto outs = runCommand({"nix-store", "--query", "--outputs", drv("byName")});
    EXPECT_EQ(outs.out, byName["outputs"]["out"].get<std::string>() + "\n");

    auto & byGlob = run.jobs.at("byGlob");
    EXPECT_EQ(byGlob["constituents"].get<std::set<std::string>>(),
              (std::set<std::string>{drv("tests.t1"), drv("tests.t2")}));
    EXPECT_TRUE(byGlob["globConstituents"].get<bool>());

    auto & ofAggregate = run.jobs.at("ofAggregate");
    EXPECT_EQ(ofAggregate["constituents"].get<std::set<std::string>>(),
              (std::set<std::string>{drv("byName"), drv("c")}));

    auto & withMissing = run.jobs.at("withMissing");
    auto error = withMissing.value("error", "");
    EXPECT_NE(error.find("nonexistent: does not exist"), std::string::npos) << withMissing;
    // The constituent's own error after its name (Nix 2.26 puts trace
    // frames between `error:` and the message).
    EXPECT_NE(error.find("broken: error:"), std::string::npos) << withMissing;
    EXPECT_NE(error.find("error: broken job\n"), std::string::npos) << withMissing;
}

TEST(EvalConstituents, WithoutTheFlagAggregatesArePlainJobs)
{
    auto run = evalJobs({"--argstr", "salt", freshSalt(), testDataDir() + "/aggregates.nix"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    EXPECT_FALSE(run.jobs.at("byName").contains("constituents"));
    EXPECT_FALSE(run.jobs.at("withMissing").contains("error"));
}
