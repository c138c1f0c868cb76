// `evolive eval` against real git repositories made by the test.
#include "subprocess.hh"

#include <arpa/inet.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Stream
{
    Completed process;
    std::vector<json> messages;
    json started, finished, failed;
    std::map<std::string, json> jobs;
};

Stream runEvolive(const std::vector<std::string> & args)
{
    std::vector<std::string> argv{EVOLIVE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    Stream s;
    s.process = runCommand(argv);
    std::istringstream in(s.process.out);
    for (std::string line; std::getline(in, line);) {
        auto m = json::parse(line);
        s.messages.push_back(m);
        auto type = m.at("type").get<std::string>();
        if (type == "started") s.started = m;
        if (type == "finished") s.finished = m;
        if (type == "failed") s.failed = m;
        if (type == "job") s.jobs[m["attr"].get<std::string>()] = m;
    }
    return s;
}

// The value of a derivation attribute, as Nix stored it in the .drv.
std::string drvAttr(const json & job, const std::string & name)
{
    auto r = runCommand({"nix-store", "--query", "--binding", name, job.at("drvPath").get<std::string>()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
}

// A repository with three commits on main, a branch, a lightweight and an
// annotated tag, and a release.nix that puts every input into a derivation.
class GitJobset : public ::testing::Test
{
protected:
    TempDir dir;
    std::string repo, state, salt = freshSalt();
    std::vector<std::string> commits;

    void SetUp() override
    {
        repo = dir.path() + "/repo";
        state = dir.path() + "/state";
        fs::create_directories(repo);
        git(repo, {"init", "-q", "-b", "main"});
        for (int i = 1; i <= 3; ++i) {
            dir.write("repo/release.nix", R"({ src, salt, greeting, flag, cfg, num }:
{ job = derivation {
    name = "job-)" + std::to_string(i) + R"(";
    system = "x86_64-linux"; builder = "/bin/sh";
    inherit salt greeting;
    srcRev = src.rev; srcShortRev = src.shortRev; srcRevCount = toString (src.revCount or "none");
    srcLastModified = toString src.lastModified; srcDate = src.lastModifiedDate;
    srcFile = builtins.readFile (src + "/data.txt");
    fromSearchPath = builtins.readFile <src/data.txt>;
    flag = if flag then "yes" else "no";
    cfgList = builtins.concatStringsSep "," cfg.list; cfgName = cfg.name;
    num = toString num;
  };
})");
            dir.write("repo/data.txt", "data " + std::to_string(i));
            git(repo, {"add", "."});
            git(repo, {"commit", "-q", "-m", "commit " + std::to_string(i)});
            commits.push_back(git(repo, {"rev-parse", "HEAD"}));
            if (i == 1) git(repo, {"tag", "v1"});
            if (i == 2) {
                git(repo, {"tag", "-a", "v2", "-m", "annotated"});
                git(repo, {"branch", "stable"});
            }
        }
    }

    std::string jobset(const json & src, const std::string & name = "jobset.json")
    {
        json j{{"inputs",
                {{"src", src},
                 {"salt", {{"type", "string"}, {"value", salt}}},
                 {"greeting", {{"type", "string"}, {"value", "hello \"world\" ${x}"}}},
                 {"flag", {{"type", "boolean"}, {"value", true}}},
                 {"cfg", {{"type", "json"}, {"value", {{"list", {"a", "b"}}, {"name", "n"}}}}},
                 {"num", {{"type", "nix"}, {"value", "6 * 7"}}}}},
               {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
        return dir.write(name, j.dump(2));
    }

    std::string url(const std::string & query = "") { return "git+file://" + repo + query; }
};

} // namespace

TEST_F(GitJobset, RefsResolveToRevisionsOnTheRemote)
{
    std::map<std::string, std::string> expected{{"?ref=main", commits[2]}, {"?ref=stable", commits[1]},
                                                {"?ref=v1", commits[0]},   {"?ref=v2", commits[1]},
                                                {"", commits[2]},          {"?rev=" + commits[0], commits[0]}};
    for (auto & [query, rev] : expected) {
        SCOPED_TRACE(query);
        auto s = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url(query)}})});
        ASSERT_EQ(s.process.exitCode, 0) << s.process.out << s.process.err;
        EXPECT_EQ(s.started["inputs"]["src"]["rev"], rev);
        EXPECT_EQ(drvAttr(s.jobs.at("job"), "srcRev"), rev);
    }
}

TEST_F(GitJobset, EveryInputTypeReachesTheExpression)
{
    auto s = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url("?ref=main")}, {"shallow", false}})});
    ASSERT_EQ(s.process.exitCode, 0) << s.process.out << s.process.err;
    auto & job = s.jobs.at("job");
    EXPECT_EQ(job["name"], "job-3");
    EXPECT_EQ(drvAttr(job, "srcRev"), commits[2]);
    EXPECT_EQ(drvAttr(job, "srcShortRev"), commits[2].substr(0, 7));
    EXPECT_EQ(drvAttr(job, "srcRevCount"), "3");
    EXPECT_EQ(drvAttr(job, "srcLastModified"), "1704164645");
    EXPECT_EQ(drvAttr(job, "srcDate"), "20240102030405");
    EXPECT_EQ(drvAttr(job, "srcFile"), "data 3");
    EXPECT_EQ(drvAttr(job, "fromSearchPath"), "data 3");
    EXPECT_EQ(drvAttr(job, "greeting"), "hello \"world\" ${x}");
    EXPECT_EQ(drvAttr(job, "flag"), "yes");
    EXPECT_EQ(drvAttr(job, "cfgList"), "a,b");
    EXPECT_EQ(drvAttr(job, "cfgName"), "n");
    EXPECT_EQ(drvAttr(job, "num"), "42");
    EXPECT_EQ(s.started["inputs"]["src"]["revCount"], 3);
    EXPECT_EQ(s.finished["jobs"], 1);
    EXPECT_EQ(s.finished["errors"], 0);
    EXPECT_EQ(s.finished["fingerprint"], s.started["fingerprint"]);

    // The log is named by the fingerprint.
    auto log = s.started["log"].get<std::string>();
    EXPECT_NE(log.find(s.started["fingerprint"].get<std::string>()), std::string::npos);
    EXPECT_TRUE(fs::exists(log));
}

TEST_F(GitJobset, ShallowFetchHasNoRevCount)
{
    auto s = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url("?ref=main")}})});
    ASSERT_EQ(s.process.exitCode, 0) << s.process.out << s.process.err;
    EXPECT_EQ(drvAttr(s.jobs.at("job"), "srcRevCount"), "none");
    EXPECT_FALSE(s.started["inputs"]["src"].contains("revCount"));
    EXPECT_TRUE(s.started["inputs"]["src"]["shallow"].get<bool>());
}

TEST_F(GitJobset, MirrorFetchesOnlyWhatIsNew)
{
    auto file = jobset({{"type", "git"}, {"url", url("?ref=main")}, {"shallow", false}});
    auto first = runEvolive({"eval", "--state-dir", state, file});
    ASSERT_EQ(first.process.exitCode, 0) << first.process.out;
    fs::path mirrors = state + "/git/mirrors";
    std::vector<fs::path> mirrorDirs;
    for (auto & e : fs::directory_iterator(mirrors))
        if (e.is_directory()) mirrorDirs.push_back(e.path());
    ASSERT_EQ(mirrorDirs.size(), 1u);
    // Objects in the mirror, loose and packed.
    auto objects = [&] {
        auto r = runCommand({"git", "-C", mirrorDirs[0].string(), "count-objects", "-v"});
        size_t total = 0;
        std::istringstream lines(r.out);
        for (std::string l; std::getline(lines, l);)
            if (l.rfind("count: ", 0) == 0 || l.rfind("in-pack: ", 0) == 0) total += std::stoul(l.substr(l.find(' ') + 1));
        return total;
    };
    auto before = objects();
    EXPECT_GE(before, 9u); // three commits, their trees and blobs

    dir.write("repo/data.txt", "data 4");
    git(repo, {"commit", "-q", "-am", "commit 4"});
    auto second = runEvolive({"eval", "--state-dir", state, file});
    ASSERT_EQ(second.process.exitCode, 0) << second.process.out;
    EXPECT_EQ(drvAttr(second.jobs.at("job"), "srcFile"), "data 4");
    EXPECT_EQ(second.started["inputs"]["src"]["revCount"], 4);
    EXPECT_NE(second.started["fingerprint"], first.started["fingerprint"]);

    // Only the new commit, its tree and its blob were fetched.
    auto after = objects();
    EXPECT_EQ(after - before, 3u);

    // The same jobset again: same fingerprint, nothing fetched.
    auto third = runEvolive({"eval", "--state-dir", state, file});
    EXPECT_EQ(third.started["fingerprint"], second.started["fingerprint"]);
    EXPECT_EQ(objects(), after);
}

TEST_F(GitJobset, ConcurrentEvaluationsShareTheMirrorSafely)
{
    auto file = jobset({{"type", "git"}, {"url", url("?ref=main")}, {"shallow", false}});
    std::vector<std::unique_ptr<Subprocess>> runs;
    for (int i = 0; i < 3; ++i)
        runs.push_back(std::make_unique<Subprocess>(std::vector<std::string>{EVOLIVE_BINARY, "eval", "--state-dir", state, file}));
    std::set<std::string> fingerprints;
    for (auto & run : runs) {
        auto done = run->wait();
        ASSERT_EQ(done.exitCode, 0) << done.out << done.err;
        auto started = json::parse(done.out.substr(0, done.out.find('\n')));
        fingerprints.insert(started["fingerprint"].get<std::string>());
        EXPECT_EQ(started["inputs"]["src"]["revCount"], 3);
    }
    EXPECT_EQ(fingerprints.size(), 1u);
}

TEST_F(GitJobset, SubmodulesAreFetchedWhenAskedFor)
{
    auto sub = dir.path() + "/sub";
    fs::create_directories(sub);
    git(sub, {"init", "-q", "-b", "main"});
    dir.write("sub/data.txt", "from the submodule");
    git(sub, {"add", "."});
    git(sub, {"commit", "-q", "-m", "sub"});
    git(repo, {"submodule", "add", "-q", "../sub", "vendor"});
    dir.write("repo/data.txt", "unused");
    git(repo, {"commit", "-q", "-am", "add submodule"});
    dir.write("repo/release.nix", R"({ src, salt, ... }:
{ job = derivation { name = "with-sub"; system = "x86_64-linux"; builder = "/bin/sh"; inherit salt;
    fromSub = builtins.readFile (src + "/vendor/data.txt"); }; })");
    git(repo, {"commit", "-q", "-am", "read the submodule"});

    auto with = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url("?ref=main&submodules=1")}})});
    ASSERT_EQ(with.process.exitCode, 0) << with.process.out;
    ASSERT_TRUE(with.jobs.count("job")) << with.process.out;
    EXPECT_EQ(drvAttr(with.jobs["job"], "fromSub"), "from the submodule");
    EXPECT_TRUE(with.started["inputs"]["src"]["submodules"].get<bool>());

    auto without = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url("?ref=main")}})});
    ASSERT_EQ(without.process.exitCode, 0) << without.process.out;
    EXPECT_TRUE(without.jobs.at("job").contains("error"));
    EXPECT_NE(without.started["fingerprint"], with.started["fingerprint"]);
}

TEST_F(GitJobset, FatalFetchErrorsComeAtOnceAndCacheNothing)
{
    auto missingRef = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url("?ref=nope")}})});
    EXPECT_EQ(missingRef.process.exitCode, 1);
    EXPECT_EQ(missingRef.failed["stage"], "fetch");
    EXPECT_NE(missingRef.failed["message"].get<std::string>().find("ref 'nope' does not exist"), std::string::npos);
    EXPECT_TRUE(missingRef.started.is_null());

    auto missingRepo =
        runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", "git+file://" + dir.path() + "/nothing"}})});
    EXPECT_EQ(missingRepo.process.exitCode, 1);
    EXPECT_EQ(missingRepo.failed["stage"], "fetch");
    EXPECT_FALSE(fs::exists(state + "/logs") && !fs::is_empty(state + "/logs"));

    // A server that accepts connections and never answers: the timeout ends it.
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, (sockaddr *) &addr, sizeof addr), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    socklen_t len = sizeof addr;
    getsockname(listener, (sockaddr *) &addr, &len);
    auto silent = "git+http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/repo.git";
    auto started = std::chrono::steady_clock::now();
    auto hung = runEvolive({"eval", "--state-dir", state, "--git-timeout", "2", jobset({{"type", "git"}, {"url", silent}})});
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    close(listener);
    EXPECT_EQ(hung.process.exitCode, 1);
    EXPECT_EQ(hung.failed["stage"], "fetch");
    EXPECT_NE(hung.failed["message"].get<std::string>().find("timed out"), std::string::npos) << hung.failed;
    EXPECT_LT(seconds, 30);
}

TEST_F(GitJobset, HostileInputsAreRefusedBeforeGitRuns)
{
    for (auto bad : {"ext::sh -c touch% /tmp/evolive-pwned", "--upload-pack=touch /tmp/evolive-pwned",
                     "-oProxyCommand=touch /tmp/evolive-pwned"}) {
        auto s = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", bad}})});
        EXPECT_EQ(s.process.exitCode, 1);
        EXPECT_EQ(s.failed["stage"], "parse") << s.process.out;
    }
    auto badRef = runEvolive({"eval", "--state-dir", state, jobset({{"type", "git"}, {"url", url()}, {"ref", "--upload-pack=x"}})});
    EXPECT_EQ(badRef.failed["stage"], "parse");
    EXPECT_FALSE(fs::exists("/tmp/evolive-pwned"));
    EXPECT_FALSE(fs::exists(state + "/git/mirrors") && !fs::is_empty(state + "/git/mirrors"));
}

TEST_F(GitJobset, ExpressionPathsCannotEscapeTheirInput)
{
    auto outside = dir.write("outside.nix", "{ }");
    auto src = dir.path() + "/src";
    fs::create_directories(src);
    fs::create_symlink(outside, src + "/release.nix");
    json j{{"inputs", {{"src", {{"type", "path"}, {"path", src}}}}},
           {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
    auto s = runEvolive({"eval", "--state-dir", state, dir.write("escape.json", j.dump())});
    EXPECT_EQ(s.process.exitCode, 1);
    EXPECT_NE(s.failed.value("message", "").find("leads outside input 'src'"), std::string::npos) << s.process.out;

    j["expression"]["path"] = "../outside.nix";
    auto dots = runEvolive({"eval", "--state-dir", state, dir.write("dots.json", j.dump())});
    EXPECT_EQ(dots.failed["stage"], "parse");
}

TEST(EvolivEval, ExamplesAndQuickEvaluations)
{
    TempDir state;
    NixDaemon daemon(state.path()); // the example pushes its derivations
    auto example = runEvolive({"eval", "--state-dir", state.path(), "--daemon-socket", daemon.socket(),
                               EXAMPLES_DIR "/jobset.json"});
    ASSERT_EQ(example.process.exitCode, 0) << example.process.out << example.process.err;
    EXPECT_EQ(example.finished["jobs"], 6);
    EXPECT_EQ(example.finished["errors"], 1);
    EXPECT_TRUE(example.jobs.at("release").contains("constituents"));
    EXPECT_EQ(example.finished["push"]["errors"], 0);
    EXPECT_TRUE(fs::exists(state.path() + "/binary-cache/nix-cache-info"));

    // The result file, read by DuckDB: every job, and the metadata.
    auto resultFile = example.finished.value("result", "");
    EXPECT_NE(resultFile.find(example.started["fingerprint"].get<std::string>() + ".parquet"), std::string::npos);
    auto duck = runCommand({"node", READ_PARQUET_SCRIPT, resultFile}, {{"EVOLIVE_NODE_MODULES", NODE_MODULES}});
    ASSERT_EQ(duck.exitCode, 0) << duck.err;
    auto read = json::parse(duck.out);
    ASSERT_EQ(read["rows"].size(), 6u);
    for (auto & row : read["rows"]) {
        auto & job = example.jobs.at(row["attr"].get<std::string>());
        EXPECT_EQ(json::parse(row["attrPath"].get<std::string>()), job["attrPath"]);
        if (job.contains("error")) {
            EXPECT_EQ(row["error"], job["error"]);
            EXPECT_TRUE(row["drvPath"].is_null());
        } else {
            EXPECT_EQ(row["drvPath"], job["drvPath"]);
            EXPECT_EQ(row["name"], job["name"]);
            EXPECT_EQ(json::parse(row["outputs"].get<std::string>()), job["outputs"]);
            EXPECT_EQ(json::parse(row["meta"].get<std::string>()), job["meta"]);
        }
    }
    auto & meta = read["metadata"];
    EXPECT_EQ(meta["fingerprint"], example.started["fingerprint"]);
    EXPECT_EQ(json::parse(meta["inputs"].get<std::string>()), example.started["inputs"]);
    EXPECT_EQ(meta["jobs"], "6");
    EXPECT_EQ(meta["errors"], "1");
    EXPECT_EQ(meta["evaluator"], "evolive-eval-jobs");
    EXPECT_FALSE(meta["machine.arch"].get<std::string>().empty());

    auto file = runEvolive({"eval", "--state-dir", state.path(), EXAMPLES_DIR "/release.nix"});
    ASSERT_EQ(file.process.exitCode, 0) << file.process.out;
    EXPECT_EQ(file.finished["jobs"], 6);

    auto expr = runEvolive({"eval", "--state-dir", state.path(), "--expr",
                         "{ a = derivation { name = \"a\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }; }"});
    ASSERT_EQ(expr.process.exitCode, 0) << expr.process.out;
    EXPECT_EQ(expr.jobs.at("a")["name"], "a");
    auto again = runEvolive({"eval", "--state-dir", state.path(), "--expr",
                          "{ a = derivation { name = \"a\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }; }"});
    EXPECT_EQ(again.started["fingerprint"], expr.started["fingerprint"]);

    // The same fingerprint again is answered from the stored result, with
    // the same job lines; --force evaluates anew.
    auto replayed = runEvolive({"eval", "--state-dir", state.path(), "--daemon-socket", daemon.socket(),
                                EXAMPLES_DIR "/jobset.json"});
    ASSERT_EQ(replayed.process.exitCode, 0) << replayed.process.out;
    EXPECT_TRUE(replayed.started["cached"].get<bool>());
    EXPECT_TRUE(replayed.finished["cached"].get<bool>());
    EXPECT_TRUE(replayed.finished["durations"].contains("replay"));
    ASSERT_EQ(replayed.jobs.size(), example.jobs.size());
    for (auto & [attr, job] : example.jobs) {
        auto a = job, b = replayed.jobs.at(attr);
        a.erase("push");
        b.erase("push");
        EXPECT_EQ(a, b) << attr;
    }
    EXPECT_EQ(replayed.finished["jobs"], 6);
    EXPECT_EQ(replayed.finished["errors"], 1);
    auto forced = runEvolive({"eval", "--force", "--state-dir", state.path(), "--daemon-socket", daemon.socket(),
                              EXAMPLES_DIR "/jobset.json"});
    ASSERT_EQ(forced.process.exitCode, 0) << forced.process.out;
    EXPECT_FALSE(forced.started["cached"].get<bool>());

    auto broken = runEvolive({"eval", "--state-dir", state.path(), "--expr", "{ a = ; }"});
    EXPECT_EQ(broken.process.exitCode, 1);
    EXPECT_EQ(broken.failed["stage"], "evaluate");
    // A failed evaluation leaves no result file.
    EXPECT_FALSE(fs::exists(state.path() + "/results/" + broken.failed.value("fingerprint", "") + ".parquet"));
    EXPECT_NE(broken.failed["message"].get<std::string>().find("syntax error"), std::string::npos) << broken.failed;
}

// --evaluator-dir: the evolive-eval-jobs of another build (for example the
// Nix 2.26 one beside the Nix 2.8 one) evaluates; a directory without one
// is refused before anything runs.
TEST(EvolivEval, EvaluatorDirChoosesTheEvaluator)
{
    TempDir state, other;
    auto marker = other.path() + "/ran";
    auto wrapper = other.write("evolive-eval-jobs", "#!/bin/sh\necho \"$@\" > " + marker + "\nexec " +
                                                        std::string(EVOLIVE_EVAL_JOBS_BINARY) + " \"$@\"\n");
    fs::permissions(wrapper, fs::perms::owner_all);
    auto expr = "{ a = derivation { name = \"a\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; salt = \"" +
                freshSalt() + "\"; }; }";

    auto s = runEvolive({"eval", "--state-dir", state.path(), "--evaluator-dir", other.path(), "--expr", expr});
    ASSERT_EQ(s.process.exitCode, 0) << s.process.out << s.process.err;
    EXPECT_EQ(s.jobs.at("a")["name"], "a");
    EXPECT_TRUE(fs::exists(marker)) << "the evaluator in --evaluator-dir did not run";

    TempDir empty;
    auto refused = runEvolive({"eval", "--state-dir", state.path(), "--evaluator-dir", empty.path(), "--expr", expr});
    EXPECT_NE(refused.process.exitCode, 0);
    EXPECT_NE(refused.failed.value("message", "").find("has no executable evolive-eval-jobs"), std::string::npos)
        << refused.process.out;
}
