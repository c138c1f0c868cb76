// Aggregates, as Hydra's evaluate-constituents-* tests check them: the
// aggregateconstituents rows (direct, named, mixed, aliased, globbed), the
// GC roots of rewritten aggregates, and the failures (a missing
// constituent, a glob without matches, cycles), which fail the whole
// evaluation and write nothing.
#include "hydra_fixture.hh"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

namespace evolive::test {

namespace fs = std::filesystem;

namespace {

// aggregate job -> its constituents' job names.
std::map<std::string, std::set<std::string>> constituents(HydraFixture & h, int jobset)
{
    std::map<std::string, std::set<std::string>> out;
    for (auto r : h.query("select a.job, c.job from aggregateconstituents x join builds a on a.id = x.aggregate "
                          "join builds c on c.id = x.constituent where a.jobset_id = " + std::to_string(jobset)))
        out[r[0].as<std::string>()].insert(r[1].as<std::string>());
    return out;
}

long count(HydraFixture & h, const std::string & sql) { return std::stol(h.scalar(sql).value_or("0")); }

void expectFailedWithNothingWritten(HydraFixture & h, int id, const Completed & r, const std::string & errorPart)
{
    EXPECT_EQ(r.exitCode, 1) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + std::to_string(id)).value_or("");
    EXPECT_NE(error.find(errorPart), std::string::npos) << error;
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + std::to_string(id)), 0) << "no builds";
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + std::to_string(id)), 0) << "no evaluation";
    EXPECT_EQ(count(h, "select count(*) from aggregateconstituents"), 0);
    EXPECT_EQ(count(h, "select count(*) from evaluationerrors"), 0) << "no stray error record";
}

} // namespace

TEST(HydraConstituents, DirectIndirectMixedAndAliases)
{
    HydraFixture h;
    int id = h.createJobset("constituents", "constituents.nix");
    auto r = h.evalJobset("constituents");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    // constituentA_alias is the same derivation as constituentA: the
    // shorter name is the constituent.
    EXPECT_EQ(constituents(h, id), (std::map<std::string, std::set<std::string>>{
                                       {"direct_aggregate", {"constituentA"}},
                                       {"indirect_aggregate", {"constituentA"}},
                                       {"mixed_aggregate", {"constituentA", "constituentB"}},
                                   }));
    auto builds = h.builds(id);
    EXPECT_EQ(builds.size(), 6u) << "the alias is a build of its own";

    // The aggregates' .drv files (rewritten to depend on their named
    // constituents) are in the store, GC-rooted, and cannot be deleted.
    for (auto & job : {"constituentA", "direct_aggregate", "indirect_aggregate", "mixed_aggregate"}) {
        auto drv = builds[job]["drvpath"];
        EXPECT_TRUE(fs::exists(fs::symlink_status(h.rootsDir() + "/" + fs::path(drv).filename().string()))) << job;
        EXPECT_EQ(runCommand({"nix-store", "--check-validity", drv}).exitCode, 0) << drv;
    }
    auto refs = runCommand({"nix-store", "--query", "--references", builds["indirect_aggregate"]["drvpath"]});
    EXPECT_NE(refs.out.find(builds["constituentA"]["drvpath"]), std::string::npos)
        << "the rewritten aggregate depends on its named constituent:\n" << refs.out;
}

TEST(HydraConstituents, RootedAggregatesCannotBeCollected)
{
    HydraFixture h;
    // Roots where Nix's collector looks for them.
    auto roots = "/nix/var/nix/gcroots/evolive-tests/" + h.salt();
    fs::create_directories(roots);
    struct Remove
    {
        std::string dir;
        ~Remove() { fs::remove_all(dir); }
    } remove{roots};
    h.writeConfig("path_input_cache_validity_seconds = 0\ngc_roots_dir = " + roots + "\n");
    int id = h.createJobset("constituents", "constituents.nix");
    auto r = h.evalJobset("constituents");
    auto builds = h.builds(id);
    // (Each attempt walks the whole store's roots: two are enough.)
    for (auto & job : {"constituentA", "indirect_aggregate"}) {
        auto drv = builds[job]["drvpath"];
        auto deleted = runCommand({"nix-store", "--delete", drv});
        EXPECT_NE(deleted.exitCode, 0) << job << " could be deleted";
        EXPECT_NE(deleted.err.find("alive"), std::string::npos) << deleted.err;
    }
    ASSERT_EQ(r.exitCode, 0) << r.err;
}

TEST(HydraConstituents, GlobsAndTransitiveAggregates)
{
    HydraFixture h;
    int id = h.createJobset("glob", "constituents-glob.nix");
    auto r = h.evalJobset("glob");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto c = constituents(h, id);
    EXPECT_EQ(c["ok_aggregate"], (std::set<std::string>{"packages.constituentA", "packages.constituentB"}));
    EXPECT_EQ(c["indirect_aggregate"], (std::set<std::string>{"ok_aggregate"}));
    auto builds = h.builds(id);
    EXPECT_EQ(builds["packages.constituentA"]["nixname"], "empty-dir-A");
}

TEST(HydraConstituents, GlobAllSelectsEverythingButItself)
{
    HydraFixture h;
    int id = h.createJobset("globall", "constituents-glob-all.nix");
    auto r = h.evalJobset("globall");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(constituents(h, id)["ok_aggregate"],
              (std::set<std::string>{"packages.constituentA", "packages.constituentB"}));
    EXPECT_EQ(r.err.find("doesn't correspond to a Hydra build"), std::string::npos) << r.err;
    EXPECT_EQ(h.scalar("select errormsg from jobsets where id = " + std::to_string(id)), "");
}

TEST(HydraConstituents, MissingConstituentFailsTheEvaluation)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("broken", "constituents-broken.nix");
    auto r = h.evalJobset("broken");
    expectFailedWithNothingWritten(h, id, r, "aggregate job ‘mixed_aggregate’ failed with the error: constituentA: does not exist");
    auto n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[0].channel, "eval_started");
    EXPECT_EQ(n[1].channel, "eval_failed") << "no build_queued: the transaction that sent them rolled back";
}

TEST(HydraConstituents, GlobWithoutMatchesFailsTheEvaluation)
{
    HydraFixture h;
    int id = h.createJobset("nomatch", "constituents-no-matches.nix");
    auto r = h.evalJobset("nomatch");
    expectFailedWithNothingWritten(
        h, id, r, "aggregate job ‘non_match_aggregate’ failed with the error: tests.*: constituent glob pattern had no matches");
}

TEST(HydraConstituents, CyclesAreErrors)
{
    HydraFixture h;
    // Two aggregates naming each other, and nothing else: both are errors,
    // no job is a build, so (as in Hydra's script, which checks aggregates
    // only when builds changed) the evaluation is recorded without builds.
    int id = h.createJobset("cycle", "constituents-cycle.nix");
    auto r = h.evalJobset("cycle");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    auto error = h.scalar("select errormsg from jobsets where id = " + std::to_string(id)).value_or("");
    EXPECT_NE(error.find("in job ‘ok_aggregate’:\n"), std::string::npos) << error;
    EXPECT_NE(error.find("in job ‘indirect_aggregate’:\n"), std::string::npos) << error;
    // nix-eval-jobs' texts, which Hydra's own tests check.
    EXPECT_NE(error.find("Dependency cycle: indirect_aggregate <-> ok_aggregate"), std::string::npos) << error;
    EXPECT_NE(r.err.find("Found dependency cycle between jobs 'indirect_aggregate' and 'ok_aggregate'"), std::string::npos)
        << r.err;
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + std::to_string(id)), 0);
    EXPECT_EQ(h.scalar("select hasnewbuilds || ' ' || coalesce(nrbuilds::text, 'null') from jobsetevals "
                       "where jobset_id = " + std::to_string(id)),
              "0 null");

    // With a real build beside them, the broken aggregate fails the evaluation.
    int glob = h.createJobset("cycleglob", "constituents-cycle-glob.nix");
    r = h.evalJobset("cycleglob");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    error = h.scalar("select errormsg from jobsets where id = " + std::to_string(glob)).value_or("");
    EXPECT_NE(error.find("aggregate job ‘indirect_aggregate’ failed with the error: Dependency cycle: "
                         "indirect_aggregate <-> packages.constituentA"),
              std::string::npos)
        << error;
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + std::to_string(glob)), 0);
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + std::to_string(glob)), 0);
}

} // namespace evolive::test
