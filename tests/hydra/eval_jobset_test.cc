// hydra-eval-jobset against a real PostgreSQL with Hydra's tables and the
// real Nix store: the cases of Hydra's own evaluator tests (evaluate-basic,
// -meta, nested attributes, notifications) and what its script writes.
#include "hydra_fixture.hh"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace evolive::test {

namespace fs = std::filesystem;

namespace {

std::string str(int n) { return std::to_string(n); }

long count(HydraFixture & h, const std::string & sql) { return std::stol(h.scalar(sql).value_or("0")); }

} // namespace

TEST(HydraEvalJobset, BasicWritesEvaluationBuildsAndOutputs)
{
    HydraFixture h;
    int id = h.createJobset("basic", "basic.nix");
    auto r = h.evalJobset("basic");
    ASSERT_EQ(r.exitCode, 0) << r.err;

    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 3u) << r.err;
    for (auto & job : {"empty_dir", "fails", "succeed_with_failed"}) ASSERT_TRUE(builds.count(job)) << job;
    auto & b = builds["empty_dir"];
    EXPECT_EQ(b["finished"], "0");
    EXPECT_EQ(b["iscurrent"], "1");
    EXPECT_EQ(b["nixname"], "empty-dir");
    EXPECT_EQ(b["system"], "x86_64-linux");
    EXPECT_EQ(b["priority"], "100");
    EXPECT_EQ(b["ischannel"], "0");
    EXPECT_EQ(b["maxsilent"], "") << "NULL when meta sets none, as Hydra's script writes it";
    EXPECT_EQ(b["timeout"], "");
    EXPECT_EQ(b["maintainers"], "alice@invalid.org");
    EXPECT_EQ(b["globalpriority"], "0");
    EXPECT_EQ(b["buildstatus"], "");

    // One evaluation with every build as a new member.
    auto eval = h.query("select id, hasnewbuilds, nrbuilds, hash, checkouttime >= 0, evaltime >= 0, flake, "
                        "nixexprinput, nixexprpath, evaluationerror_id from jobsetevals where jobset_id = " + str(id));
    ASSERT_EQ(eval.size(), 1u);
    int evalId = eval[0][0].as<int>();
    EXPECT_EQ(eval[0][1].as<int>(), 1);
    EXPECT_EQ(eval[0][2].as<int>(), 3);
    EXPECT_EQ(eval[0][3].as<std::string>().size(), 64u);
    EXPECT_TRUE(eval[0][4].as<bool>() && eval[0][5].as<bool>());
    EXPECT_TRUE(eval[0][6].is_null());
    EXPECT_EQ(eval[0][7].as<std::string>(), "jobs");
    EXPECT_EQ(eval[0][8].as<std::string>(), "basic.nix");
    EXPECT_EQ(h.scalar("select errormsg from evaluationerrors where id = " + eval[0][9].as<std::string>()), "");
    EXPECT_EQ(count(h, "select count(*) from jobsetevalmembers where isnew = 1 and eval = " + str(evalId)), 3);

    // One output row per output, with the evaluator's paths.
    auto outputs = h.query("select b.job, o.name, o.path from buildoutputs o join builds b on b.id = o.build "
                           "where b.jobset_id = " + str(id));
    ASSERT_EQ(outputs.size(), 3u);
    for (auto row : outputs) {
        EXPECT_EQ(row[1].as<std::string>(), "out");
        EXPECT_EQ(row[2].as<std::string>().rfind("/nix/store/", 0), 0u);
    }

    // The input, as jobsetevalinputs records it.
    auto input = h.query("select name, altnr, type, uri, revision, path, sha256hash from jobsetevalinputs where eval = " +
                         str(evalId));
    ASSERT_EQ(input.size(), 1u);
    EXPECT_EQ(input[0][0].as<std::string>(), "jobs");
    EXPECT_EQ(input[0][2].as<std::string>(), "path");
    EXPECT_EQ(input[0][3].as<std::string>(), h.jobsDir());
    EXPECT_EQ(input[0][4].as<std::string>().substr(14, 8), ":sha256:") << input[0][4].as<std::string>();
    EXPECT_EQ(input[0][5].as<std::string>().rfind("/nix/store/", 0), 0u);
    EXPECT_EQ(input[0][6].as<std::string>().rfind("sha256:", 0), 0u);

    // The jobset after a clean run.
    auto jobset = h.query("select errormsg, errortime is not null, lastcheckedtime is not null, fetcherrormsg, "
                          "forceeval from jobsets where id = " + str(id));
    EXPECT_EQ(jobset[0][0].as<std::string>(), "") << "the empty string on a clean run";
    EXPECT_TRUE(jobset[0][1].as<bool>());
    EXPECT_TRUE(jobset[0][2].as<bool>());
    EXPECT_TRUE(jobset[0][3].is_null());
    EXPECT_TRUE(jobset[0][4].is_null());
}

TEST(HydraEvalJobset, DrvPathsAreValidRootedAndBuildable)
{
    HydraFixture h;
    int id = h.createJobset("basic", "basic.nix");
    auto r = h.evalJobset("basic");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 3u);
    for (auto & [job, b] : builds) {
        auto drv = b["drvpath"];
        EXPECT_EQ(runCommand({"nix-store", "--check-validity", drv}).exitCode, 0) << drv;
        auto root = h.rootsDir() + "/" + fs::path(drv).filename().string();
        EXPECT_TRUE(fs::exists(fs::symlink_status(root))) << "no GC root " << root;
    }
    // The queue runner would build it: nix-store --realise succeeds.
    auto drv = builds["empty_dir"]["drvpath"];
    auto built = runCommand({"nix-store", "--option", "sandbox", "false", "--option", "substituters", "", "--realise", drv});
    ASSERT_EQ(built.exitCode, 0) << built.err;
    auto out = h.scalar("select o.path from buildoutputs o where o.build = " + builds["empty_dir"]["id"]);
    EXPECT_EQ(firstLine(built.out), out);
}

TEST(HydraEvalJobset, DryRunWritesNothing)
{
    HydraFixture h;
    h.createJobset("errors", "errors.nix");
    auto r = h.evalJobset("errors", "tests", {{"HYDRA_DRY_RUN", "1"}});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("good job good: /nix/store/"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("failed job throws: "), std::string::npos) << r.err;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals"), 0);
    EXPECT_EQ(count(h, "select count(*) from builds"), 0);
    EXPECT_EQ(h.scalar("select lastcheckedtime from jobsets"), std::nullopt);
}

TEST(HydraEvalJobset, MetaIsMappedAsHydraMapsIt)
{
    HydraFixture h;
    int id = h.createJobset("meta", "meta.nix");
    auto r = h.evalJobset("meta");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 4u);
    auto & full = builds["full-of-meta"];
    EXPECT_EQ(full["description"], "This is the description of the job.");
    EXPECT_EQ(full["license"], "MIT, BSD");
    EXPECT_EQ(full["homepage"], "https://example.com/");
    EXPECT_EQ(full["maintainers"], "alice@example.com, bob@not.found");
    EXPECT_EQ(full["priority"], "42");
    EXPECT_EQ(full["ischannel"], "1");
    EXPECT_EQ(full["maxsilent"], "120");
    EXPECT_EQ(full["timeout"], "900");

    auto & none = builds["no-meta"];
    EXPECT_EQ(none["description"], "");
    EXPECT_EQ(none["license"], "");
    EXPECT_EQ(none["priority"], "100");
    EXPECT_EQ(none["ischannel"], "0");
    EXPECT_EQ(h.scalar("select count(*) from builds where description is null and license is null and "
                       "maxsilent is null and timeout is null and job = 'no-meta'"),
              "1");

    // Empty and false values count as unset, as Perl's || makes them.
    auto & empty = builds["empty-meta"];
    EXPECT_EQ(empty["description"], "");
    EXPECT_EQ(empty["license"], "GPL-3.0");
    EXPECT_EQ(empty["maintainers"], "");
    EXPECT_EQ(empty["priority"], "100") << "schedulingPriority 0 is Perl-false: the default";
    EXPECT_EQ(empty["ischannel"], "0");
    EXPECT_EQ(empty["maxsilent"], "") << "a value the integer column cannot take";

    auto outputs = h.query("select o.name from buildoutputs o where o.build = " + builds["multiple-outputs"]["id"] +
                           " order by o.name");
    ASSERT_EQ(outputs.size(), 3u);
    EXPECT_EQ(outputs[0][0].as<std::string>(), "bin");
    EXPECT_EQ(outputs[1][0].as<std::string>(), "dev");
    EXPECT_EQ(outputs[2][0].as<std::string>(), "out");
}

TEST(HydraEvalJobset, LegacyBuildLimitsWrite7200And36000)
{
    HydraFixture h;
    h.writeConfig("path_input_cache_validity_seconds = 0\nevolive_legacy_build_limits = true\n");
    int id = h.createJobset("meta", "meta.nix");
    auto r = h.evalJobset("meta");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    EXPECT_EQ(builds["no-meta"]["maxsilent"], "7200");
    EXPECT_EQ(builds["no-meta"]["timeout"], "36000");
    EXPECT_EQ(builds["full-of-meta"]["maxsilent"], "120");
    EXPECT_EQ(builds["full-of-meta"]["timeout"], "900");
}

TEST(HydraEvalJobset, NestedAttributesAreJobsWithDottedNames)
{
    HydraFixture h;
    int id = h.createJobset("nested", "nested-attributes.nix");
    auto r = h.evalJobset("nested");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    std::set<std::string> jobs;
    for (auto & [job, _] : h.builds(id)) jobs.insert(job);
    EXPECT_EQ(jobs, (std::set<std::string>{"packageset.deeper.deeper.nested", "packageset.nested",
                                           "packageset.nested2", "packageset-nested", "unmarked.inside"}));
}

TEST(HydraEvalJobset, NotificationsInHydrasOrder)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    auto dir = h.jobsDirWith("notifications.nix");
    int id = h.createJobset("notify", "default.nix", dir);

    // The first evaluation: eval_started, a build_queued per build,
    // eval_added, builds_added with the lowest new build id.
    auto r = h.evalJobset("notify");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto n = listener.drain();
    ASSERT_EQ(n.size(), 7u);
    EXPECT_EQ(n[0].channel, "eval_started");
    auto traceId = n[0].payload.substr(0, n[0].payload.find('\t'));
    EXPECT_FALSE(traceId.empty());
    EXPECT_EQ(n[0].payload, traceId + "\t" + str(id));
    std::vector<int> queued;
    for (int i = 1; i <= 4; ++i) {
        EXPECT_EQ(n[i].channel, "build_queued");
        queued.push_back(std::stoi(n[i].payload));
    }
    EXPECT_TRUE(std::is_sorted(queued.begin(), queued.end())) << "in the order the builds were made";
    auto evalId = h.scalar("select max(id) from jobsetevals where jobset_id = " + str(id)).value();
    EXPECT_EQ(n[5].channel, "eval_added");
    EXPECT_EQ(n[5].payload, traceId + "\t" + str(id) + "\t" + evalId);
    EXPECT_EQ(n[6].channel, "builds_added");
    EXPECT_EQ(n[6].payload, h.scalar("select min(id) from builds where jobset_id = " + str(id)));
    std::set<int> ids(queued.begin(), queued.end());
    for (auto & [job, b] : h.builds(id)) EXPECT_TRUE(ids.count(std::stoi(b["id"]))) << job;

    // Unchanged: eval_started and eval_cached naming the previous evaluation; nothing written.
    r = h.evalJobset("notify");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[0].channel, "eval_started");
    auto trace2 = n[0].payload.substr(0, n[0].payload.find('\t'));
    EXPECT_NE(trace2, traceId);
    EXPECT_EQ(n[1].channel, "eval_cached");
    EXPECT_EQ(n[1].payload, trace2 + "\t" + str(id) + "\t" + evalId);
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 1);

    // Changed sources after two builds finished: one build_queued (the
    // changed job), two cached_build_finished, one cached_build_queued.
    std::ofstream(dir + "/default.nix", std::ios::app) << "\n";
    auto builds = h.builds(id);
    h.exec("update builds set finished = 1, buildstatus = 0, starttime = 1, stoptime = 2 where id in (" +
           builds["stable-job-passing"]["id"] + ", " + builds["stable-job-failing"]["id"] + ")");
    r = h.evalJobset("notify");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    n = listener.drain();
    ASSERT_EQ(n.size(), 7u);
    EXPECT_EQ(n[0].channel, "eval_started");
    auto eval2 = h.scalar("select max(id) from jobsetevals where jobset_id = " + str(id)).value();
    std::multiset<std::string> channels;
    std::map<std::string, std::string> payloads;
    for (int i = 1; i <= 4; ++i) {
        channels.insert(n[i].channel);
        payloads[n[i].channel] = n[i].payload;
    }
    EXPECT_EQ(channels, (std::multiset<std::string>{"build_queued", "cached_build_finished", "cached_build_finished",
                                                    "cached_build_queued"}));
    EXPECT_EQ(payloads["cached_build_queued"], eval2 + "\t" + builds["stable-job-queued"]["id"]);
    EXPECT_EQ(n[5].channel, "eval_added");
    EXPECT_EQ(n[6].channel, "builds_added");
    auto newBuild = h.scalar("select max(id) from builds where jobset_id = " + str(id)).value();
    EXPECT_EQ(n[6].payload, newBuild);
    EXPECT_EQ(payloads["build_queued"], newBuild);

    // The reused builds are members of the new evaluation, not new ones.
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + str(id)), 5);
    EXPECT_EQ(count(h, "select count(*) from jobsetevalmembers where eval = " + eval2), 4);
    EXPECT_EQ(count(h, "select count(*) from jobsetevalmembers where isnew = 1 and eval = " + eval2), 1);
    // Only the current evaluation's builds are current.
    EXPECT_EQ(h.scalar("select iscurrent from builds where id = " + builds["variable-job"]["id"]), "0");
    EXPECT_EQ(count(h, "select count(*) from builds where iscurrent = 1 and jobset_id = " + str(id)), 4);

    // Corrupted sources: eval_started, eval_failed; exit 1; errormsg says why.
    std::ofstream(dir + "/default.nix", std::ios::app) << "this is not valid nix code!\n";
    r = h.evalJobset("notify");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    n = listener.drain();
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[0].channel, "eval_started");
    EXPECT_EQ(n[1].channel, "eval_failed");
    EXPECT_EQ(n[1].payload, n[0].payload);
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_NE(error.find("returned exit code 1"), std::string::npos) << error;
    EXPECT_NE(error.find("syntax error"), std::string::npos) << error;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 2) << "nothing half-written";
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + str(id)), 5);
}

} // namespace evolive::test
