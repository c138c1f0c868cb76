// --list-paths, --paths and --serve-paths, the halves of a fleet evaluation: listing
// the jobs' attribute paths without instantiating anything, and evaluating
// chosen paths so that chunks of a listing give, together, a full run.
#include "eval_jobs.hh"

#include <fnmatch.h>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;

namespace {

struct Jobset
{
    std::string file;
    std::vector<std::string> options; // the same for every run of it
};

std::vector<Jobset> jobsets()
{
    return {{"errors.nix", {}}, {"names.nix", {}}, {"aggregates.nix", {"--constituents"}}};
}

// The evaluator's arguments for `jobset` with `salt`, then `extra`, then the file.
std::vector<std::string> jobsetArgs(const Jobset & jobset, const std::string & salt, std::vector<std::string> extra = {})
{
    std::vector<std::string> args{"--workers", "2", "--argstr", "salt", salt};
    args.insert(args.end(), jobset.options.begin(), jobset.options.end());
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(testDataDir() + "/" + jobset.file);
    return args;
}

EvalRun runJobset(const Jobset & jobset, const std::string & salt, std::vector<std::string> extra)
{
    return evalJobs(jobsetArgs(jobset, salt, std::move(extra)));
}

std::set<json> attrPathsOf(const EvalRun & run)
{
    std::set<json> out;
    for (auto & line : run.lines) out.insert(line.at("attrPath"));
    return out;
}

std::multiset<json> linesOf(const std::vector<EvalRun> & runs)
{
    std::multiset<json> out;
    for (auto & run : runs) out.insert(run.lines.begin(), run.lines.end());
    return out;
}

// The listed paths in `chunks` chunks, as the fleet would cut them: every
// aggregate that names jobs in the first chunk with what it names (by name
// or by glob, through aggregates of aggregates); the other paths in turn in
// the other chunks.
std::vector<json> splitListing(const EvalRun & listing, size_t chunks)
{
    std::set<std::string> together;
    std::vector<std::string> pending;
    for (auto & line : listing.lines)
        if (!line.value("namedConstituents", json::array()).empty()) pending.push_back(line["attr"]);
    while (!pending.empty()) {
        auto name = pending.back();
        pending.pop_back();
        if (!together.insert(name).second || !listing.jobs.count(name)) continue;
        auto & line = listing.jobs.at(name);
        for (auto & wanted : line.value("namedConstituents", json::array()))
            for (auto & [candidate, _] : listing.jobs)
                if (line.value("globConstituents", false)
                        ? fnmatch(wanted.get<std::string>().c_str(), candidate.c_str(), 0) == 0
                        : candidate == wanted.get<std::string>())
                    pending.push_back(candidate);
    }
    std::vector<json> out(chunks, json::array());
    size_t next = 0;
    for (auto & line : listing.lines) {
        if (together.count(line["attr"])) out[0].push_back(line["attrPath"]);
        else if (together.empty()) out[next++ % chunks].push_back(line["attrPath"]);
        else out[1 + next++ % (chunks - 1)].push_back(line["attrPath"]);
    }
    return out;
}

std::set<std::string> invalidStorePaths(const std::vector<std::string> & paths)
{
    std::vector<std::string> argv{"nix-store", "--check-validity", "--print-invalid"};
    argv.insert(argv.end(), paths.begin(), paths.end());
    auto check = runCommand(argv);
    EXPECT_EQ(check.exitCode, 0) << check.err;
    return lineSet(check.out);
}

} // namespace

TEST(EvalListPaths, ListsWhatAFullRunReportsAndInstantiatesNothing)
{
    for (auto & jobset : jobsets()) {
        SCOPED_TRACE(jobset.file);
        auto salt = freshSalt();
        auto listing = runJobset(jobset, salt, {"--list-paths"});
        ASSERT_EQ(listing.process.exitCode, 0) << listing.process.err;
        // What a full run would have written, computed without writing it.
        auto full = runJobset(jobset, salt, {"--no-instantiate"});
        ASSERT_EQ(full.process.exitCode, 0) << full.process.err;

        EXPECT_EQ(attrPathsOf(listing), attrPathsOf(full));
        std::vector<std::string> drvPaths;
        for (auto & [attr, job] : full.jobs) {
            if (job.contains("drvPath")) drvPaths.push_back(job["drvPath"]);
            ASSERT_TRUE(listing.jobs.count(attr)) << attr;
            auto & line = listing.jobs.at(attr);
            EXPECT_EQ(line["attrPath"], job["attrPath"]);
            // A listing line is the path, and for aggregates what they name.
            for (auto & [field, _] : line.items())
                EXPECT_TRUE(field == "attr" || field == "attrPath" || field == "aggregate" ||
                            field == "namedConstituents" || field == "globConstituents")
                    << line;
        }
        ASSERT_FALSE(drvPaths.empty());
        EXPECT_EQ(invalidStorePaths(drvPaths), std::set<std::string>(drvPaths.begin(), drvPaths.end()))
            << "listing wrote .drv files";
    }
}

TEST(EvalListPaths, MarksAggregatesWithWhatTheyName)
{
    auto listing = runJobset({"aggregates.nix", {"--constituents"}}, freshSalt(), {"--list-paths"});
    ASSERT_EQ(listing.process.exitCode, 0) << listing.process.err;
    auto & jobs = listing.jobs;
    EXPECT_EQ(jobs.at("byName"), json::parse(R"({"attr": "byName", "attrPath": ["byName"], "aggregate": true,
                                                 "namedConstituents": ["a", "tests.t1"]})"));
    EXPECT_EQ(jobs.at("byGlob"), json::parse(R"({"attr": "byGlob", "attrPath": ["byGlob"], "aggregate": true,
                                                 "namedConstituents": ["tests.*"], "globConstituents": true})"));
    // Constituents given as derivations are part of its own .drv already.
    EXPECT_EQ(jobs.at("byDrv"), json::parse(R"({"attr": "byDrv", "attrPath": ["byDrv"], "aggregate": true,
                                                "namedConstituents": []})"));
    EXPECT_EQ(jobs.at("ofAggregate")["namedConstituents"], json::array({"byName", "c"}));
    EXPECT_EQ(jobs.at("withMissing")["namedConstituents"], json::array({"a", "nonexistent", "broken"}));
    EXPECT_EQ(jobs.at("tests.t1"), json::parse(R"({"attr": "tests.t1", "attrPath": ["tests", "t1"]})"));
    EXPECT_EQ(jobs.at("broken"), json::parse(R"({"attr": "broken", "attrPath": ["broken"]})"));

    // Without --constituents an aggregate is a plain job, as in a full run.
    auto plain = runJobset({"aggregates.nix", {}}, freshSalt(), {"--list-paths"});
    EXPECT_EQ(plain.jobs.at("byName"), json::parse(R"({"attr": "byName", "attrPath": ["byName"]})"));
}

TEST(EvalChosenPaths, ChunksOfAListingGiveTheLinesOfAFullRun)
{
    for (auto & jobset : jobsets()) {
        SCOPED_TRACE(jobset.file);
        auto salt = freshSalt();
        auto full = runJobset(jobset, salt, {});
        ASSERT_EQ(full.process.exitCode, 0) << full.process.err;
        auto listing = runJobset(jobset, salt, {"--list-paths"});
        ASSERT_EQ(listing.process.exitCode, 0) << listing.process.err;

        TempDir dir;
        std::vector<EvalRun> chunkRuns;
        auto chunks = splitListing(listing, 3);
        for (size_t i = 0; i < chunks.size(); ++i) {
            ASSERT_FALSE(chunks[i].empty());
            auto file = dir.write("chunk" + std::to_string(i) + ".json", chunks[i].dump());
            chunkRuns.push_back(runJobset(jobset, salt, {"--paths", file}));
            ASSERT_EQ(chunkRuns.back().process.exitCode, 0) << chunkRuns.back().process.err;
            EXPECT_EQ(chunkRuns.back().lines.size(), chunks[i].size());
        }
        // Same fields, same values: error lines, odd names and aggregates
        // with their rewritten .drv included.
        EXPECT_EQ(linesOf(chunkRuns), linesOf({full}));
    }

    // An aggregate's names are looked up among this run's jobs only.
    TempDir dir;
    auto alone = runJobset(jobsets()[2], freshSalt(), {"--paths", dir.write("p.json", R"([["byName"]])")});
    ASSERT_EQ(alone.process.exitCode, 0) << alone.process.err;
    EXPECT_EQ(alone.jobs.at("byName").value("error", ""), "a: does not exist\ntests.t1: does not exist\n");
}

TEST(EvalChosenPaths, AMissingPathIsAnErrorLineAndTheRunGoesOn)
{
    TempDir dir;
    auto paths = dir.write("paths.json", R"([["nope"], ["ok"], ["visibleSet", "gone"], ["hiddenSet"],
                                             ["hiddenSet", "inner"], ["ok"]])");
    auto run = evalJobs({"--argstr", "salt", freshSalt(), "--paths", paths, testDataDir() + "/errors.nix"});
    ASSERT_EQ(run.process.exitCode, 0) << run.process.err;

    EXPECT_EQ(run.jobs.at("nope")["error"], "error: attribute 'nope' missing") << run.jobs.at("nope");
    EXPECT_EQ(run.jobs.at("visibleSet.gone")["attrPath"], json::array({"visibleSet", "gone"}));
    EXPECT_EQ(run.jobs.at("visibleSet.gone")["error"], "error: attribute 'gone' missing");
    EXPECT_TRUE(run.jobs.at("ok").contains("drvPath")) << run.jobs.at("ok");
    // A set asked for is entered even without recurseForDerivations; a path
    // given twice, or also reached through its set, is reported once.
    EXPECT_EQ(run.jobs.at("hiddenSet.inner")["name"], "hidden");
    EXPECT_EQ(run.lines.size(), 4u);

    // The same from standard input, and listed rather than evaluated.
    auto listed = runCommand({"sh", "-c", "\"$0\" --list-paths --argstr salt x --paths - \"$1\" < \"$2\"",
                              evalJobsBinary(), testDataDir() + "/errors.nix", paths});
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    auto listing = parseEvalOutput(listed);
    EXPECT_EQ(listing.jobs.at("hiddenSet.inner"), json::parse(R"({"attr": "hiddenSet.inner",
                                                                  "attrPath": ["hiddenSet", "inner"]})"));
    EXPECT_TRUE(listing.jobs.count("nope"));
    EXPECT_EQ(listing.lines.size(), 4u);
}

TEST(EvalChosenPaths, ABadListIsRefusedBeforeAnythingRuns)
{
    TempDir dir;
    auto file = testDataDir() + "/errors.nix";
    for (auto & [content, message] : std::vector<std::pair<std::string, std::string>>{
             {R"({"a": 1})", "expected a JSON array of attribute paths"},
             {R"([["ok"], "ok"])", "element 1 (\"ok\") is not an attribute path"},
             {R"([["ok", 1]])", "element 0 ([\"ok\",1]) is not an attribute path"},
             {R"([["ok")", "the list of attribute paths"}}) {
        auto run = evalJobs({"--argstr", "salt", "x", "--paths", dir.write("bad.json", content), file});
        EXPECT_NE(run.process.exitCode, 0) << content;
        EXPECT_NE(run.process.err.find(message), std::string::npos) << run.process.err;
        EXPECT_TRUE(run.lines.empty()) << content;
    }
    auto missing = evalJobs({"--argstr", "salt", "x", "--paths", dir.path() + "/none.json", file});
    EXPECT_NE(missing.process.exitCode, 0);
    EXPECT_NE(missing.process.err.find("none.json"), std::string::npos) << missing.process.err;
}

namespace {

// evolive-eval-jobs --serve-paths with `requests` on standard input, one per line.
Completed servePaths(const std::vector<std::string> & args, const std::vector<std::string> & requests)
{
    TempDir dir;
    std::string input;
    for (auto & r : requests) input += r + "\n";
    std::vector<std::string> argv{"sh", "-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh", dir.write("in", input),
                                  evalJobsBinary(), "--serve-paths"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
}

// Its output cut at the `pathsDone` lines: each request's job lines, and the line that ended it.
struct ServedRequest
{
    std::vector<json> lines;
    json done;
};

std::vector<ServedRequest> servedRequests(const Completed & process)
{
    std::vector<ServedRequest> out(1);
    std::istringstream in(process.out);
    std::string line;
    while (std::getline(in, line)) {
        auto j = json::parse(line);
        if (j.contains("pathsDone")) {
            out.back().done = j;
            out.emplace_back();
        } else {
            out.back().lines.push_back(j);
        }
    }
    EXPECT_TRUE(out.back().lines.empty()) << "job lines after the last request's end";
    out.pop_back();
    return out;
}

} // namespace

TEST(EvalServedPaths, RequestsInOneProcessGiveTheLinesOfAFullRun)
{
    for (auto & jobset : jobsets()) {
        SCOPED_TRACE(jobset.file);
        auto salt = freshSalt();
        auto full = runJobset(jobset, salt, {});
        ASSERT_EQ(full.process.exitCode, 0) << full.process.err;
        auto listing = runJobset(jobset, salt, {"--list-paths"});
        ASSERT_EQ(listing.process.exitCode, 0) << listing.process.err;

        std::vector<std::string> requests;
        for (auto & chunk : splitListing(listing, 3)) requests.push_back(chunk.dump());
        auto served = servePaths(jobsetArgs(jobset, salt), requests);
        ASSERT_EQ(served.exitCode, 0) << served.err;

        auto answers = servedRequests(served);
        ASSERT_EQ(answers.size(), requests.size());
        std::multiset<json> lines;
        for (size_t i = 0; i < answers.size(); ++i) {
            auto & a = answers[i];
            size_t errors = 0;
            for (auto & l : a.lines) errors += l.contains("error");
            EXPECT_EQ(a.done, (json{{"pathsDone", i + 1}, {"jobs", a.lines.size()}, {"errors", errors}}));
            EXPECT_EQ(a.lines.size(), json::parse(requests[i]).size());
            lines.insert(a.lines.begin(), a.lines.end());
        }
        // Aggregates resolved per request, as --paths resolves them per run.
        EXPECT_EQ(lines, linesOf({full}));
    }
}

TEST(EvalServedPaths, TheRootIsEvaluatedOnceForEveryRequest)
{
    // The root traces when it is evaluated: once per worker process.
    TempDir dir;
    auto file = dir.write("traced.nix", "{ salt }: builtins.trace \"evaluating the root\" (import " + testDataDir() +
                                            "/errors.nix { inherit salt; })");
    auto served = servePaths({"--workers", "1", "--argstr", "salt", freshSalt(), file},
                             {R"([["ok"]])", R"([["asserts"], ["ok"]])", R"([["throws"]])"});
    ASSERT_EQ(served.exitCode, 0) << served.err;
    auto answers = servedRequests(served);
    ASSERT_EQ(answers.size(), 3u);
    EXPECT_EQ(answers[1].lines.size(), 2u);
    EXPECT_NE(answers[2].lines.at(0).value("error", "").find("deliberate failure"), std::string::npos)
        << answers[2].lines.at(0);

    size_t traces = 0;
    for (size_t at = 0; (at = served.err.find("evaluating the root", at)) != std::string::npos; ++at) ++traces;
    EXPECT_EQ(traces, 1u) << served.err;
}

TEST(EvalServedPaths, ABadRequestIsAnsweredWithAnErrorAndTheNextIsServed)
{
    auto file = testDataDir() + "/errors.nix";
    auto served = servePaths({"--argstr", "salt", freshSalt(), file}, {R"([["ok")", "[]", R"([["ok"]])"});
    ASSERT_EQ(served.exitCode, 0) << served.err;
    auto answers = servedRequests(served);
    ASSERT_EQ(answers.size(), 3u);
    EXPECT_EQ(answers[0].done["pathsDone"], 1);
    EXPECT_NE(answers[0].done.value("error", "").find("--serve-paths: request 1: the list of attribute paths"),
              std::string::npos)
        << answers[0].done;
    EXPECT_TRUE(answers[0].lines.empty());
    EXPECT_EQ(answers[1].done, (json{{"pathsDone", 2}, {"jobs", 0}, {"errors", 0}}));
    EXPECT_EQ(answers[2].lines.at(0)["attr"], "ok");

    // Paths come from standard input only.
    TempDir dir;
    auto both = runCommand({evalJobsBinary(), "--serve-paths", "--paths", dir.write("p.json", "[]"), file});
    EXPECT_NE(both.exitCode, 0);
    EXPECT_NE(both.err.find("--serve-paths reads its paths from standard input"), std::string::npos) << both.err;
}
