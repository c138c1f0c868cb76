// Inputs as Hydra's script fetches and passes them: git (default branch,
// a branch, a pinned revision; rev, revCount, shortRev, gitTag), string,
// boolean and nix values, a build of another jobset; the arguments' hash;
// reuse of unchanged builds (and repointing), forced and one-shot jobsets.
#include "hydra_fixture.hh"

#include "hash.hh"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace evolive::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string str(int n) { return std::to_string(n); }

long count(HydraFixture & h, const std::string & sql) { return std::stol(h.scalar(sql).value_or("0")); }

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// A git repository made by the test, with commits by a fixed author.
class GitRepo
{
public:
    GitRepo(const std::string & dir, const std::string & defaultBranch) : dir_(dir)
    {
        fs::create_directories(dir_);
        git({"init", "--quiet", "--initial-branch=" + defaultBranch});
    }
    std::string git(const std::vector<std::string> & args)
    {
        std::vector<std::string> argv{"git", "-C", dir_, "-c", "user.name=Test", "-c", "user.email=test@example.org"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = runCommand(argv, {{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"}});
        EXPECT_EQ(r.exitCode, 0) << r.err;
        return trimmed(r.out);
    }
    std::string commit(const std::string & file, const std::string & content)
    {
        std::ofstream(dir_ + "/" + file) << content;
        git({"add", file});
        git({"commit", "--quiet", "-m", "change " + file});
        return git({"rev-parse", "HEAD"});
    }
    std::string url() const { return "file://" + dir_; }

private:
    std::string dir_;
};

// The environment of a derivation, as `nix show-derivation` gives it.
json drvEnv(const std::string & drv)
{
    auto r = runNix({"show-derivation", drv});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    auto j = json::parse(r.out);
    return j.begin().value()["env"];
}

} // namespace

TEST(HydraInputs, GitBranchesRevisionsAndTheirAttributes)
{
    HydraFixture h;
    GitRepo repo(h.dataDir() + "/scratch/git-repo", "main");
    auto first = repo.commit("file", "1\n");
    repo.git({"tag", "-a", "v1.0", "-m", "release"});
    auto second = repo.commit("file", "2\n");

    // No branch: the remote's default branch.
    int id = h.createJobset("git", "git-input.nix");
    h.addInput("git", "src", "git", {repo.url()});
    auto r = h.evalJobset("git");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 1u) << r.err;
    auto env = drvEnv(builds["copy"]["drvpath"]);
    EXPECT_EQ(env["rev"], second);
    EXPECT_EQ(env["revCount"], "2");
    EXPECT_EQ(env["shortRev"], second.substr(0, 7));
    EXPECT_EQ(env["gitTag"], "v1.0-1-g" + second.substr(0, 7));
    EXPECT_EQ(env["inputType"], "git");

    auto input = h.query("select uri, revision, shortrevlength, path, sha256hash from jobsetevalinputs "
                         "where name = 'src'");
    ASSERT_EQ(input.size(), 1u);
    EXPECT_EQ(input[0][0].as<std::string>(), repo.url());
    EXPECT_EQ(input[0][1].as<std::string>(), second);
    EXPECT_EQ(input[0][2].as<int>(), 7);
    auto storePath = input[0][3].as<std::string>();
    EXPECT_EQ(storePath.substr(storePath.size() - 9), "-git-repo") << "named as nix-prefetch-git names it";
    EXPECT_EQ(trimmed(readFile(storePath + "/file")), "2");
    EXPECT_FALSE(fs::exists(storePath + "/.git"));
    // The store path is the checkout added as a fixed-output (recursive
    // sha256) path, so its hash is the NAR hash recorded.
    EXPECT_EQ(runCommand({"nix-store", "--query", "--hash", storePath}).out, "sha256:" + input[0][4].as<std::string>() + "\n");
    EXPECT_EQ(h.scalar("select storepath from cachedgitinputs where revision = '" + second + "'"), storePath);

    // Nothing changed: eval_cached, no new evaluation.
    r = h.evalJobset("git");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 1) << r.err;

    // A new commit: a new build; the same again: deterministic.
    auto third = repo.commit("file", "3\n");
    r = h.evalJobset("git");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(h, "select count(*) from builds where finished = 0 and jobset_id = " + str(id)), 2);
    r = h.evalJobset("git");
    EXPECT_EQ(count(h, "select count(*) from builds where finished = 0 and jobset_id = " + str(id)), 2);
    EXPECT_EQ(drvEnv(h.builds(id)["copy"]["drvpath"])["rev"], third);

    // A branch of its own.
    repo.git({"checkout", "--quiet", "-b", "feature"});
    auto feature = repo.commit("other", "feature\n");
    repo.git({"checkout", "--quiet", "main"});
    int branchId = h.createJobset("git-branch", "git-input.nix");
    h.addInput("git-branch", "src", "git", {repo.url() + " feature"});
    r = h.evalJobset("git-branch");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(drvEnv(h.builds(branchId)["copy"]["drvpath"])["rev"], feature);

    // A pinned revision stays, whatever the branches do.
    int revId = h.createJobset("git-rev", "git-input.nix");
    h.addInput("git-rev", "src", "git", {repo.url() + " " + first});
    r = h.evalJobset("git-rev");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    env = drvEnv(h.builds(revId)["copy"]["drvpath"]);
    EXPECT_EQ(env["rev"], first);
    EXPECT_EQ(env["revCount"], "1");
    EXPECT_EQ(env["gitTag"], "v1.0");
    repo.commit("file", "4\n");
    r = h.evalJobset("git-rev");
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(revId)), 1) << r.err;
}

TEST(HydraInputs, ValuesAndTheHashOfTheArguments)
{
    HydraFixture h;
    int id = h.createJobset("args", "arguments.nix");
    h.addInput("args", "label", "string", {"hello"});
    h.addInput("args", "flag", "boolean", {"true"});
    h.addInput("args", "extra", "nix", {"{ n = 3; }"});
    auto r = h.evalJobset("args");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 1u) << r.err;
    EXPECT_EQ(builds["show"]["nixname"], "show-hello");
    auto env = drvEnv(builds["show"]["drvpath"]);
    EXPECT_EQ(env["flag"], "yes");
    EXPECT_EQ(env["extra"], "3");

    // jobsetevals.hash is Hydra's: the SHA-256 of the expression's input and
    // path and nix-eval-jobs' input arguments, joined by spaces.
    auto jobs = h.query("select path, uri, revision from jobsetevalinputs where name = 'jobs'");
    auto path = jobs[0][0].as<std::string>(), uri = jobs[0][1].as<std::string>(), rev = jobs[0][2].as<std::string>();
    std::string args = "jobs arguments.nix --arg extra { n = 3; } --arg flag true -I jobs=" + path +
                       " --arg jobs { outPath = builtins.storePath " + path + "; inputType = \"path\"; uri = \"" + uri +
                       "\"; rev = \"" + rev + "\";} --argstr label hello";
    EXPECT_EQ(h.scalar("select hash from jobsetevals where jobset_id = " + str(id)), nix::sha256Hex(args));
    auto values = h.query("select name, type, value, path from jobsetevalinputs where name <> 'jobs' order by name");
    ASSERT_EQ(values.size(), 3u);
    EXPECT_EQ(values[0][2].as<std::string>(), "{ n = 3; }");
    EXPECT_EQ(values[1][2].as<std::string>(), "true");
    EXPECT_EQ(values[2][1].as<std::string>(), "string");
    EXPECT_EQ(values[2][3].as<std::string>(), "");

    // A changed value is a changed evaluation.
    h.exec("update jobsetinputalts set value = 'world' where input = 'label'");
    r = h.evalJobset("args");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 2);
    EXPECT_TRUE(h.builds(id).count("show"));
    EXPECT_EQ(h.builds(id)["show"]["nixname"], "show-world");
}

TEST(HydraInputs, BuildOfAnotherJobset)
{
    HydraFixture h;
    int depId = h.createJobset("dep", "dep.nix");
    auto r = h.evalJobset("dep");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto dep = h.builds(depId)["dep"];
    // As if the queue runner had built it.
    auto built = runCommand({"nix-store", "--option", "sandbox", "false", "--option", "substituters", "", "--realise",
                             dep["drvpath"]});
    ASSERT_EQ(built.exitCode, 0) << built.err;
    h.exec("update builds set finished = 1, buildstatus = 0, starttime = 1, stoptime = 2 where id = " + dep["id"]);

    int id = h.createJobset("uses", "build-input.nix");
    h.addInput("uses", "dep", "build", {"tests:dep:dep"});
    r = h.evalJobset("uses");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 1u) << r.err;
    auto env = drvEnv(builds["uses-dep"]["drvpath"]);
    EXPECT_EQ(env["depVersion"], "1.0");
    EXPECT_EQ(env["depOutput"], "out");
    EXPECT_EQ(env["depType"], "build");
    EXPECT_EQ(env["depPath"], trimmed(built.out));
    EXPECT_EQ(h.scalar("select dependency from jobsetevalinputs where name = 'dep'"), dep["id"]);

    // By id, too.
    int byId = h.createJobset("uses-id", "build-input.nix");
    h.addInput("uses-id", "dep", "build", {dep["id"]});
    r = h.evalJobset("uses-id");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(h.builds(byId)["uses-dep"]["drvpath"], builds["uses-dep"]["drvpath"]);

    // The latest build of the job for its system.
    int sys = h.createJobset("uses-sys", "build-input.nix");
    h.addInput("uses-sys", "dep", "sysbuild", {"tests:dep:dep"});
    r = h.evalJobset("uses-sys");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_EQ(h.builds(sys).size(), 1u) << r.err << h.scalar("select errormsg from jobsets where id = " + str(sys)).value_or("");
    env = drvEnv(h.builds(sys)["uses-dep"]["drvpath"]);
    EXPECT_EQ(env["depType"], "sysbuild");
    EXPECT_EQ(env["depPath"], trimmed(built.out));
    EXPECT_EQ(env["depOutput"], "none");

    // The outputs of a finished evaluation, by job name.
    int ev = h.createJobset("uses-eval", "eval-input.nix");
    h.addInput("uses-eval", "deps", "eval", {"tests:dep"});
    r = h.evalJobset("uses-eval");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_EQ(h.builds(ev).size(), 1u) << r.err << h.scalar("select errormsg from jobsets where id = " + str(ev)).value_or("");
    EXPECT_EQ(drvEnv(h.builds(ev)["uses-eval"]["drvpath"])["depPath"], trimmed(built.out));

    // No finished evaluation: a fetch error naming it.
    int none = h.createJobset("uses-none", "eval-input.nix");
    h.addInput("uses-none", "deps", "eval", {"tests:uses-eval"});
    r = h.evalJobset("uses-none");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(h.scalar("select fetcherrormsg from jobsets where id = " + str(none)),
              "jobset ‘tests:uses-eval’ does not have a finished evaluation\n");
}

TEST(HydraInputs, ReusedBuildIsRepointedWhenOnlyItsDrvChanged)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    auto dir = h.jobsDirWith("fod.nix");
    auto write = [&](const std::string & variant) {
        auto text = readFile(h.jobsDir() + "/fod.nix");
        text.replace(text.find("@variant@"), 9, variant);
        std::ofstream(dir + "/default.nix") << text;
    };
    write("one");
    int id = h.createJobset("fod", "default.nix", dir);
    auto r = h.evalJobset("fod");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto before = h.builds(id);
    listener.drain();
    h.exec("update builds set finished = 1, buildstatus = 0, starttime = 1, stoptime = 2 where id = " +
           before["fod"]["id"]);

    write("two");
    r = h.evalJobset("fod");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto after = h.builds(id);
    ASSERT_EQ(after.size(), 2u) << "both builds reused";
    EXPECT_EQ(after["fod"]["id"], before["fod"]["id"]);
    EXPECT_NE(after["fod"]["drvpath"], before["fod"]["drvpath"]) << "repointed to the new .drv";
    EXPECT_EQ(after["fod"]["finished"], "0") << "and queued again";
    EXPECT_EQ(after["plain"]["id"], before["plain"]["id"]);
    auto n = listener.drain();
    auto eval = h.scalar("select max(id) from jobsetevals where jobset_id = " + str(id)).value();
    std::vector<std::string> channels;
    for (auto & x : n) channels.push_back(x.channel);
    // Nothing new, the same number of builds: a "cached" evaluation.
    EXPECT_EQ(channels, (std::vector<std::string>{"eval_started", "cached_build_queued", "cached_build_queued",
                                                  "eval_added", "builds_restarted"}));
    EXPECT_EQ(n[1].payload, eval + "\t" + before["fod"]["id"]);
    EXPECT_EQ(h.scalar("select hasnewbuilds from jobsetevals where id = " + eval), "0");
}

TEST(HydraInputs, ForcedAndOneShotJobsets)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    int id = h.createJobset("once", "basic.nix");
    h.exec("update jobsets set enabled = 2 where id = " + str(id));
    auto r = h.evalJobset("once");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(h.scalar("select enabled from jobsets where id = " + str(id)), "0") << "a one-shot jobset is disabled";
    auto n = listener.drain();
    ASSERT_FALSE(n.empty());
    EXPECT_EQ(n.back().channel, "jobset_scheduling_changed") << "Hydra's trigger on the change of `enabled`";

    // Forced: evaluated again although nothing changed; forceeval is reset.
    h.exec("update jobsets set forceeval = true where id = " + str(id));
    r = h.evalJobset("once");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(h, "select count(*) from jobsetevals where jobset_id = " + str(id)), 2);
    EXPECT_EQ(h.scalar("select forceeval from jobsets where id = " + str(id)), std::nullopt);
    EXPECT_EQ(h.scalar("select hasnewbuilds from jobsetevals where jobset_id = " + str(id) + " order by id desc limit 1"),
              "0");
    EXPECT_EQ(count(h, "select count(*) from builds where jobset_id = " + str(id)), 3);
    EXPECT_EQ(count(h, "select count(*) from builds where iscurrent = 1 and jobset_id = " + str(id)), 3);
}

TEST(HydraInputs, PerJobErrorsInHydrasFormat)
{
    HydraFixture h;
    int id = h.createJobset("errors", "errors.nix");
    auto r = h.evalJobset("errors");
    ASSERT_EQ(r.exitCode, 0) << "per-job errors do not fail the evaluation: " << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 1u);
    EXPECT_TRUE(builds.count("good"));
    auto error = h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("");
    EXPECT_EQ(error.rfind("in job ‘", 0), 0u) << error;
    EXPECT_NE(error.find("in job ‘throws’:\nerror: this job fails to evaluate"), std::string::npos) << error;
    EXPECT_NE(error.find("in job ‘missing’:\n"), std::string::npos) << error;
    EXPECT_EQ(error.substr(error.size() - 2), "\n\n");
    EXPECT_EQ(h.scalar("select e.errormsg from evaluationerrors e join jobsetevals j on j.evaluationerror_id = e.id "
                       "where j.jobset_id = " + str(id)),
              error);
}

TEST(HydraInputs, FlakeJobsets)
{
    HydraFixture h;
    NotificationListener listener(h.conninfo());
    GitRepo repo(h.dataDir() + "/flake", "main");
    auto derivation = [&](const std::string & name) {
        return "builtins.derivation { name = \"" + name + "\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
               "args = [ \"-c\" \"echo > $out\" ]; salt = \"" + h.salt() + "\"; }";
    };
    repo.commit("flake.nix", "{ outputs = { self }: { hydraJobs = { hello = " + derivation("hello") +
                                 "; nested.world = " + derivation("world") + "; }; }; }\n");
    h.exec("insert into projects (name, displayname, owner) values ('tests', '', 'root')");
    int id = std::stoi(h.scalar("insert into jobsets (name, project, type, flake, emailoverride) values "
                                "('flake', 'tests', 1, 'git+" + repo.url() + "', '') returning id").value());
    auto r = h.evalJobset("flake");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto builds = h.builds(id);
    ASSERT_EQ(builds.size(), 2u) << r.err;
    EXPECT_TRUE(builds.count("hello") && builds.count("nested.world"));
    auto rev = repo.git({"rev-parse", "HEAD"});
    auto eval = h.query("select flake, nixexprinput, nixexprpath from jobsetevals where jobset_id = " + str(id));
    EXPECT_NE(eval[0][0].as<std::string>().find("rev=" + rev), std::string::npos) << "the locked reference";
    EXPECT_TRUE(eval[0][1].is_null() && eval[0][2].is_null());

    // The same revision: eval_cached.
    r = h.evalJobset("flake");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto n = listener.drain();
    ASSERT_FALSE(n.empty());
    EXPECT_EQ(n.back().channel, "eval_cached");

    // Without hydraJobs: the flake's checks.
    repo.commit("flake.nix", "{ outputs = { self }: { checks.x86_64-linux.c = " + derivation("c") + "; }; }\n");
    r = h.evalJobset("flake");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    builds = h.builds(id);
    EXPECT_TRUE(builds.count("x86_64-linux.c")) << r.err;
    EXPECT_EQ(std::stol(h.scalar("select count(*) from jobsetevals where jobset_id = " + str(id)).value()), 2);

    // Neither: the evaluation fails with the flake's message.
    repo.commit("flake.nix", "{ outputs = { self }: { }; }\n");
    r = h.evalJobset("flake");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(h.scalar("select errormsg from jobsets where id = " + str(id)).value_or("").find(
                  "flake does not provide any Hydra jobs or checks"),
              std::string::npos);
}

} // namespace evolive::test
