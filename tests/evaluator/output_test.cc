// What evolive-eval-jobs prints, checked against Nix itself and against
// nix-eval-jobs' own output for the same jobset.
#include "eval_jobs.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

std::string synthetic() { return workloadsDir() + "/synthetic.nix"; }

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

} // namespace

// nix-eval-jobs 2.8's output for the synthetic jobset (tests/data, made with
// `--workers 1 --meta`): the same jobs, .drv paths, outputs, names, systems,
// meta, and an error for the same attributes. Its one known difference, an
// error line per `recurseForDerivations` flag, is not copied.
TEST(EvalOutput, MatchesNixEvalJobsReference)
{
    auto run = evalJobs({"--meta", "--workers", "2", "--arg", "n", "2000", "--argstr", "salt", "reference", synthetic()});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;

    std::ifstream ref(testDataDir() + "/synthetic-n2000-nix-eval-jobs-2.8.jsonl");
    std::string line;
    size_t compared = 0;
    std::set<std::string> expectedAttrs;
    while (std::getline(ref, line)) {
        auto expected = json::parse(line);
        auto attr = expected["attr"].get<std::string>();
        if (attr.ends_with("recurseForDerivations")) continue;
        expectedAttrs.insert(attr);
        ASSERT_TRUE(run.jobs.count(attr)) << "missing job " << attr;
        auto & actual = run.jobs[attr];
        if (expected.contains("error")) {
            ASSERT_TRUE(actual.contains("error")) << actual;
            auto firstLine = [](const json & j) {
                auto s = j["error"].get<std::string>();
                return s.substr(0, s.find('\n'));
            };
            // Nix 2.26 puts trace frames before the message: compare messages.
            EXPECT_EQ(firstLine(json{{"error", errorMessage(actual["error"].get<std::string>())}}), firstLine(expected));
            EXPECT_EQ(actual["attrPath"], expected["attrPath"]);
        } else {
            EXPECT_EQ(actual, expected);
        }
        ++compared;
    }
    EXPECT_EQ(compared, 2086u);
    EXPECT_EQ(run.jobs.size(), expectedAttrs.size()) << "jobs that nix-eval-jobs does not report";
}

// Fields against nix-instantiate and nix-store for the same derivations.
TEST(EvalOutput, FieldsMatchNixInstantiate)
{
    auto salt = freshSalt();
    auto run = evalJobs({"--arg", "n", "60", "--argstr", "salt", salt, synthetic()});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;

    for (std::string attr : {"pkg-0", "pkg-10", "pkg-59", "stdenv", "pythonPackages.python-pkg-0", "nested.deeper.deep-2"}) {
        SCOPED_TRACE(attr);
        ASSERT_TRUE(run.jobs.count(attr));
        auto & job = run.jobs[attr];
        auto inst = runCommand({"nix-instantiate", synthetic(), "--arg", "n", "60", "--argstr", "salt", salt, "-A", attr});
        ASSERT_EQ(inst.exitCode, 0) << inst.err;
        EXPECT_EQ(job["drvPath"], trimmed(inst.out));
        EXPECT_TRUE(std::filesystem::exists(job["drvPath"].get<std::string>()));

        auto outs = runCommand({"nix-store", "--query", "--outputs", job["drvPath"].get<std::string>()});
        std::set<std::string> expectedOutputs, actualOutputs;
        std::istringstream lines(outs.out);
        for (std::string l; std::getline(lines, l);) expectedOutputs.insert(l);
        for (auto & [name, path] : job["outputs"].items()) actualOutputs.insert(path.get<std::string>());
        EXPECT_EQ(actualOutputs, expectedOutputs);

        auto attrs = runCommand({"nix-instantiate", "--eval", "--strict", "--json", "-E",
                          "let d = (import " + synthetic() + " { n = 60; salt = \"" + salt + "\"; })." + attr +
                              "; in { inherit (d) name system; outputs = d.outputs or [ \"out\" ]; }"});
        ASSERT_EQ(attrs.exitCode, 0) << attrs.err;
        auto expected = json::parse(attrs.out);
        EXPECT_EQ(job["name"], expected["name"]);
        EXPECT_EQ(job["system"], expected["system"]);
        std::set<std::string> names;
        for (auto & [name, _] : job["outputs"].items()) names.insert(name);
        EXPECT_EQ(names, (expected["outputs"].get<std::set<std::string>>()));
        EXPECT_EQ(job["attrPath"].size(), std::count(attr.begin(), attr.end(), '.') + 1u);
    }
}

TEST(EvalOutput, SameLinesForOneAndTwoWorkers)
{
    auto salt = freshSalt();
    std::vector<std::string> common{"--meta", "--arg", "n", "300", "--argstr", "salt", salt, synthetic()};
    auto one = common, two = common;
    one.insert(one.begin(), {"--workers", "1"});
    two.insert(two.begin(), {"--workers", "2", "--batch-size", "3"});
    auto a = evalJobs(one), b = evalJobs(two);
    ASSERT_EQ(a.process.exitCode, 0) << a.process.err;
    ASSERT_EQ(b.process.exitCode, 0) << b.process.err;
    EXPECT_GT(a.lines.size(), 300u);
    std::set<std::string> la, lb;
    for (auto & j : a.lines) la.insert(j.dump());
    for (auto & j : b.lines) lb.insert(j.dump());
    EXPECT_EQ(la, lb);
}

TEST(EvalOutput, AttributeNamesStayExactAndAreQuotedUnambiguously)
{
    auto run = evalJobs({"--argstr", "salt", freshSalt(), testDataDir() + "/names.nix"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    std::map<std::string, std::pair<json, std::string>> expected{
        {"\"a.b\"", {json::array({"a.b"}), "dotted"}},
        {"\"with space\"", {json::array({"with space"}), "spaced"}},
        {"\"quote\\\"d\"", {json::array({"quote\"d"}), "quoted"}},
        {"\"ünïcødé-✓\"", {json::array({"ünïcødé-✓"}), "unicode"}},
        {"\"\\${dollar}\"", {json::array({"${dollar}"}), "dollar"}},
        {"\"let\"", {json::array({"let"}), "keyword"}},
        {"plain", {json::array({"plain"}), "plain"}},
        {"set.\"x.y\"", {json::array({"set", "x.y"}), "nested-dotted"}},
    };
    EXPECT_EQ(run.jobs.size(), expected.size());
    for (auto & [attr, want] : expected) {
        SCOPED_TRACE(attr);
        ASSERT_TRUE(run.jobs.count(attr));
        EXPECT_EQ(run.jobs[attr]["attrPath"], want.first);
        EXPECT_EQ(run.jobs[attr]["name"], want.second);
    }
}

// Values that are neither derivations nor sets to recurse into, and the
// `recurseForDerivations` flags themselves, produce no lines.
TEST(EvalOutput, OnlyDerivationsAndErrorsAreReported)
{
    auto run = evalJobs({"--argstr", "salt", freshSalt(), testDataDir() + "/errors.nix"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    for (auto name : {"notADerivation", "aFunction", "aList", "aString", "hiddenSet", "hiddenSet.inner",
                      "visibleSet.recurseForDerivations"})
        EXPECT_EQ(run.jobs.count(name), 0u) << name;
    EXPECT_TRUE(run.jobs.count("visibleSet.inner"));

    auto forced = evalJobs({"--force-recurse", "--argstr", "salt", freshSalt(), testDataDir() + "/errors.nix"});
    EXPECT_TRUE(forced.jobs.count("hiddenSet.inner"));
}

TEST(EvalOutput, ExprArgstrSelectAndApply)
{
    TempDir dir;
    dir.write("lib/mk.nix", "salt: name: derivation { inherit name salt; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }\n");
    auto salt = freshSalt();
    auto run = evalJobs({"-I", "lib=" + dir.path() + "/lib", "--argstr", "salt", salt, "--expr",
                         "{ salt }: let mk = import <lib/mk.nix> salt; in { x = mk \"x\"; sub = { y = mk \"y\"; }; }",
                         "--select", "root: root.sub // { recurseForDerivations = true; }", "--apply",
                         "d: { inherit (d) name; upper = builtins.replaceStrings [\"y\"] [\"Y\"] d.name; }"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    ASSERT_EQ(run.jobs.size(), 1u);
    auto & y = run.jobs["y"];
    EXPECT_EQ(y["name"], "y");
    EXPECT_EQ(y["extraValue"], (json{{"name", "y"}, {"upper", "Y"}}));
}

TEST(EvalOutput, NoInstantiateComputesButDoesNotWrite)
{
    auto salt = freshSalt();
    auto dry = evalJobs({"--no-instantiate", "--arg", "n", "60", "--argstr", "salt", salt, synthetic()});
    ASSERT_EQ(dry.process.exitCode, 0) << dry.process.err;
    auto path = dry.jobs["pkg-1"]["drvPath"].get<std::string>();
    EXPECT_FALSE(std::filesystem::exists(path));

    auto real = evalJobs({"--arg", "n", "60", "--argstr", "salt", salt, synthetic()});
    EXPECT_EQ(real.jobs["pkg-1"]["drvPath"], path);
    EXPECT_TRUE(std::filesystem::exists(path));
}

// A new chroot store (Nix's local?root=DIR, as `evolive worker --store-root`
// and `evolive serve --store-root` use) is created once, not by every worker
// at once (they raced to create its directories and most runs failed).
TEST(EvalOutput, WorkersShareANewChrootStore)
{
    TempDir dir;
    for (int run = 0; run < 8; ++run) {
        bool listing = run % 2; // --list-paths opens it read-only, and raced as well
        SCOPED_TRACE(listing ? "--list-paths" : "a run");
        auto root = dir.path() + "/root" + std::to_string(run);
        std::filesystem::create_directories(root);
        std::vector<std::string> argv{evalJobsBinary(), "--workers", "2", "--arg", "n", "20", "--argstr", "salt", freshSalt()};
        if (listing) argv.push_back("--list-paths");
        argv.push_back(synthetic());
        auto result = runCommand(argv, {{"NIX_REMOTE", "local?root=" + root}});
        ASSERT_EQ(result.exitCode, 0) << result.err;
        auto lines = parseEvalOutput(result);
        ASSERT_TRUE(lines.jobs.count("pkg-1"));
        if (!listing) {
            auto drv = lines.jobs.at("pkg-1")["drvPath"].get<std::string>();
            EXPECT_TRUE(std::filesystem::exists(root + drv)) << drv;
        }
    }
}

TEST(EvalOutput, GcRootsInputDrvsAndCacheStatus)
{
    TempDir roots;
    auto salt = freshSalt();
    auto run = evalJobs({"--gc-roots-dir", roots.path(), "--show-input-drvs", "--check-cache-status", "--option", "substituters", "", "--arg", "n",
                         "60", "--argstr", "salt", salt, synthetic()});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    auto & job = run.jobs["pkg-45"];
    auto drv = job["drvPath"].get<std::string>();

    auto root = roots.path() + "/" + std::filesystem::path(drv).filename().string();
    ASSERT_TRUE(std::filesystem::is_symlink(root));
    EXPECT_EQ(std::filesystem::read_symlink(root), drv);

    auto refs = runCommand({"nix-store", "--query", "--references", drv});
    std::set<std::string> drvRefs, inputs;
    std::istringstream lines(refs.out);
    for (std::string l; std::getline(lines, l);)
        if (l.ends_with(".drv")) drvRefs.insert(l);
    for (auto & [path, outputs] : job["inputDrvs"].items()) {
        inputs.insert(path);
        EXPECT_EQ(outputs, json::array({"out"}));
    }
    EXPECT_FALSE(inputs.empty());
    EXPECT_EQ(inputs, drvRefs);

    // Nothing of a fresh salt was ever built.
    EXPECT_EQ(job["cacheStatus"], "notBuilt");
    auto builds = job["neededBuilds"].get<std::set<std::string>>();
    EXPECT_TRUE(builds.count(drv));
    EXPECT_TRUE(builds.count(run.jobs["stdenv"]["drvPath"].get<std::string>()));
    EXPECT_EQ(job["neededSubstitutes"], json::array());
}

TEST(EvalOutput, FlakeOutputsDefaultToHydraJobs)
{
    TempDir dir;
    auto salt = freshSalt();
    dir.write("flake.nix", R"({
  outputs = { self }: let
    mk = name: derivation { inherit name; salt = ")" + salt + R"("; system = "x86_64-linux"; builder = "/bin/sh"; };
  in {
    hydraJobs = { hello = mk "hello"; nested = { recurseForDerivations = true; x = mk "x"; }; };
    checks.x86_64-linux.other = mk "other";
  };
})");
    auto all = evalJobs({"--flake", "path:" + dir.path()});
    ASSERT_EQ(all.process.exitCode, 0) << all.process.err;
    EXPECT_EQ(all.jobs.size(), 2u);
    EXPECT_EQ(all.jobs["hello"]["name"], "hello");
    EXPECT_EQ(all.jobs["nested.x"]["name"], "x");

    auto checks = evalJobs({"--flake", "path:" + dir.path() + "#checks.x86_64-linux"});
    ASSERT_EQ(checks.process.exitCode, 0) << checks.process.err;
    ASSERT_EQ(checks.jobs.size(), 1u);
    EXPECT_EQ(checks.jobs["other"]["name"], "other");
}

// The three cache states, with a real build and a real binary cache as the
// substituter.
TEST(EvalOutput, CacheStatusIsLocalCachedOrNotBuilt)
{
    TempDir dir;
    auto salt = freshSalt();
    auto file = dir.write("jobs.nix", R"({ salt }:
let mk = name: derivation { inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo $name > $out" ]; };
in { local = mk "local"; cached = mk "cached"; fresh = mk "fresh"; })");
    auto build = [&](const std::string & attr) {
        auto r = runCommand({"nix-build", file, "--argstr", "salt", salt, "-A", attr, "--no-out-link", "--option",
                             "sandbox", "false"});
        EXPECT_EQ(r.exitCode, 0) << r.err;
        return r.out.substr(0, r.out.find('\n'));
    };
    build("local");
    auto cachedOut = build("cached");
    auto cache = dir.path() + "/cache";
    auto copy = runCommand({"nix", "--extra-experimental-features", "nix-command", "copy", "--to", "file://" + cache,
                            cachedOut});
    ASSERT_EQ(copy.exitCode, 0) << copy.err;
    auto del = runCommand({"nix-store", "--delete", cachedOut});
    ASSERT_EQ(del.exitCode, 0) << del.err;

    auto run = evalJobs({"--check-cache-status", "--option", "substituters", "file://" + cache, "--option",
                         "require-sigs", "false", "--argstr", "salt", salt, file});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;
    EXPECT_EQ(run.jobs["local"]["cacheStatus"], "local");
    EXPECT_EQ(run.jobs["local"]["neededBuilds"], json::array());
    EXPECT_EQ(run.jobs["cached"]["cacheStatus"], "cached");
    EXPECT_EQ(run.jobs["cached"]["neededSubstitutes"], json::array({cachedOut}));
    EXPECT_EQ(run.jobs["cached"]["neededBuilds"], json::array());
    EXPECT_EQ(run.jobs["fresh"]["cacheStatus"], "notBuilt");
    EXPECT_EQ(run.jobs["fresh"]["neededBuilds"], json::array({run.jobs["fresh"]["drvPath"]}));
}
