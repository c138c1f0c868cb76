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
    return errorMessage(job.value("error", std::string("<no error in line>")));
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
        // Nix 2.8: "assertion '(1 == 2)' failed"; Nix 2.26 names the assertion
        // in a frame and says why it is false.
        EXPECT_NE(run.jobs["asserts"].value("error", "").find("assertion '(1 == 2)'"), std::string::npos);
        EXPECT_NE(errorOf(run, "aborts").find("deliberate abort"), std::string::npos);
        EXPECT_NE(errorOf(run, "missing").find("attribute 'nothing' missing"), std::string::npos);
        // Nix 2.8: "value is an integer while a string was expected";
        // Nix 2.26: "expected a string but found an integer: 3".
        auto typeError = errorOf(run, "typeError");
        EXPECT_TRUE(typeError.find("while a string was expected") != std::string::npos ||
                    typeError.find("expected a string but found an integer") != std::string::npos)
            << typeError;
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

// --reject-unused-args: an --arg/--argstr the root function does not take is
// one error, before any job; without the flag Nix drops it silently.
TEST(EvalErrors, RejectUnusedArgsNamesTheArgumentsAndTheFormals)
{
    TempDir dir;
    auto release = dir.write("release.nix", R"({ salt, a, b ? 1 }:
{ job = derivation { name = "job-${toString a}"; inherit salt; system = "x86_64-linux"; builder = "/bin/sh"; }; })");
    auto salt = freshSalt();
    auto countOf = [](const std::string & haystack, const std::string & needle) {
        size_t n = 0;
        for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
        return n;
    };

    for (auto workers : {"1", "2"}) {
        SCOPED_TRACE(std::string("workers ") + workers);
        auto unused = evalJobs({"--reject-unused-args", "--workers", workers, "--argstr", "salt", salt, "--arg", "a",
                                "1", "--arg", "foo", "2", release});
        EXPECT_EQ(unused.process.exitCode, 1);
        EXPECT_TRUE(unused.lines.empty());
        auto message = "error: argument 'foo' is given but " + release +
                       " does not take it (it takes: a, b, salt); remove the input or add it to the function's arguments";
        EXPECT_EQ(countOf(unused.process.err, message), 1u) << unused.process.err;
        EXPECT_EQ(countOf(unused.process.err, "error:"), 1u) << unused.process.err;
    }

    // --argstr counts too, and every unused name is listed.
    auto several = evalJobs({"--reject-unused-args", "--argstr", "salt", salt, "--arg", "a", "1", "--argstr", "zeta",
                             "z", "--argstr", "extra", "x", release});
    EXPECT_EQ(several.process.exitCode, 1);
    EXPECT_TRUE(several.lines.empty());
    EXPECT_NE(several.process.err.find("error: arguments 'extra', 'zeta' are given but " + release +
                                       " does not take them (it takes: a, b, salt); remove the inputs or add them "
                                       "to the function's arguments"),
              std::string::npos)
        << several.process.err;

    // Every name used (defaults may be overridden or left out): the run is as usual.
    for (auto & used : std::vector<std::vector<std::string>>{{"--arg", "a", "1"}, {"--arg", "a", "1", "--arg", "b", "2"}}) {
        std::vector<std::string> args{"--reject-unused-args", "--argstr", "salt", salt};
        args.insert(args.end(), used.begin(), used.end());
        args.push_back(release);
        auto ok = evalJobs(args);
        ASSERT_EQ(ok.process.exitCode, 0) << ok.process.err;
        EXPECT_TRUE(ok.jobs.count("job") && ok.jobs["job"].contains("drvPath"));
    }

    // Without the flag, nix-eval-jobs' behaviour: the unused argument is ignored.
    auto lenient = evalJobs({"--argstr", "salt", salt, "--arg", "a", "1", "--arg", "foo", "2", release});
    ASSERT_EQ(lenient.process.exitCode, 0) << lenient.process.err;
    EXPECT_TRUE(lenient.jobs.count("job") && lenient.jobs["job"].contains("drvPath"));

    // A function with `...` may use any argument, a set is not called: no check.
    auto ellipsis = evalJobs({"--reject-unused-args", "--argstr", "salt", salt, "--arg", "foo", "2",
                              dir.write("ellipsis.nix", R"({ salt, ... }@args:
{ job = derivation { name = "job-${toString args.foo}"; inherit salt; system = "x86_64-linux"; builder = "/bin/sh"; }; })")});
    ASSERT_EQ(ellipsis.process.exitCode, 0) << ellipsis.process.err;
    EXPECT_TRUE(ellipsis.jobs.count("job") && ellipsis.jobs["job"].value("name", "") == "job-2") << ellipsis.process.err;

    // An argument that is also a search path entry may be used as <name>.
    auto searched = evalJobs({"--reject-unused-args", "-I", "src=" + dir.path(), "--arg", "src", "./.", "--argstr",
                              "salt", salt, "--arg", "a", "1", release});
    EXPECT_EQ(searched.process.exitCode, 0) << searched.process.err;

    auto set = evalJobs({"--reject-unused-args", "--arg", "foo", "2", dir.write("set.nix", "{ }")});
    EXPECT_EQ(set.process.exitCode, 0) << set.process.err;
    EXPECT_TRUE(set.lines.empty());

    // `{ }:` takes nothing; --expr is named as such.
    auto none = evalJobs({"--reject-unused-args", "--arg", "foo", "2", "--expr", "{ }: { }"});
    EXPECT_EQ(none.process.exitCode, 1);
    EXPECT_NE(none.process.err.find("error: argument 'foo' is given but the --expr expression does not take it (it "
                                    "takes no arguments)"),
              std::string::npos)
        << none.process.err;
}

// Strings that are not UTF-8 (Nix strings are bytes) cannot go into a JSON
// line: the job whose field holds one gets an error line saying which
// field, an error message holding one is kept with the bytes replaced, and
// the worker lives on.
TEST(EvalErrors, InvalidUtf8IsTheJobsOwnError)
{
    TempDir dir;
    auto file = dir.write("utf8.nix", "{ salt }:\n"
                                      "let mk = name: attrs: derivation ({ inherit name salt; system = \"x86_64-linux\";\n"
                                      "                                   builder = \"/bin/sh\"; } // attrs); in\n"
                                      "{\n"
                                      "  before = mk \"before\" { };\n"
                                      "  badSystem = mk \"bad-system\" { system = \"x86_64-linux\xff\"; };\n"
                                      "  badMeta = mk \"bad-meta\" { } // { meta.description = \"caf\xe9\"; };\n"
                                      "  badThrow = throw \"caf\xe9 is not UTF-8\";\n"
                                      "  latin1Attr = mk \"latin1\" { label = \"caf\xe9\"; };\n"
                                      "  after = mk \"after\" { };\n"
                                      "}\n");
    auto run = evalJobs({"--workers", "1", "--batch-size", "5", "--meta", "--argstr", "salt", freshSalt(), file});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    EXPECT_EQ(run.process.err.find("worker died"), std::string::npos) << run.process.err;
    auto system = errorOf(run, "badSystem");
    EXPECT_NE(system.find("'system' is not valid UTF-8"), std::string::npos) << system;
    auto meta = errorOf(run, "badMeta");
    EXPECT_NE(meta.find("'meta.description' is not valid UTF-8"), std::string::npos) << meta;
    auto thrown = errorOf(run, "badThrow");
    EXPECT_NE(thrown.find("caf\xef\xbf\xbd is not UTF-8"), std::string::npos) << thrown; // U+FFFD for the byte
    for (auto name : {"before", "after", "latin1Attr"}) {
        ASSERT_TRUE(run.jobs.count(name)) << name;
        EXPECT_TRUE(run.jobs[name].contains("drvPath")) << run.jobs[name];
    }
    // A .drv whose attributes are not UTF-8 (only the job line must be) is
    // written with its bytes as they are.
    auto drv = readFile(run.jobs["latin1Attr"]["drvPath"].get<std::string>());
    EXPECT_NE(drv.find("\"label\",\"caf\xe9\""), std::string::npos) << drv;
    EXPECT_EQ(run.lines.size(), 6u);
}

// A meta value nested deeper than a job line may be is that job's error:
// 100,000 levels overflowed the coordinator's stack when it freed the line,
// and the whole run failed without a line.
TEST(EvalErrors, AMetaNestedTooDeeplyIsTheJobsOwnError)
{
    TempDir dir;
    auto file = dir.write("deep.nix", "{ salt }:\n"
                                      "let mk = name: derivation { inherit name salt; system = \"x86_64-linux\"; builder = \"/bin/sh\"; };\n"
                                      "    nest = n: if n == 0 then 1 else [ (nest (n - 1)) ];\n"
                                      "in {\n"
                                      "  deepest = mk \"deepest\" // { meta.d = nest 100000; };\n"
                                      "  tooDeep = mk \"too-deep\" // { meta.d = nest 9999; };\n"
                                      "  deepEnough = mk \"deep-enough\" // { meta.d = nest 9997; };\n"
                                      "  after = mk \"after\";\n"
                                      "}\n");
    auto run = evalJobs({"--workers", "1", "--meta", "--argstr", "salt", freshSalt(), file});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err.substr(0, 2000);
    for (auto name : {"deepest", "tooDeep"}) {
        auto error = errorOf(run, name);
        EXPECT_NE(error.find("the job's 'meta.d' is nested deeper than 9998 levels"), std::string::npos) << error;
    }
    // The deepest line allowed: meta (2) + d's 9997 levels + the job object.
    ASSERT_TRUE(run.jobs["deepEnough"].contains("drvPath")) << run.jobs["deepEnough"].dump().substr(0, 200);
    EXPECT_TRUE(run.jobs["after"].contains("drvPath"));
}
