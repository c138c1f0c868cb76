// The run never dies for one job: every failure is one error line with the
// attribute's exact path, and the other jobs are still reported.
#include "eval_jobs.hh"

#include <filesystem>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

std::string errorOf(EvalRun & run, const std::string & attr)
{
    if (!run.jobs.count(attr)) return "<no line for " + attr + ">";
    auto & job = run.jobs[attr];
    EXPECT_EQ(job["attrPath"], json::array({attr}));
    EXPECT_FALSE(job.contains("drvPath")) << job;
    return job.value("error", std::string("<no error in line>"));
}

std::vector<pid_t> childrenOf(pid_t pid)
{
    std::vector<pid_t> out;
    std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
    for (pid_t child; in >> child;) out.push_back(child);
    return out;
}

} // namespace

TEST(EvalErrors, EachKindIsOneLineAndTheRunGoesOn)
{
    for (auto workers : {"1", "2"}) {
        SCOPED_TRACE(std::string("workers ") + workers);
        auto run = evalJobs({"--workers", workers, "--argstr", "salt", freshSalt(), testDataDir() + "/errors.nix"});
        ASSERT_EQ(run.process.exitCode, 0) << run.process.err;

        EXPECT_EQ(errorOf(run, "throws"), "error: deliberate failure");
        EXPECT_NE(errorOf(run, "asserts").find("assertion '(1 == 2)' failed"), std::string::npos);
        EXPECT_NE(errorOf(run, "aborts").find("deliberate abort"), std::string::npos);
        EXPECT_NE(errorOf(run, "missing").find("attribute 'nothing' missing"), std::string::npos);
        EXPECT_NE(errorOf(run, "typeError").find("while a string was expected"), std::string::npos);
        EXPECT_NE(errorOf(run, "infinite").find("infinite recursion encountered"), std::string::npos);
        EXPECT_NE(errorOf(run, "overflow").find("stack overflow"), std::string::npos);
        EXPECT_NE(errorOf(run, "brokenDep").find("dependency is broken"), std::string::npos);

        // A chain of 20,000 dependencies fits in a worker's stack.
        ASSERT_TRUE(run.jobs.count("deepChain"));
        EXPECT_EQ(run.jobs["deepChain"]["name"], "chain-20000") << run.jobs["deepChain"];
        // ...and all 20,001 .drv files are registered, references first.
        auto closure = runCommand({"nix-store", "--query", "--requisites", run.jobs["deepChain"].value("drvPath", "")});
        EXPECT_EQ(std::count(closure.out.begin(), closure.out.end(), '\n'), 20001) << closure.err;

        for (auto ok : {"ok", "after", "visibleSet.inner"}) EXPECT_TRUE(run.jobs.count(ok) && run.jobs[ok].contains("drvPath")) << ok;
        for (auto & line : run.lines)
            EXPECT_EQ(line.dump().find("\\u001b"), std::string::npos) << "colour codes in " << line;
        EXPECT_EQ(run.lines.size(), 12u);
    }
}

TEST(EvalErrors, WholeEvaluationFailuresExitNonZeroWithAMessage)
{
    TempDir dir;
    auto parse = evalJobs({dir.write("bad.nix", "{ a = ; }")});
    EXPECT_NE(parse.process.exitCode, 0);
    EXPECT_NE(parse.process.err.find("syntax error"), std::string::npos) << parse.process.err;
    EXPECT_TRUE(parse.lines.empty());

    auto list = evalJobs({dir.write("list.nix", "[ 1 2 ]")});
    EXPECT_NE(list.process.exitCode, 0);
    EXPECT_NE(list.process.err.find("must evaluate to an attribute set"), std::string::npos) << list.process.err;

    auto missing = evalJobs({dir.path() + "/does-not-exist.nix"});
    EXPECT_NE(missing.process.exitCode, 0);
    EXPECT_NE(missing.process.err.find("does-not-exist.nix"), std::string::npos) << missing.process.err;

    auto throwing = evalJobs({dir.write("throw.nix", "throw \"no jobset today\"")});
    EXPECT_NE(throwing.process.exitCode, 0);
    EXPECT_NE(throwing.process.err.find("no jobset today"), std::string::npos) << throwing.process.err;

    auto usage = evalJobs({"--workers", "zero", dir.path() + "/list.nix"});
    EXPECT_NE(usage.process.exitCode, 0);
    EXPECT_NE(usage.process.err.find("--workers"), std::string::npos) << usage.process.err;

    auto nothing = evalJobs({});
    EXPECT_NE(nothing.process.exitCode, 0);
}

// A worker killed while it evaluates a job: that job gets an error line, a
// fresh worker evaluates the rest.
TEST(EvalErrors, KilledWorkerCostsOnlyItsJob)
{
    TempDir dir;
    auto fifo = dir.path() + "/block";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    auto file = dir.write("blocking.nix", R"({ salt, fifo }:
let mk = name: derivation { inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; }; in
{
  a = mk "a"; b = mk "b"; c = mk "c";
  blocked = builtins.trace "evolive-test: blocking" (mk (builtins.readFile fifo));
  d = mk "d"; e = mk "e";
})");
    Subprocess proc({evalJobsBinary(), "--workers", "1", "--batch-size", "6", "--argstr", "salt", freshSalt(),
                     "--argstr", "fifo", fifo, file});
    ASSERT_TRUE(proc.waitForStderr("evolive-test: blocking", std::chrono::seconds(60)));
    auto workers = childrenOf(proc.pid());
    ASSERT_EQ(workers.size(), 1u);
    ASSERT_EQ(kill(workers[0], SIGKILL), 0);

    auto run = parseEvalOutput(proc.wait());
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    ASSERT_TRUE(run.jobs.count("blocked"));
    EXPECT_NE(run.jobs["blocked"].value("error", "").find("killed by signal 9"), std::string::npos) << run.jobs["blocked"];
    for (auto name : {"a", "b", "c", "d", "e"}) {
        ASSERT_TRUE(run.jobs.count(name)) << name;
        EXPECT_TRUE(std::filesystem::exists(run.jobs[name]["drvPath"].get<std::string>()));
    }
    EXPECT_EQ(run.lines.size(), 6u);
}

// Over --max-memory-size a worker is replaced between jobs; nothing is lost
// or evaluated twice into the output.
TEST(EvalErrors, MemoryLimitRestartsWorkersBetweenJobs)
{
    auto salt = freshSalt();
    std::vector<std::string> args{"--workers", "2", "--batch-size", "10", "--arg", "n", "150", "--argstr", "salt", salt,
                                  workloadsDir() + "/synthetic.nix"};
    auto plain = evalJobs(args);
    args.insert(args.begin(), {"--max-memory-size", "1"});
    auto limited = evalJobs(args);
    ASSERT_EQ(limited.process.exitCode, 0) << limited.process.err;
    EXPECT_NE(limited.process.err.find("restarting a worker"), std::string::npos);
    std::set<std::string> a, b;
    for (auto & j : plain.lines) a.insert(j.dump());
    for (auto & j : limited.lines) b.insert(j.dump());
    EXPECT_EQ(a, b);
    EXPECT_GT(b.size(), 150u);
}

// A runaway job under the hard limit fails alone; the machine is not exhausted.
TEST(EvalErrors, HardMemoryLimitStopsARunawayJob)
{
    TempDir dir;
    auto file = dir.write("runaway.nix", R"({ salt }:
let mk = name: derivation { inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; }; in
{
  a = mk "a";
  runaway = mk (toString (builtins.length (builtins.genList (x: [ x ]) 300000000)));
  z = mk "z";
})");
    auto run = evalJobs({"--max-memory-size", "512", "--max-memory-hard", "1024", "--batch-size", "1", "--argstr",
                         "salt", freshSalt(), file});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    ASSERT_TRUE(run.jobs.count("runaway"));
    EXPECT_NE(run.jobs["runaway"].value("error", "").find("out of memory"), std::string::npos) << run.jobs["runaway"];
    EXPECT_TRUE(run.jobs.count("a") && run.jobs["a"].contains("drvPath"));
    EXPECT_TRUE(run.jobs.count("z") && run.jobs["z"].contains("drvPath"));
}
